"""Qwen TTS Studio: the Gradio UI and the command line, a thin layer over core."""
