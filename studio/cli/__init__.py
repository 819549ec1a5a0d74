"""The ``qwen-tts-studio`` command line: ``main.py`` parses, ``commands/`` does the work."""
