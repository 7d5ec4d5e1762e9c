"""One model call for many concurrent callers: questions answered at once share one encoder batch.

Each question embeds its query in its own thread. On a small CPU, several encoder calls at the
same moment fight over the same cores (each one wants all of them) and each pays the fixed cost
of a call; one call over all their texts costs little more than one alone. A :class:`Coalescer`
gives that without a timer: a caller that finds no batch running runs one at once (no added
latency when alone); callers that arrive while it runs queue up, and when it finishes, the first
of them runs everything that queued meanwhile as the next batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)


@dataclass(eq=False)
class _Request(Generic[K]):
    key: K
    texts: Sequence[str]
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to run the next batch, not with a result
    result: np.ndarray | None = None
    error: BaseException | None = None


class Coalescer(Generic[K]):
    """Runs ``encode(key, texts)`` once for the texts of every caller waiting with the same key.

    ``key`` separates calls that must not share a batch (different prompts). A batch holds at
    most ``max_texts`` texts, except that a single larger request runs whole, by itself.
    """

    def __init__(self, encode: Callable[[K, list[str]], np.ndarray], max_texts: int = 256) -> None:
        self._encode = encode
        self.max_texts = max_texts
        self._lock = threading.Lock()
        self._queue: list[_Request[K]] = []
        self._busy = False
        self.batches = 0  # encoder calls made (for tests and benchmarks)
        self.requests = 0  # requests served

    def __call__(self, key: K, texts: Sequence[str]) -> np.ndarray:
        request: _Request[K] = _Request(key, texts)
        with self._lock:
            self._queue.append(request)
            lead = not self._busy
            self._busy = True
        if lead:
            self._run_next_batch()  # the queue was empty: this request heads the batch
        while True:
            request.ready.wait()
            if not request.lead:
                return self._outcome(request)
            request.lead = False  # woken to run the batch that queued behind the last one
            request.ready.clear()
            self._run_next_batch()

    @staticmethod
    def _outcome(request: _Request[K]) -> np.ndarray:
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _take(self) -> list[_Request[K]]:
        """The next batch: the oldest request and every later one with its key, up to ``max_texts``."""
        with self._lock:
            first = self._queue[0]
            batch, size = [], 0
            for request in self._queue:
                if request.key != first.key:
                    continue
                if batch and size + len(request.texts) > self.max_texts:
                    break
                batch.append(request)
                size += len(request.texts)
            taken = {id(r) for r in batch}
            self._queue = [r for r in self._queue if id(r) not in taken]
            return batch

    def _run_next_batch(self) -> None:
        batch = self._take()
        texts = [t for request in batch for t in request.texts]
        try:
            vectors = self._encode(batch[0].key, texts)
            start = 0
            for request in batch:
                request.result = vectors[start:start + len(request.texts)]
                start += len(request.texts)
        except BaseException as exc:  # noqa: BLE001 - every caller in the batch gets the error
            for request in batch:
                request.error = exc
        with self._lock:
            self.batches += 1
            self.requests += len(batch)
            following = self._queue[0] if self._queue else None
            if following is None:
                self._busy = False
            else:
                following.lead = True
        for request in batch:
            request.ready.set()
        if following is not None:
            following.ready.set()  # it runs the next batch in its own thread
