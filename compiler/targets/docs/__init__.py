"""Human documents: the model card (Jinja2, Markdown)."""
