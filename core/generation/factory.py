"""Choose the generator backend from the settings."""

from __future__ import annotations

from core.config import Settings
from core.devices import resolve_device
from core.generation.base import Generator


def create_generator(settings: Settings) -> Generator:
    from core.generation.prompt import BANNED_WORDS
    from core.generation.transformers_backend import TransformersGenerator

    return TransformersGenerator(
        settings.generator_model, resolve_device(settings.device), settings.cache_dir, banned_words=BANNED_WORDS
    )
