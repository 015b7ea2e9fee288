"""Inference backends other than PyTorch, which stays the default and the reference."""
