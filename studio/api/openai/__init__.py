"""The OpenAI / vLLM-Omni compatible HTTP API, in parts (assembled by studio/api/openai_routes.py)."""
