"""What scripts call: the named Gradio API and the OpenAI-compatible HTTP routes.

Kept free of imports so that ``studio.api.openai_routes`` loads without Gradio.
"""
