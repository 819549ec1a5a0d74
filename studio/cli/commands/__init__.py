"""Sub-commands of the qwen-tts-studio command line."""
