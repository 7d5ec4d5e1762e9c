"""Pick where models run: CUDA when present (bf16 for generation), else CPU (fp32)."""

from __future__ import annotations


def resolve_device(setting: str = "auto") -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; explicit values are checked."""
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        from core.errors import ConfigError

        raise ConfigError("ASKDESK_DEVICE=cuda but torch sees no GPU; use auto or cpu, or install a CUDA build of torch.")
    return setting
