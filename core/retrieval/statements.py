"""The vector of every statement in the knowledge base, embedded once when the index is built.

Composing an answer (and checking a generated one) compares the question with each sentence,
list item and table row of the retrieved passages (:mod:`core.retrieval.units`). Those texts
belong to the knowledge base, not to the question, so embedding them per question repeats the
same work for every asker; it was most of the time an answer took, and on a small CPU questions
arriving together queued behind each other's sentence embeddings. The rebuild command embeds
them once and stores them beside the passage vectors:

    statements.json   the statements' texts (context and statement), in row order
    statements.npy    their float32 vectors, one row each

A text missing from the table (an index built before statements were stored, or passage
splitting that changed since) is simply embedded when it is needed; a damaged table makes the
index unusable like any other damaged part, so it is rebuilt instead of half-used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.errors import IndexUnusableError
from core.retrieval.passages import Passage
from core.retrieval.units import all_units

TEXTS_FILE = "statements.json"
VECTORS_FILE = "statements.npy"


class StatementVectors:
    """Read-only text → vector table of one index folder."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} statements but {len(vectors)} vectors")
        self.texts = list(texts)
        self.vectors = vectors
        self._rows = {text: row for row, text in enumerate(self.texts)}

    def __len__(self) -> int:
        return len(self.texts)

    def get(self, text: str) -> np.ndarray | None:
        row = self._rows.get(text)
        return None if row is None else self.vectors[row]

    @staticmethod
    def texts_of(passages: Sequence[Passage]) -> list[str]:
        """The distinct statement texts of ``passages``, as they are embedded and looked up."""
        return list(dict.fromkeys(u.full for u in all_units(passages)))

    @classmethod
    def build(cls, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray], dimension: int,
              previous: "StatementVectors | None" = None) -> tuple["StatementVectors", int]:
        """A table of ``texts`` (from :meth:`texts_of`); those ``previous`` holds keep their vector.

        Returns (table, how many were embedded)."""
        vectors = np.zeros((len(texts), dimension), dtype=np.float32)
        todo = []
        for row, text in enumerate(texts):
            kept = previous.get(text) if previous is not None and previous.vectors.shape[1:] == (dimension,) else None
            if kept is None:
                todo.append(row)
            else:
                vectors[row] = kept
        if todo:
            vectors[todo] = embed([texts[row] for row in todo])
        return cls(texts, vectors), len(todo)

    def save(self, folder: Path) -> None:
        (Path(folder) / TEXTS_FILE).write_text(json.dumps(self.texts, ensure_ascii=False), encoding="utf-8")
        np.save(Path(folder) / VECTORS_FILE, self.vectors)

    @classmethod
    def load(cls, folder: Path, dimension: int) -> "StatementVectors | None":
        """The folder's table; ``None`` when the index predates stored statements."""
        folder = Path(folder)
        texts_path, vectors_path = folder / TEXTS_FILE, folder / VECTORS_FILE
        if not texts_path.exists() and not vectors_path.exists():
            return None
        hint = "Rebuild it with `askdesk index build`."
        try:
            texts = json.loads(texts_path.read_text(encoding="utf-8"))
            vectors = np.load(vectors_path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - json and numpy raise many kinds
            raise IndexUnusableError(
                f"The statement vectors of the index at {folder} are missing or damaged ({type(exc).__name__}: {exc}). {hint}"
            ) from exc
        if (not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or vectors.dtype != np.float32
                or vectors.ndim != 2 or vectors.shape != (len(texts), dimension)):
            raise IndexUnusableError(
                f"The statement vectors of the index at {folder} do not match their texts or the index's dimension. {hint}"
            )
        return cls(texts, vectors)
