"""Query-time retrieval: embed the question and search the index, loaded once per process."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from core.config import Settings
from core.devices import resolve_device
from core.retrieval.embedder import Embedder, get_embedder
from core.retrieval.index import ScoredPassage, VectorIndex

log = logging.getLogger(__name__)


class Retriever:
    """Finds the passages that best match a question.

    The index is re-read when a rebuild has swapped in a new version (the ``index_dir``
    symlink changed), so a running bot picks up knowledge-base updates without a restart.
    """

    def __init__(self, settings: Settings, index_dir: Path | None = None) -> None:
        self.settings = settings
        self.index_dir = Path(index_dir or settings.index_dir)
        self._lock = threading.Lock()
        self._index: VectorIndex | None = None
        self._version: str | None = None

    def _current_version(self) -> str:
        try:
            return os.readlink(self.index_dir)
        except OSError:
            return str(self.index_dir.stat().st_mtime_ns) if self.index_dir.exists() else ""

    @property
    def index(self) -> VectorIndex:
        with self._lock:
            version = self._current_version()
            if self._index is None or version != self._version:
                self._index = VectorIndex.load(self.index_dir, expected_model=self.settings.embedding_model)
                self._version = version
                log.info("index loaded: %d passages from %s", len(self._index), self.index_dir)
            return self._index

    @property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings.embedding_model, resolve_device(self.settings.device))

    def warm_up(self) -> None:
        """Load index and embedder now rather than on the first question."""
        _ = self.index
        self.embedder.embed_queries(["warm up"])

    def search(self, query: str, k: int) -> list[ScoredPassage]:
        index = self.index
        vector = self.embedder.embed_queries([query])
        return index.search(vector, k)[0]
