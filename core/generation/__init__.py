"""Prompt building, generator backends and grounding checks."""
