"""Checks for notebook 11 (checkpoints in Lightning, accelerate and transformers)."""
__all__: list[str] = []
