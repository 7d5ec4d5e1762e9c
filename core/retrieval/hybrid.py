"""Hybrid search over one index folder: dense (FAISS) + BM25 + intent classifier, fused by document.

Ranking and confidence are separate on purpose:

- **Ranking** fuses the dense list and the BM25 list by *document* with reciprocal-rank fusion
  (ranks need no common scale), adds the classifier's intent probabilities to the documents of
  those intents when the knowledge base has labelled examples, and lists passages in that
  document order (:func:`~core.retrieval.fusion.passages_in_document_order`).
- **Confidence** (``ScoredPassage.score``, what the assistant's gate compares with the
  threshold) stays a calibrated number per hit. For languages the embedding model handles it is
  the dense cosine similarity, unchanged from dense-only retrieval, so existing thresholds keep
  their meaning. For languages it does not handle (e.g. Chinese with the English-first bundled
  MiniLM, whose cosines are 0.5–0.7 between *any* two Chinese texts) it is the lexical coverage:
  the IDF-weighted share of the question's jieba words that the passage contains. The dense list
  is then also down-weighted in the ranking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from core.errors import IndexUnusableError
from core.language import detect_language
from core.retrieval.classifier import IntentClassifier, Prediction, labelled_rows
from core.retrieval.fusion import (
    DEFAULT_RRF_K,
    document_ranking,
    fused_order,
    passages_in_document_order,
    reciprocal_rank_fusion,
)
from core.retrieval.index import REBUILD_HINT, ScoredPassage, VectorIndex
from core.retrieval.lexical import LexicalIndex, tokenize
from core.retrieval.statements import StatementVectors

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[str, ...] = ("hybrid", "dense", "lexical")

#: RRF weight of the dense list when the embedder does not handle the question's language.
UNSUPPORTED_DENSE_WEIGHT = 0.2
#: RRF weight of the BM25 list when the dense list is trusted: with document fusion, the largest
#: weight that keeps hybrid recall@5 on Banking77 at or above both single lists (dense, BM25);
#: a larger one helps the sample knowledge base but costs Banking77 (see docs/retrieval.md).
SUPPORTED_LEXICAL_WEIGHT = 0.3
#: Weight of the classifier in document fusion: a document gets ``weight × probability / (k + 1)``
#: for its intent, i.e. as much as first places in this many lists when the classifier is sure.
#: It is trained on the knowledge base's own labelled questions, on the embedding *and* the words,
#: so where it is sure it should outvote dense + BM25 (1.5 together at first place); where it is
#: unsure (probability spread over intents) retrieval decides. On Banking77 a weight above 3 gained
#: nothing (docs/performance.md).
CLASSIFIER_WEIGHT = 3.0
#: Intent labels of the classifier that take part in fusion.
CLASSIFIER_DEPTH = 20


@dataclass(slots=True)
class RetrievalResult:
    """What one search found; ``hits`` are best first and ``confidence`` is ``hits[0].score``."""

    hits: list[ScoredPassage]
    language: str = "en"
    dense_supported: bool = True
    intent: str | None = None
    intent_probability: float | None = None
    prediction: Prediction | None = field(default=None, repr=False)

    @property
    def confidence(self) -> float:
        return self.hits[0].score if self.hits else 0.0


class SearchIndex:
    """The dense index, the BM25 index and the optional classifier of one index folder."""

    def __init__(self, vectors: VectorIndex, lexical: LexicalIndex, classifier: IntentClassifier | None = None,
                 statements: StatementVectors | None = None) -> None:
        if lexical.num_docs != len(vectors):
            raise IndexUnusableError(
                f"The BM25 index has {lexical.num_docs} passages but the vector index {len(vectors)}. {REBUILD_HINT}"
            )
        self.vectors = vectors
        self.lexical = lexical
        self.classifier = classifier
        self.statements = statements  # None for an index built before statements were stored
        self.passages = vectors.passages
        rows, labels = labelled_rows(self.passages) if classifier is not None else ([], [])
        self.labels: dict[int, str] = dict(zip(rows, labels))
        self.doc_examples: dict[str, list[int]] = {}  # document → its labelled example rows
        self.label_documents: dict[str, set[str]] = {}  # intent → documents with examples of it
        for row, label in self.labels.items():
            doc = self.passages[row].doc_id
            self.doc_examples.setdefault(doc, []).append(row)
            self.label_documents.setdefault(label, set()).add(doc)
        self.languages = np.array([detect_language(p.embed_text) for p in self.passages], dtype=object)

    def __len__(self) -> int:
        return len(self.passages)

    @classmethod
    def load(cls, folder: Path, expected_model: str | None = None) -> "SearchIndex":
        vectors = VectorIndex.load(folder, expected_model=expected_model)
        try:
            lexical = LexicalIndex.load(Path(folder))
            classifier = IntentClassifier.load(Path(folder))
        except Exception as exc:  # noqa: BLE001 - json, numpy and bm25s raise many kinds
            raise IndexUnusableError(
                f"The BM25 or classifier part of the index at {folder} is missing or damaged "
                f"({type(exc).__name__}: {exc}). {REBUILD_HINT}"
            ) from exc
        return cls(vectors, lexical, classifier, StatementVectors.load(Path(folder), vectors.dimension))

    def _doc_of(self, row: int) -> str:
        return self.passages[row].doc_id

    def _intent_documents(self, prediction: Prediction) -> dict[str, float]:
        """Documents with examples of the top intents → the probability of their (likeliest) intent."""
        top = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])[:CLASSIFIER_DEPTH]
        documents: dict[str, float] = {}
        for label, probability in top:
            for doc in self.label_documents.get(label, ()):
                documents[doc] = max(documents.get(doc, 0.0), probability)
        return documents

    # ---- search ------------------------------------------------------------------------
    def search(
        self,
        query: str,
        query_vector: np.ndarray,
        k: int,
        *,
        mode: Mode = "hybrid",
        dense_supported: bool = True,
        use_classifier: bool = True,
        classifier_method: str | None = None,
        depth: int | None = None,
        rrf_k: int = DEFAULT_RRF_K,
        language: str = "en",
    ) -> RetrievalResult:
        """Top ``k`` passages for ``query`` (whose embedding is ``query_vector``)."""
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        n = len(self.passages)
        if not n or k <= 0:
            return RetrievalResult([], language, dense_supported)
        depth = min(n, max(depth or 0, 10 * k, 100))
        qv = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        dense = DenseScores(self.vectors, qv)
        tokens = tokenize(query)

        rankings: list[list[int]] = []
        weights: list[float] = []
        if mode in ("hybrid", "dense"):
            rankings.append(dense.top(depth))
            weights.append(1.0 if dense_supported or mode == "dense" else UNSUPPORTED_DENSE_WEIGHT)
        if mode in ("hybrid", "lexical"):
            bm25 = self.lexical.scores(tokens)
            top = np.argpartition(-bm25, depth - 1)[:depth] if depth < n else np.arange(n)
            top = top[bm25[top] > 0]
            same = top[self.languages[top] == language]
            if len(same):  # shared Latin words ("PayPal") must not pull an English question into a Chinese article
                top = same
            rankings.append([int(r) for r in top[np.argsort(-bm25[top], kind="stable")]])
            weights.append(SUPPORTED_LEXICAL_WEIGHT if dense_supported and mode == "hybrid" else 1.0)

        # Documents are ranked by fusing *document* ranks (each list ranks a document at its best
        # passage); the passages follow that order (see passages_in_document_order).
        doc_of = self._doc_of
        doc_scores = reciprocal_rank_fusion([document_ranking(r, doc_of) for r in rankings], weights, rrf_k)
        passage_order = [int(r) for r, _ in fused_order(rankings, weights, rrf_k)]
        extra: dict[str, list[int]] = {}
        prediction = None
        if self.classifier is not None:
            prediction = self.classifier.predict(qv, query, classifier_method)
            if use_classifier and mode == "hybrid":
                present = set(doc_scores)
                for doc, probability in self._intent_documents(prediction).items():
                    # As much as a first place in CLASSIFIER_WEIGHT lists when certain, little when unsure.
                    doc_scores[doc] = doc_scores.get(doc, 0.0) + CLASSIFIER_WEIGHT * probability / (rrf_k + 1)
                    if doc not in present:
                        extra[doc] = sorted(self.doc_examples[doc], key=lambda r: -dense[r])
        doc_order = sorted(doc_scores, key=lambda d: -doc_scores[d])
        rows = [int(r) for r in passages_in_document_order(passage_order, doc_order, doc_of, extra)[:k]]
        coverage = self.lexical.coverage(tokens, rows)
        hits = []
        for row, cov in zip(rows, coverage):
            confidence = float(dense[row]) if dense_supported else float(cov)
            hits.append(ScoredPassage(self.passages[row], confidence, dense=float(dense[row]), lexical=float(cov)))
        result = RetrievalResult(hits, language, dense_supported, prediction=prediction)
        if prediction is not None:
            result.intent = prediction.intent
            result.intent_probability = prediction.probability
        return result


class DenseScores:
    """Cosine similarity of passages with one query, computed only where needed.

    With the exact flat index one matrix product scores everything (fast below the
    approximate-index threshold). With an approximate index (IVF/HNSW, for large knowledge
    bases) the top candidates come from FAISS, and any other passage that BM25 or the
    classifier brings in is scored exactly from its stored vector on demand.
    """

    def __init__(self, vectors: VectorIndex, query_vector: np.ndarray) -> None:
        self._vectors = vectors
        self._qv = query_vector
        self._all = vectors.vectors @ query_vector if vectors.kind == "flat" else None
        self._known: dict[int, float] = {}

    def top(self, depth: int) -> list[int]:
        n = len(self._vectors)
        if self._all is not None:
            top = np.argpartition(-self._all, depth - 1)[:depth] if depth < n else np.arange(n)
            return [int(r) for r in top[np.argsort(-self._all[top], kind="stable")]]
        rows, scores = self._vectors.search_rows(self._qv, depth)
        self._known.update(zip((int(r) for r in rows), (float(s) for s in scores)))
        return [int(r) for r in rows]

    def __getitem__(self, row: int) -> float:
        if self._all is not None:
            return float(self._all[row])
        if row not in self._known:
            self._known[row] = float(self._vectors.vectors[row] @ self._qv)
        return self._known[row]


def rerank(result: RetrievalResult, query: str, cross_encoder) -> RetrievalResult:
    """Reorder hits by a cross-encoder's relevance; each hit keeps its calibrated confidence."""
    if len(result.hits) < 2:
        return result
    scores = cross_encoder.predict([(query, h.passage.embed_text) for h in result.hits])
    order = sorted(range(len(result.hits)), key=lambda i: -float(scores[i]))
    return replace(result, hits=[result.hits[i] for i in order])
