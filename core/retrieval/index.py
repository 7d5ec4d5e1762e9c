"""The on-disk search index: FAISS inner-product over normalised vectors, plus passage metadata.

Layout of an index folder::

    manifest.json    format version, embedding model, dimension, passage count, build time
    passages.jsonl   one passage per line, in vector order
    vectors.npy      the raw float32 vectors (reused by incremental rebuilds)
    index.faiss      the FAISS index over those vectors
    bm25/, lexical.json   the BM25 index and document frequencies (core.retrieval.lexical)
    classifier.npz   the intent classifier, when the KB has labelled examples (core.retrieval.classifier)

Anything missing, unreadable or inconsistent raises :class:`IndexUnusableError` telling
the admin to rebuild, instead of serving wrong results.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import IndexUnusableError
from core.retrieval.passages import Passage

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: BM25 (bm25/, lexical.json) and classifier.npz beside the vectors
REBUILD_HINT = "Rebuild it with `askdesk index build`."


@dataclass(frozen=True, slots=True)
class ScoredPassage:
    """A retrieved passage; ``score`` is the calibrated confidence that the assistant gates on."""

    passage: Passage
    score: float
    dense: float | None = None  # cosine similarity with the question
    lexical: float | None = None  # IDF-weighted share of the question's words in the passage


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    """Passages and their vectors, searchable by cosine similarity."""

    def __init__(
        self,
        passages: list[Passage],
        vectors: np.ndarray,
        model: str,
        meta: dict[str, Any] | None = None,
        faiss_index: Any = None,
    ):
        if len(passages) != len(vectors):
            raise ValueError("passages and vectors differ in length")
        self.passages = passages
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.model = model
        self.meta = meta or {}
        self.dimension = int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0
        self._faiss_index = faiss_index if faiss_index is not None else self._build_faiss(self.vectors)

    @staticmethod
    def _build_faiss(vectors: np.ndarray):
        faiss = _faiss()
        index = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            index.add(vectors)
        return index

    def __len__(self) -> int:
        return len(self.passages)

    def hashes(self) -> dict[str, int]:
        """content hash → row, for reusing vectors of unchanged passages."""
        return {p.content_hash: i for i, p in enumerate(self.passages)}

    def search(self, query_vectors: np.ndarray, k: int) -> list[list[ScoredPassage]]:
        """Top ``k`` passages for each query vector, best first."""
        if not len(self.passages):
            return [[] for _ in range(len(query_vectors))]
        k = min(k, len(self.passages))
        scores, rows = self._faiss_index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), k)
        return [
            [ScoredPassage(self.passages[r], float(s)) for s, r in zip(srow, rrow) if r >= 0]
            for srow, rrow in zip(scores, rows)
        ]

    # ---- persistence -------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "passages.jsonl", "w", encoding="utf-8") as fh:
            for p in self.passages:
                fh.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
        np.save(folder / "vectors.npy", self.vectors)
        _faiss().write_index(self._faiss_index, str(folder / "index.faiss"))
        manifest = {
            "format": FORMAT_VERSION,
            "embedding_model": self.model,
            "dimension": self.dimension,
            "passages": len(self.passages),
            **self.meta,
        }
        # The manifest goes last: a folder without one was never finished.
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, expected_model: str | None = None) -> "VectorIndex":
        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            raise IndexUnusableError(f"No search index at {folder}. {REBUILD_HINT}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            model = manifest["embedding_model"]
            fmt = manifest["format"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexUnusableError(f"The index at {folder} is damaged (manifest: {exc}). {REBUILD_HINT}") from exc
        if fmt != FORMAT_VERSION:
            raise IndexUnusableError(f"The index at {folder} has format {fmt}, this askdesk reads {FORMAT_VERSION}. {REBUILD_HINT}")
        if expected_model is not None and model != expected_model:
            raise IndexUnusableError(
                f"The index at {folder} was built with embedding model {model!r}, but {expected_model!r} is "
                f"configured; their vectors are not comparable. {REBUILD_HINT}"
            )
        try:
            with open(folder / "passages.jsonl", encoding="utf-8") as fh:
                passages = [Passage.from_dict(json.loads(line)) for line in fh if line.strip()]
            vectors = np.load(folder / "vectors.npy", allow_pickle=False)
            stored = _faiss().read_index(str(folder / "index.faiss"))
        except Exception as exc:  # noqa: BLE001 - numpy, faiss and json raise many kinds
            raise IndexUnusableError(f"The index at {folder} is damaged ({type(exc).__name__}: {exc}). {REBUILD_HINT}") from exc
        if not (len(passages) == len(vectors) == stored.ntotal == manifest.get("passages")):
            raise IndexUnusableError(
                f"The index at {folder} is inconsistent ({len(passages)} passages, {len(vectors)} vectors, "
                f"{stored.ntotal} indexed). {REBUILD_HINT}"
            )
        if vectors.ndim != 2 or vectors.shape[1] != manifest.get("dimension"):
            raise IndexUnusableError(f"The index at {folder} has vectors of the wrong shape. {REBUILD_HINT}")
        meta = {k: v for k, v in manifest.items() if k not in {"format", "embedding_model", "dimension", "passages"}}
        return cls(passages, vectors, model, meta, faiss_index=stored)
