"""Concurrent encoder calls merged into one (core.retrieval.coalescing), without a model."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core.retrieval.coalescing import Coalescer


class GatedEncoder:
    """Encodes a text as [len(text), key marker]; the first call waits at a gate until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_on: str | None = None

    def __call__(self, key: str, texts: list[str]) -> np.ndarray:
        self.calls.append((key, list(texts)))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.gate.wait(10)
        if self.fail_on in texts:
            raise RuntimeError(f"cannot encode {self.fail_on!r}")
        return np.array([[len(t), ord(key[0])] for t in texts], dtype=np.float32)


def _waiting(coalescer: Coalescer, count: int) -> bool:
    with coalescer._lock:  # noqa: SLF001 - the test waits until the callers have queued
        return len(coalescer._queue) == count  # noqa: SLF001


def _start_blocked(encoder: GatedEncoder, coalescer: Coalescer, pool: ThreadPoolExecutor):
    """One call that holds the encoder, so the next callers must queue behind it."""
    first = pool.submit(coalescer, "q", ["first"])
    assert encoder.entered.wait(10)
    return first


def _wait_queued(coalescer: Coalescer, count: int) -> None:
    for _ in range(1000):
        if _waiting(coalescer, count):
            return
        threading.Event().wait(0.005)
    raise AssertionError(f"{count} callers never queued")


def test_a_lone_call_runs_at_once_and_alone():
    encoder = GatedEncoder()
    encoder.gate.set()
    coalescer = Coalescer(encoder)
    vectors = coalescer("q", ["ab", "abcd"])
    assert vectors.tolist() == [[2, ord("q")], [4, ord("q")]]
    assert encoder.calls == [("q", ["ab", "abcd"])] and coalescer.batches == 1


def test_callers_arriving_during_a_batch_share_the_next_one_and_each_get_their_rows():
    encoder = GatedEncoder()
    coalescer = Coalescer(encoder)
    with ThreadPoolExecutor(8) as pool:
        first = _start_blocked(encoder, coalescer, pool)
        texts = [["x" * n] * (1 + n % 2) for n in range(1, 7)]
        later = [pool.submit(coalescer, "q", t) for t in texts]
        _wait_queued(coalescer, len(texts))
        encoder.gate.set()
        assert first.result(10).tolist() == [[5, ord("q")]]
        for future, asked in zip(later, texts):
            assert future.result(10)[:, 0].tolist() == [len(t) for t in asked]
    assert len(encoder.calls) == 2, "the six queued callers must be encoded in one call"
    assert coalescer.requests == 7


def test_different_keys_never_share_a_batch():
    encoder = GatedEncoder()
    coalescer = Coalescer(encoder)
    with ThreadPoolExecutor(4) as pool:
        first = _start_blocked(encoder, coalescer, pool)
        queries = pool.submit(coalescer, "q", ["one"])
        passages = pool.submit(coalescer, "p", ["two"])
        _wait_queued(coalescer, 2)
        encoder.gate.set()
        first.result(10)
        assert queries.result(10)[0, 1] == ord("q") and passages.result(10)[0, 1] == ord("p")
    assert sorted(key for key, _ in encoder.calls[1:]) == ["p", "q"]


def test_a_batch_holds_at_most_max_texts():
    encoder = GatedEncoder()
    coalescer = Coalescer(encoder, max_texts=4)
    with ThreadPoolExecutor(8) as pool:
        first = _start_blocked(encoder, coalescer, pool)
        later = [pool.submit(coalescer, "q", ["a", "b", "c"]) for _ in range(3)]
        _wait_queued(coalescer, 3)
        encoder.gate.set()
        first.result(10)
        assert all(f.result(10).shape == (3, 2) for f in later)
    assert all(len(texts) <= 4 for _, texts in encoder.calls)
    assert len(encoder.calls) == 4


def test_an_error_reaches_every_caller_of_that_batch_and_the_next_batch_still_runs():
    encoder = GatedEncoder()
    encoder.fail_on = "bad"
    coalescer = Coalescer(encoder)
    with ThreadPoolExecutor(4) as pool:
        first = _start_blocked(encoder, coalescer, pool)
        doomed = [pool.submit(coalescer, "q", ["bad"]), pool.submit(coalescer, "q", ["fine"])]
        _wait_queued(coalescer, 2)
        encoder.gate.set()
        first.result(10)
        for future in doomed:
            with pytest.raises(RuntimeError, match="cannot encode 'bad'"):
                future.result(10)
    assert coalescer("q", ["after"]).tolist() == [[5, ord("q")]]


def test_the_embedder_encodes_a_question_once_for_retrieval_and_for_composition():
    """Without query/passage prompts a query's vector is a passage's: the second read is the kept one,
    equal to a fresh encoding; a model's prompts keep the two apart."""
    import numpy as np

    from core.retrieval.embedder import get_embedder
    from tests.conftest import make_settings

    embedder = get_embedder(make_settings().embedding_model)
    encoded: list[list[str]] = []
    inner = embedder._run

    def counting(texts, *args):
        encoded.append(list(texts))
        return inner(texts, *args)

    embedder._run = counting  # the encoder call underneath, counted (the instance is the process's own)
    try:
        question = "how long is the reset link valid for a brand new account"
        query = embedder.embed_queries([question])
        again = embedder.embed_passages([question, question])
        assert encoded == [[question]], "encoded once, read back twice"
        assert np.array_equal(again[0], query[0]) and np.array_equal(again[1], query[0])
        assert np.allclose(inner([question], None, "", 1, False)[0], query[0], atol=1e-6)
        embedder.passage_prompt = "passage: "
        try:
            embedder.embed_passages([question])
        finally:
            embedder.passage_prompt = ""
        assert len(encoded) == 2, "a different prompt is a different encoding"
    finally:
        del embedder._run
