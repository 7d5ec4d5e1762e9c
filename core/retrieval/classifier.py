"""Question classification (intent) from embeddings, trained by the rebuild command.

A knowledge base has labelled examples when CSV FAQ rows carry an ``intent`` column
(``passage.extra["intent"]``) or when several rows share one ``id`` (paraphrases of one entry;
the loader gives them that id as ``doc_id``). From those rows the build trains:

- ``logreg`` (the default): a multinomial logistic-regression head on the (frozen) embeddings
  joined with TF-IDF word uni- and bigrams (jieba words for Chinese) and TF-IDF character
  2–5-grams inside words of the example text: the words catch what the small embedder blurs
  (e.g. "card" vs "cash"), the character n-grams typos and inflections; each of the two raised
  recall@1 on Banking77 (docs/retrieval.md, docs/performance.md);
- ``knn``: a similarity-weighted vote of the nearest labelled examples;
- ``ensemble``: the average of both probability vectors (no better than ``logreg`` since the
  character n-grams; docs/retrieval.md).

The embedder is never fine-tuned. The classifier is saved in the index folder
(``classifier.npz``) so it is swapped in atomically with the rest of the index.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.language import CJK_RUN
from core.retrieval.lexical import _SPLIT, _jieba
from core.retrieval.passages import Passage

log = logging.getLogger(__name__)

METHODS = ("ensemble", "logreg", "knn")
#: Bumped when training or features change, so that the next rebuild retrains (2: character n-grams).
CLASSIFIER_VERSION = 2
MIN_EXAMPLES_PER_LABEL = 2
KNN_NEIGHBOURS = 10
KNN_SHARPNESS = 20.0  # softmax temperature⁻¹ over cosine similarities of the neighbours
CHAR_NGRAMS = (2, 5)
CHAR_MIN_DF = 2  # character n-grams seen in one example only are noise (and bloat the vocabulary)


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


_WORDS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def analyze(text: str) -> list[str]:
    """Word uni- and bigrams for the linear head (stop words kept: "why" vs "how" matters for intent)."""
    words: list[str] = []
    for part in _SPLIT.split(unicodedata.normalize("NFKC", text).lower()):
        if CJK_RUN.fullmatch(part or " "):
            words.extend(w for w in _jieba().cut(part) if w.strip())
        elif part:
            words.extend(_WORDS.findall(part))
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def char_ngrams(text: str) -> list[str]:
    """Character 2–5-grams inside words (padded with a space, like scikit-learn's ``char_wb``).

    They catch what whole words miss in short questions: typos, inflections ("topped"/"top-up"),
    compounds. On Banking77 they raise recall@1 over words alone (docs/retrieval.md).
    """
    grams: list[str] = []
    for word in unicodedata.normalize("NFKC", text).lower().split():
        padded = f" {word} "
        for n in range(CHAR_NGRAMS[0], CHAR_NGRAMS[1] + 1):
            grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
            if len(padded) <= n:  # the whole (short) word is counted once, not again for longer n
                break
    return grams


ANALYZERS = {"words": analyze, "chars": char_ngrams}


class TextFeatures:
    """TF-IDF (sublinear tf, smoothed idf, L2 norm) over a fixed vocabulary; sparse rows."""

    def __init__(self, vocabulary: list[str], idf: np.ndarray, analyzer: str = "words") -> None:
        self.vocabulary = list(vocabulary)
        self.index = {term: n for n, term in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float32)
        self.analyzer = analyzer
        self._analyze = ANALYZERS[analyzer]

    @classmethod
    def fit(cls, texts: list[str], analyzer: str = "words", min_df: int = 1) -> "TextFeatures":
        terms = ANALYZERS[analyzer]
        df = Counter(term for t in texts for term in set(terms(t)))
        vocabulary = sorted(term for term, count in df.items() if count >= min_df)
        n = len(texts)
        idf = np.array([np.log((1 + n) / (1 + df[term])) + 1 for term in vocabulary], dtype=np.float32)
        return cls(vocabulary, idf, analyzer)

    def transform(self, texts: list[str]):
        from scipy.sparse import csr_matrix

        data, cols, indptr = [], [], [0]
        for text in texts:
            counts = Counter(t for t in self._analyze(text) if t in self.index)
            row = {self.index[t]: (1 + np.log(c)) * self.idf[self.index[t]] for t, c in counts.items()}
            norm = np.sqrt(sum(v * v for v in row.values())) or 1.0
            cols.extend(row)
            data.extend(v / norm for v in row.values())
            indptr.append(len(cols))
        return csr_matrix((np.array(data, dtype=np.float32), np.array(cols, dtype=np.int64), np.array(indptr)),
                          shape=(len(texts), len(self.vocabulary)))


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
        features: Sequence[TextFeatures] = (),
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown classifier method {method!r}; use one of {', '.join(METHODS)}")
        self.labels = list(labels)
        self.example_vectors = np.ascontiguousarray(example_vectors, dtype=np.float32)
        self.example_labels = np.asarray(example_labels, dtype=np.int64)
        self.coef = coef
        self.intercept = intercept
        self.features = tuple(features)  # text feature blocks joined to the embedding, in order
        self.method = method if coef is not None or method == "knn" else "knn"

    # ---- training ----------------------------------------------------------------------
    @classmethod
    def train(
        cls, vectors: np.ndarray, labels: list[str], method: str = "logreg", c: float = 10.0, texts: list[str] | None = None
    ) -> "IntentClassifier":
        """Fit on labelled example vectors (and their texts); ``c`` is the inverse L2 strength of the linear head."""
        names = sorted(set(labels))
        index = {name: n for n, name in enumerate(names)}
        y = np.array([index[label] for label in labels], dtype=np.int64)
        coef = intercept = None
        features: list[TextFeatures] = []
        if method in ("ensemble", "logreg"):
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=c, max_iter=300)
            x = vectors
            if texts is not None:
                features = [TextFeatures.fit(texts), TextFeatures.fit(texts, "chars", CHAR_MIN_DF)]
                x = _join(vectors, [f.transform(texts) for f in features])
            model.fit(x, y)
            coef = model.coef_.astype(np.float32)
            intercept = model.intercept_.astype(np.float32)
            if len(names) == 2:  # sklearn keeps one row for binary problems
                coef = np.vstack([-coef, coef])
                intercept = np.concatenate([-intercept, intercept])
        return cls(names, vectors, y, coef, intercept, method, features)

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

    def _logreg(self, queries: np.ndarray, texts: list[str] | None) -> np.ndarray:
        x = queries
        if self.features:
            if texts is None:
                raise ValueError("this classifier also reads the question text; pass texts")
            x = _join(queries, [f.transform(texts) for f in self.features])
        logits = np.asarray(x @ self.coef.T) + self.intercept  # type: ignore[union-attr,operator]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def probabilities(
        self, query_vectors: np.ndarray, texts: list[str] | None = None, method: str | None = None
    ) -> np.ndarray:
        """Rows of class probabilities (columns follow :attr:`labels`) for query vectors and texts."""
        method = method or self.method
        queries = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
        if method == "knn" or self.coef is None:
            return self._knn(queries)
        if method == "logreg":
            return self._logreg(queries, texts)
        return (self._knn(queries) + self._logreg(queries, texts)) / 2

    def predict(self, query_vector: np.ndarray, text: str | None = None, method: str | None = None) -> Prediction:
        probs = self.probabilities(query_vector, None if text is None else [text], method)[0]
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
        for features in self.features:
            prefix = "" if features.analyzer == "words" else f"{features.analyzer}_"
            arrays[f"{prefix}vocabulary"] = np.array(features.vocabulary, dtype=str)
            arrays[f"{prefix}idf"] = features.idf
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
                [
                    TextFeatures([str(t) for t in data[f"{prefix}vocabulary"]], data[f"{prefix}idf"], analyzer)
                    for analyzer, prefix in (("words", ""), ("chars", "chars_"))
                    if f"{prefix}vocabulary" in data
                ],
            )


def _join(dense: np.ndarray, sparse: list):
    from scipy.sparse import csr_matrix, hstack

    return hstack([csr_matrix(dense), *sparse]).tocsr()


def train_for_passages(passages: list[Passage], vectors: np.ndarray, method: str = "logreg") -> IntentClassifier | None:
    """The build step: a classifier when the knowledge base has labelled examples, else ``None``."""
    if method == "off":
        return None
    rows, labels = labelled_rows(passages)
    if not rows:
        return None
    texts = [passages[i].title or passages[i].text for i in rows]  # an FAQ row's question
    classifier = IntentClassifier.train(vectors[rows], labels, method, texts=texts)
    log.info("intent classifier (%s) trained on %d examples of %d intents", method, len(rows), len(classifier.labels))
    return classifier
