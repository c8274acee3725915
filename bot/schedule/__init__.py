"""Schedule files: format v1, validation, import."""
