"""Continuous batching: same tokens as one-at-a-time ``generate``, slots freed on cancel, late joiners."""

from __future__ import annotations

import threading
import time

import pytest

from core.generation.scheduler import BatchScheduler
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


def test_growing_cache_appends_in_place_and_adopts_rows_set_from_outside():
    import torch

    from core.generation.kv_cache import CACHE_HEADROOM, layer_tensors as _layer_tensors, new_cache, set_layer_tensors as _set_layer_tensors

    g = torch.Generator().manual_seed(0)

    def kv(batch, positions):
        return torch.randn(batch, 3, positions, 8, generator=g), torch.randn(batch, 3, positions, 8, generator=g)

    cache = new_cache()
    k, v = kv(2, 5)
    expected_k, expected_v = k, v
    keys, values = cache.update(k, v, 0)
    first = keys.data_ptr()
    for _ in range(CACHE_HEADROOM + 3):  # past the first room: one reallocation, same contents
        k, v = kv(2, 1)
        expected_k, expected_v = torch.cat([expected_k, k], -2), torch.cat([expected_v, v], -2)
        keys, values = cache.update(k, v, 0)
        assert torch.equal(keys, expected_k) and torch.equal(values, expected_v)
        if keys.shape[-2] <= 5 + CACHE_HEADROOM:
            assert keys.data_ptr() == first, "appended in place, not copied"
    assert cache.get_seq_length() == 5 + CACHE_HEADROOM + 3

    # The scheduler keeps one row (a finished answer left): the next step appends to that row.
    _set_layer_tensors(cache, [[keys[1:], values[1:]]])
    k, v = kv(1, 1)
    keys, values = cache.update(k, v, 0)
    assert torch.equal(keys, torch.cat([expected_k[1:], k], -2)) and torch.equal(values, torch.cat([expected_v[1:], v], -2))

    # A cache seeded from a kept prefix never writes into the prefix's tensors.
    prefix = [[t.clone() for t in kv(1, 4)]]
    kept = [[t.clone() for t in prefix[0]]]
    seeded = new_cache(prefix)
    k, v = kv(1, 2)
    seeded.update(k, v, 0)
    assert torch.equal(prefix[0][0], kept[0][0]) and torch.equal(prefix[0][1], kept[0][1])
    assert torch.equal(_layer_tensors(seeded)[0][0], torch.cat([kept[0][0], k], -2))


def test_a_shared_prompt_prefix_is_read_once_and_answers_do_not_change(plain, plain_int4, prompts, settings):
    """The system turn's keys and values are kept and reused: same tokens as generate, fewer tokens read.

    fp32 only: with bf16 activations (4-bit layers) the split changes near-ties, so there the
    generator never asks for it."""
    generator = plain
    batched = BatchedTransformersGenerator(settings.generator_model, "cpu", settings.cache_dir, banned_words=(PASSAGE_LABEL,),
                                           quantize="none")
    messages, ids = prompts
    four_bit = BatchedTransformersGenerator(settings.generator_model, "cpu", settings.cache_dir, banned_words=(PASSAGE_LABEL,),
                                            quantize="auto")
    assert four_bit.shared_prefix(messages[0], ids[0]) == 0
    shared = [batched.shared_prefix(m, i) for m, i in zip(messages, ids)]
    assert shared[0] > 10 and len(set(shared[:3])) == 1, "the grounded prompts share their system turn"
    assert shared[3] == 0, "a prompt without a system turn shares nothing"
    n = 12
    expected = [reference_ids(generator, p, n) for p in ids]
    scheduler = make_scheduler(generator, prefill_chunk=64)
    results: list[list[int] | None] = [None] * len(ids)

    def consume(i: int) -> None:
        results[i] = list(scheduler.submit(ids[i], n, shared_prefix=shared[i]))

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(ids))]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(300)
    assert results == expected
    assert scheduler.stats()["prefix_hits"] == 2, "read once for the first grounded prompt, reused by the next two"
    scheduler.close()


def test_a_prompt_is_never_cut_into_a_sliver(plain, prompts):
    """Between two steps: whole prompts while they fit the budget, a longer prompt in budget-sized chunks."""
    _, ids = prompts
    scheduler = make_scheduler(plain, prefill_chunk=64)
    chunks: list[tuple[int, int]] = []
    original = scheduler._prefill_chunk

    def record(req, n):
        chunks.append((n, len(req.prompt) - req.position))
        original(req, n)

    scheduler._prefill_chunk = record
    running = scheduler.submit(ids[0], 40)
    tokens = iter(running)
    next(tokens)
    streams = [scheduler.submit(ids[i], 4) for i in (3, 4, 1)]  # two short prompts and a long one at once
    for s in streams:
        assert list(s)
    list(tokens)
    scheduler.close()
    later = chunks[1:]  # the first prompt was read whole with nobody decoding
    assert later and all(n == remaining or n == 64 for n, remaining in later), later


def test_prefill_chunk_setting_reaches_the_scheduler(settings, plain):
    from core.generation.factory import create_generator

    generator = create_generator(settings.model_copy(update={"generator_prefill_chunk": 96, "generator_quantize": "none",
                                                             "generator_max_batch": 5}))
    assert isinstance(generator, BatchedTransformersGenerator)
    scheduler = generator.scheduler()
    assert scheduler.prefill_chunk == 96 and scheduler.max_batch == 5
    scheduler.close()


def test_the_scheduler_counts_prompt_reading_apart_from_decoding(plain, prompts):
    _, ids = prompts
    scheduler = make_scheduler(plain)
    try:
        list(scheduler.submit(ids[1], 4))
        stats = scheduler.stats()
        assert stats["prompt_tokens"] == len(ids[1])  # every prompt token read once, none twice
        assert stats["prompt_seconds"] > 0 and stats["decode_seconds"] > 0
        list(scheduler.submit(ids[3], 4))
        assert scheduler.stats()["prompt_tokens"] == len(ids[1]) + len(ids[3])
    finally:
        scheduler.close()


def test_metrics_expose_the_schedulers_prompt_and_decoding_time():
    from prometheus_client.parser import text_string_to_metric_families

    from core.metrics import Metrics

    stats = [{"waiting": 1, "active": 2, "prompt_seconds": 1.5, "decode_seconds": 0.5, "prompt_tokens": 300},
             {"waiting": 0, "active": 1, "prompt_seconds": 0.5, "decode_seconds": 0.25, "prompt_tokens": 100}]
    text = Metrics(scheduler_stats=lambda: stats).render()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text.decode())
               for s in family.samples}
    assert samples[("askdesk_generation_seconds_total", (("phase", "prompt"),))] == 2.0
    assert samples[("askdesk_generation_seconds_total", (("phase", "decode"),))] == 0.75
    assert samples[("askdesk_generation_prompt_tokens_total", ())] == 400
    assert samples[("askdesk_generation_queue_depth", ())] == 1
