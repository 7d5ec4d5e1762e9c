"""Choose the generator backend from the settings."""

from __future__ import annotations

from core.config import Settings
from core.devices import resolve_device
from core.errors import ConfigError
from core.generation.base import Generator


def create_generator(settings: Settings) -> Generator:
    from core.generation.prompt import BANNED_WORDS

    if settings.generator_backend == "openai":
        from core.generation.openai_backend import OpenAIGenerator

        if not settings.openai_base_url or not settings.openai_model:
            raise ConfigError(
                "ASKDESK_GENERATOR_BACKEND=openai needs ASKDESK_OPENAI_BASE_URL (e.g. http://localhost:8000/v1) "
                "and ASKDESK_OPENAI_MODEL (the name the server serves); see docs/serving.md."
            )
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIGenerator(
            settings.openai_base_url, settings.openai_model, api_key=key,
            connect_timeout=settings.openai_connect_timeout, read_timeout=settings.openai_read_timeout,
            attempts=settings.openai_retries,
        )

    from core.generation.transformers_backend import BatchedTransformersGenerator, TransformersGenerator

    device = resolve_device(settings.device)
    if settings.generator_batching:
        return BatchedTransformersGenerator(
            settings.generator_model, device, settings.cache_dir, banned_words=BANNED_WORDS,
            max_batch=settings.generator_max_batch, quantize=settings.generator_quantize,
            prefill_chunk=settings.generator_prefill_chunk,
        )
    return TransformersGenerator(settings.generator_model, device, settings.cache_dir, banned_words=BANNED_WORDS,
                                 quantize=settings.generator_quantize)
