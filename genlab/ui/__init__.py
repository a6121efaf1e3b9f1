"""Gradio tab builders, one per kind of tab (the only part of genlab that imports gradio)."""
