"""The on-disk search index: FAISS inner-product over normalised vectors, plus passage metadata.

Layout of an index folder::

    manifest.json    format version, embedding model, dimension, passage count, build time, and
                     ``index``: the FAISS index kind (flat, ivf, hnsw) and its search parameters
    passages.jsonl   one passage per line, in vector order
    vectors.npy      the raw float32 vectors (reused by incremental rebuilds)
    index.faiss      the FAISS index over those vectors
    bm25/, lexical.json   the BM25 index and document frequencies (core.retrieval.lexical)
    classifier.npz   the intent classifier, when the KB has labelled examples (core.retrieval.classifier)

The FAISS index kind is chosen at build time (:func:`choose_index_kind`): exact ``flat`` below
``approx_min_passages`` passages, an approximate one (IVF or HNSW) at or above it; see
docs/index-scaling.md for the measurements behind the defaults. Search parameters (``nprobe``,
``efSearch``) are not all kept by FAISS's own file format, so they are stored in the manifest and
re-applied on load.

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

INDEX_KINDS = ("flat", "ivf", "hnsw")
#: The approximate kind ``index_type="auto"`` picks at or above ``approx_min_passages`` (docs/index-scaling.md).
AUTO_APPROX_KIND = "ivf"
DEFAULT_IVF_NPROBE = 16
DEFAULT_HNSW_EF_SEARCH = 64
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
IVF_TRAIN_PER_LIST = 64  # k-means is trained on at most this many vectors per list


def choose_index_kind(n_passages: int, index_type: str = "auto", approx_min_passages: int = 100_000) -> str:
    """The FAISS index kind for ``n_passages``: ``index_type`` unless it is ``auto``."""
    if index_type != "auto":
        if index_type not in INDEX_KINDS:
            raise ValueError(f"unknown index type {index_type!r}; use auto or one of {', '.join(INDEX_KINDS)}")
        return index_type
    return AUTO_APPROX_KIND if n_passages >= approx_min_passages else "flat"


def ivf_nlist(n_passages: int) -> int:
    """Number of IVF lists: about 4·√n, never more than the vectors there are to train on."""
    return max(1, min(n_passages, int(round(4 * np.sqrt(max(n_passages, 1))))))


def index_config_from_settings(settings: Any, n_passages: int) -> dict[str, Any]:
    """The ``index`` manifest entry a build with ``settings`` should produce for ``n_passages``."""
    kind = choose_index_kind(n_passages, settings.index_type, settings.approx_min_passages)
    if kind == "ivf":
        return {"kind": "ivf", "nprobe": settings.ivf_nprobe}
    if kind == "hnsw":
        return {"kind": "hnsw", "M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": settings.hnsw_ef_search}
    return {"kind": "flat"}


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
        index_config: dict[str, Any] | None = None,
    ):
        if len(passages) != len(vectors):
            raise ValueError("passages and vectors differ in length")
        self.passages = passages
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.model = model
        self.meta = meta or {}
        self.dimension = int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0
        config = dict(index_config or {"kind": "flat"})
        if faiss_index is None:
            faiss_index, config = self._build_faiss(self.vectors, config)
        else:
            _apply_search_params(faiss_index, config)
        self._faiss_index = faiss_index
        #: kind and parameters of the FAISS index, as stored under ``index`` in the manifest
        self.index_config = config

    @property
    def kind(self) -> str:
        return str(self.index_config.get("kind", "flat"))

    @staticmethod
    def _build_faiss(vectors: np.ndarray, config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """A FAISS index of ``config["kind"]`` over ``vectors`` and the config with every parameter filled in."""
        faiss = _faiss()
        kind = config.get("kind", "flat")
        n, d = len(vectors), vectors.shape[1]
        if kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {kind!r}")
        if kind == "ivf" and n == 0:
            kind = "flat"  # nothing to train the quantiser on
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
            config = {"kind": "flat"}
        elif kind == "ivf":
            nlist = int(config.get("nlist") or ivf_nlist(n))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            sample_size = min(n, IVF_TRAIN_PER_LIST * nlist)
            if sample_size < n:
                rows = np.sort(np.random.default_rng(0).choice(n, sample_size, replace=False))
                sample = vectors[rows]
            else:
                sample = vectors
            index.cp.min_points_per_centroid = 1  # small KBs: no warning, just fewer points per list
            index.train(np.ascontiguousarray(sample))
            index.quantizer_trains_alone = 0
            config = {"kind": "ivf", "nlist": nlist, "nprobe": int(config.get("nprobe") or DEFAULT_IVF_NPROBE),
                      "train_size": int(sample_size)}
        else:
            m = int(config.get("M") or HNSW_M)
            index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(config.get("ef_construction") or HNSW_EF_CONSTRUCTION)
            config = {"kind": "hnsw", "M": m, "ef_construction": int(index.hnsw.efConstruction),
                      "ef_search": int(config.get("ef_search") or DEFAULT_HNSW_EF_SEARCH)}
        if n:
            index.add(vectors)
        _apply_search_params(index, config)
        return index, config

    def __len__(self) -> int:
        return len(self.passages)

    def hashes(self) -> dict[str, int]:
        """content hash → row, for reusing vectors of unchanged passages."""
        return {p.content_hash: i for i, p in enumerate(self.passages)}

    def search_rows(self, query_vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosine scores) of the top ``k`` for one query, through the FAISS index (exact or approximate)."""
        k = min(k, len(self.passages))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores, rows = self._faiss_index.search(np.ascontiguousarray(query_vector.reshape(1, -1), dtype=np.float32), k)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]

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
            "index": self.index_config,
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
        config = manifest.get("index") or {"kind": "flat"}  # indexes from before the choice were flat
        if not isinstance(config, dict) or config.get("kind") not in INDEX_KINDS or config["kind"] != _kind_of(stored):
            raise IndexUnusableError(f"The index at {folder} does not match its manifest (index {config!r}). {REBUILD_HINT}")
        meta = {k: v for k, v in manifest.items() if k not in {"format", "embedding_model", "dimension", "passages", "index"}}
        return cls(passages, vectors, model, meta, faiss_index=stored, index_config=config)


def index_bytes(folder: Path) -> int:
    """Bytes on disk of the dense side of an index folder (index.faiss + vectors.npy)."""
    return sum((Path(folder) / name).stat().st_size for name in ("index.faiss", "vectors.npy") if (Path(folder) / name).exists())


def _kind_of(index: Any) -> str:
    faiss = _faiss()
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    return "flat"


def _apply_search_params(index: Any, config: dict[str, Any]) -> None:
    """Set the query-time knobs FAISS does not keep in its own file (nprobe, efSearch)."""
    kind = config.get("kind", "flat")
    if kind == "ivf" and "nprobe" in config:
        index.nprobe = int(config["nprobe"])
    elif kind == "hnsw" and "ef_search" in config:
        index.hnsw.efSearch = int(config["ef_search"])
