"""The Gradio web UI: one tab per job (``tabs/``) over the pieces every tab shares."""
