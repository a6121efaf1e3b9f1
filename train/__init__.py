"""`python -m train`: the training CLI (see __main__.py)."""
