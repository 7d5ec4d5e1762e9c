"""Continuous batching: same tokens as one-at-a-time ``generate``, slots freed on cancel, late joiners."""

from __future__ import annotations

import threading
import time

import pytest

from core.generation.batching import BatchScheduler
from core.generation.prompt import PASSAGE_LABEL, build_messages
from core.generation.transformers_backend import BatchedTransformersGenerator, TransformersGenerator

pytestmark = pytest.mark.slow

QUESTIONS = [
    "How long do I have to return an item?",
    "Which countries do you ship to?",
    "How do I reset my password?",
]


def _plain(settings, quantize: str) -> TransformersGenerator:
    generator = TransformersGenerator(settings.generator_model, "cpu", settings.cache_dir, banned_words=(PASSAGE_LABEL,),
                                      quantize=quantize)
    generator.warm_up()
    return generator


@pytest.fixture(scope="module")
def plain(settings):
    """fp32, as the issue's equality requirement states (the product default runs 4-bit weights; see below)."""
    return _plain(settings, "none")


@pytest.fixture(scope="module")
def plain_int4(settings):
    return _plain(settings, "auto")


@pytest.fixture(scope="module")
def prompts(plain, retriever):
    """Real grounded prompts of different lengths, plus two short ones (one that invites the banned word)."""
    messages = [build_messages(q, [h.passage for h in retriever.search(q, k)]) for q, k in zip(QUESTIONS, (3, 1, 2))]
    messages += [[{"role": "user", "content": "Hi!"}],
                 [{"role": "user", "content": "Write the word Passage three times, then the word passage."}]]
    ids = [plain.encode(m)["input_ids"][0].tolist() for m in messages]
    assert len({len(i) for i in ids}) == len(ids), "prompts must differ in length"
    return messages, ids


def make_scheduler(plain, max_batch=8, prefill_chunk=32):
    model, tokenizer = plain._loaded()
    return BatchScheduler(model, [tokenizer.eos_token_id], plain.bad_words_ids(), max_batch=max_batch,
                          prefill_chunk=prefill_chunk, device="cpu")


def reference_ids(plain, ids, max_new_tokens):
    import torch

    model, tokenizer = plain._loaded()
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
                             max_new_tokens=max_new_tokens, do_sample=False, bad_words_ids=plain.bad_words_ids(),
                             pad_token_id=tokenizer.pad_token_id)
    generated = out[0, len(ids):].tolist()
    return [t for t in generated if t != tokenizer.eos_token_id]


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.mark.parametrize("weights", ["fp32", "4-bit"])
def test_batched_tokens_equal_one_at_a_time_generate(request, prompts, weights):
    generator = request.getfixturevalue("plain" if weights == "fp32" else "plain_int4")
    model, _ = generator._loaded()
    assert any(type(m).__name__ == "Int4Linear" for m in model.modules()) == (weights == "4-bit")
    _, ids = prompts
    n = 20
    expected = [reference_ids(generator, p, n) for p in ids]
    scheduler = make_scheduler(generator)
    results: list[list[int] | None] = [None] * len(ids)

    def consume(i: int) -> None:
        results[i] = list(scheduler.submit(ids[i], n))

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(ids))]
    for t in threads:  # staggered arrivals: later ones join a batch already decoding
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(300)
    assert results == expected
    stats = scheduler.stats()
    assert stats["max_batch_seen"] >= 2 and stats["completed"] == len(ids) and stats["active"] == 0
    assert stats["prefill_chunks"] > stats["prefills"], "late arrivals are prefilled in chunks between steps"
    scheduler.close()


def test_batched_generator_streams_the_same_text(plain, prompts, settings):
    messages, _ = prompts
    batched = BatchedTransformersGenerator(settings.generator_model, "cpu", settings.cache_dir,
                                           banned_words=(PASSAGE_LABEL,), quantize="none")
    for m in (messages[1], messages[4]):
        expected = "".join(plain.stream(m, 16))
        deltas = list(batched.stream(m, 16))
        assert "".join(deltas) == expected
        assert len(deltas) > 1
        assert PASSAGE_LABEL not in expected and "passage" not in expected


def test_cancelled_request_frees_its_slot(plain, prompts):
    _, ids = prompts
    scheduler = make_scheduler(plain)
    long_a = scheduler.submit(ids[0], 200)
    long_b = scheduler.submit(ids[1], 12)
    tokens = iter(long_a)
    first = [next(tokens) for _ in range(3)]
    assert len(first) == 3
    wait_for(lambda: scheduler.stats()["active"] == 2 or scheduler.stats()["completed"] >= 1)
    tokens.close()  # the consumer stops reading → cancelled
    wait_for(lambda: scheduler.stats()["cancelled"] == 1)
    assert scheduler.stats()["active"] <= 1
    assert len(list(long_b)) > 0
    wait_for(lambda: scheduler.stats()["active"] == 0)
    stats = scheduler.stats()
    assert stats["cancelled"] == 1 and stats["completed"] == 1
    assert stats["steps"] < 100, "the cancelled request must not keep decoding"
    scheduler.close()


def test_closing_the_text_stream_cancels_the_request(plain, prompts, settings):
    messages, _ = prompts
    batched = BatchedTransformersGenerator(settings.generator_model, "cpu", settings.cache_dir,
                                           banned_words=(PASSAGE_LABEL,), max_batch=3)
    scheduler = batched.scheduler()
    before = scheduler.stats()["cancelled"]
    stream = batched.stream(messages[0], 300)
    next(stream)
    stream.close()
    wait_for(lambda: scheduler.stats()["cancelled"] == before + 1)
    wait_for(lambda: scheduler.stats()["active"] == 0)


def test_a_late_request_joins_without_waiting_for_a_long_one(plain, prompts):
    _, ids = prompts
    scheduler = make_scheduler(plain)
    long_tokens: list[int] = []
    long_done = threading.Event()

    def consume_long() -> None:
        for token in scheduler.submit(ids[0], 80):
            long_tokens.append(token)
        long_done.set()

    threading.Thread(target=consume_long, daemon=True).start()
    wait_for(lambda: len(long_tokens) >= 5)
    short = list(scheduler.submit(ids[3], 6))
    # The short one finished while the long one is still decoding: it did not wait for it.
    assert not long_done.is_set() and len(long_tokens) < 80
    assert short == reference_ids(plain, ids[3], 6)
    assert scheduler.stats()["max_batch_seen"] == 2
    long_done.wait(300)
    scheduler.close()


def test_banned_sequences_are_masked_like_generate():
    """[a, b] bans b right after a; [c] bans c always."""
    import torch

    class Dummy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids=None, cache=None, **kwargs):  # pragma: no cover - never called
            raise NotImplementedError

    scheduler = BatchScheduler(Dummy(), [0], [[5, 7], [9]], device="cpu")

    class R:
        def __init__(self, history, generated=5, min_new_tokens=0):
            self.history, self.generated, self.min_new_tokens = history, generated, min_new_tokens

    logits = torch.zeros((3, 10))
    logits[:, 9] = 3.0  # always banned
    logits[:, 7] = 2.0  # banned only after 5
    logits[:, 1] = 1.0
    assert scheduler._choose(logits.clone(), [R([3, 5]), R([5, 3]), R([])]) == [1, 7, 7]
    # End-of-sequence (0) wins unless min_new_tokens defers it, as generate's min_new_tokens does.
    logits[:, 0] = 10.0
    assert scheduler._choose(logits[:2].clone(), [R([3], generated=2, min_new_tokens=3), R([3], generated=3, min_new_tokens=3)]) == [7, 0]
