"""Question classification (intent) from embeddings, trained by the rebuild command.

A knowledge base has labelled examples when CSV FAQ rows carry an ``intent`` column
(``passage.extra["intent"]``) or when several rows share one ``id`` (paraphrases of one entry;
the loader gives them that id as ``doc_id``). From those rows the build trains:

- ``knn``: a similarity-weighted vote of the nearest labelled examples;
- ``logreg``: a multinomial logistic-regression head on the (frozen) embeddings;
- ``ensemble`` (the default): the average of both probability vectors.

The embedder is never fine-tuned. The classifier is saved in the index folder
(``classifier.npz``) so it is swapped in atomically with the rest of the index.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.retrieval.passages import Passage

log = logging.getLogger(__name__)

METHODS = ("ensemble", "logreg", "knn")
MIN_EXAMPLES_PER_LABEL = 2
KNN_NEIGHBOURS = 10
KNN_SHARPNESS = 20.0  # softmax temperature⁻¹ over cosine similarities of the neighbours


def passage_label(passage: Passage, shared_ids: set[str]) -> str | None:
    """The intent a passage is a labelled example of, if any."""
    intent = (passage.extra or {}).get("intent")
    if intent:
        return intent
    if passage.source.lower().endswith(".csv") and passage.doc_id in shared_ids:
        return passage.doc_id
    return None


def labelled_rows(passages: list[Passage]) -> tuple[list[int], list[str]]:
    """Rows of the labelled examples and their labels (labels with too few examples are dropped)."""
    csv_ids = Counter(p.doc_id for p in passages if p.source.lower().endswith(".csv"))
    shared = {doc_id for doc_id, n in csv_ids.items() if n >= 2}
    pairs = [(i, passage_label(p, shared)) for i, p in enumerate(passages)]
    pairs = [(i, label) for i, label in pairs if label]
    counts = Counter(label for _, label in pairs)
    pairs = [(i, label) for i, label in pairs if counts[label] >= MIN_EXAMPLES_PER_LABEL]
    if len({label for _, label in pairs}) < 2:
        return [], []
    return [i for i, _ in pairs], [label for _, label in pairs]


@dataclass(slots=True)
class Prediction:
    intent: str
    probability: float
    probabilities: dict[str, float]  # every label, for fusion with retrieval


class IntentClassifier:
    """Predicts an intent from a query embedding (L2-normalised, as the index stores them)."""

    def __init__(
        self,
        labels: list[str],
        example_vectors: np.ndarray,
        example_labels: np.ndarray,
        coef: np.ndarray | None,
        intercept: np.ndarray | None,
        method: str = "ensemble",
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown classifier method {method!r}; use one of {', '.join(METHODS)}")
        self.labels = list(labels)
        self.example_vectors = np.ascontiguousarray(example_vectors, dtype=np.float32)
        self.example_labels = np.asarray(example_labels, dtype=np.int64)
        self.coef = coef
        self.intercept = intercept
        self.method = method if coef is not None or method == "knn" else "knn"

    # ---- training ----------------------------------------------------------------------
    @classmethod
    def train(cls, vectors: np.ndarray, labels: list[str], method: str = "ensemble", c: float = 10.0) -> "IntentClassifier":
        """Fit on labelled example vectors; ``c`` is the inverse L2 strength of the linear head."""
        names = sorted(set(labels))
        index = {name: n for n, name in enumerate(names)}
        y = np.array([index[label] for label in labels], dtype=np.int64)
        coef = intercept = None
        if method in ("ensemble", "logreg"):
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=c, max_iter=300)
            model.fit(vectors, y)
            coef = model.coef_.astype(np.float32)
            intercept = model.intercept_.astype(np.float32)
            if len(names) == 2:  # sklearn keeps one row for binary problems
                coef = np.vstack([-coef, coef])
                intercept = np.concatenate([-intercept, intercept])
        return cls(names, vectors, y, coef, intercept, method)

    # ---- prediction --------------------------------------------------------------------
    def _knn(self, queries: np.ndarray) -> np.ndarray:
        sims = queries @ self.example_vectors.T
        n = min(KNN_NEIGHBOURS, sims.shape[1])
        top = np.argpartition(-sims, n - 1, axis=1)[:, :n]
        probs = np.zeros((len(queries), len(self.labels)), dtype=np.float64)
        for row in range(len(queries)):
            s = sims[row, top[row]]
            w = np.exp(KNN_SHARPNESS * (s - s.max()))
            np.add.at(probs[row], self.example_labels[top[row]], w)
            probs[row] /= probs[row].sum()
        return probs

    def _logreg(self, queries: np.ndarray) -> np.ndarray:
        logits = queries @ self.coef.T + self.intercept  # type: ignore[union-attr,operator]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def probabilities(self, query_vectors: np.ndarray, method: str | None = None) -> np.ndarray:
        """Rows of class probabilities (columns follow :attr:`labels`)."""
        method = method or self.method
        queries = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
        if method == "knn" or self.coef is None:
            return self._knn(queries)
        if method == "logreg":
            return self._logreg(queries)
        return (self._knn(queries) + self._logreg(queries)) / 2

    def predict(self, query_vector: np.ndarray, method: str | None = None) -> Prediction:
        probs = self.probabilities(query_vector, method)[0]
        best = int(np.argmax(probs))
        return Prediction(self.labels[best], float(probs[best]), {l: float(p) for l, p in zip(self.labels, probs)})

    # ---- persistence -------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        arrays = {
            "labels": np.array(self.labels, dtype=object).astype(str),
            "example_vectors": self.example_vectors,
            "example_labels": self.example_labels,
            "method": np.array(self.method),
        }
        if self.coef is not None:
            arrays["coef"] = self.coef
            arrays["intercept"] = self.intercept
        np.savez(Path(folder) / "classifier.npz", **arrays)

    @classmethod
    def load(cls, folder: Path) -> "IntentClassifier | None":
        path = Path(folder) / "classifier.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            return cls(
                [str(x) for x in data["labels"]],
                data["example_vectors"],
                data["example_labels"],
                data["coef"] if "coef" in data else None,
                data["intercept"] if "intercept" in data else None,
                str(data["method"]),
            )


def train_for_passages(passages: list[Passage], vectors: np.ndarray, method: str = "ensemble") -> IntentClassifier | None:
    """The build step: a classifier when the knowledge base has labelled examples, else ``None``."""
    if method == "off":
        return None
    rows, labels = labelled_rows(passages)
    if not rows:
        return None
    classifier = IntentClassifier.train(vectors[rows], labels, method)
    log.info("intent classifier (%s) trained on %d examples of %d intents", method, len(rows), len(classifier.labels))
    return classifier
