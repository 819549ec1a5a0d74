"""Qwen TTS Studio engine: plain Python, never imports Gradio."""
