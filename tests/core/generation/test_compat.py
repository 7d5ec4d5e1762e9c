"""The transformers and torch internals askdesk relies on, checked on a tiny random model (no weights
to load, so this runs in every test run): when an upgrade breaks one, this file says which.

Fenced here: the KV cache layout and cache argument (``core.generation.kv_cache``), the scheduler's
batched decoding on it (``core.generation.scheduler``), and the private 4-bit / prepacked bf16 CPU
operations of ``core.generation.int4``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from core.generation import kv_cache
from core.generation.int4 import int4_kernel_available
from core.generation.scheduler import BatchScheduler

ROOT = Path(__file__).resolve().parents[3]


def pinned_version(package: str) -> str | None:
    """The version the suite last passed with: constraints.txt, or for torch the Makefile's TORCH_VERSION."""
    if package == "torch":
        found = re.search(r"^TORCH_VERSION \?= (\S+)", (ROOT / "Makefile").read_text(), re.M)
        return found.group(1) if found else None
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(package + "=="):
            return line.split("==", 1)[1].strip()
    return None


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(config).eval()


def test_the_cache_argument_is_one_forward_accepts(tiny_model):
    import inspect

    name = kv_cache.cache_kwarg(tiny_model)
    assert name in inspect.signature(tiny_model.forward).parameters


def test_a_cache_exposes_keys_and_values_per_layer(tiny_model):
    cache = kv_cache.new_cache()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.inference_mode():
        tiny_model(input_ids=ids, **{kv_cache.cache_kwarg(tiny_model): cache, "use_cache": True})
    layers = kv_cache.layer_tensors(cache)
    assert len(layers) == 2
    keys, values = layers[0]
    assert keys.shape == values.shape == (1, 2, 4, 8), "batch, kv heads, positions, head dim"


def test_the_growing_cache_is_active_on_the_tested_transformers():
    """On the pinned release the in-place cache must be used; elsewhere the plain one is an accepted fallback."""
    import transformers

    if transformers.__version__ != pinned_version("transformers"):
        pytest.skip(f"transformers {transformers.__version__} is not the tested {pinned_version('transformers')}")
    assert kv_cache._growing_cache_class() is not None, "DynamicLayer/Cache API changed: the growing cache is off"


def greedy(model, prompt: list[int], n: int) -> list[int]:
    """Reference tokens: the whole sequence recomputed every step, no cache at all."""
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(n):
            logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1]
            ids.append(int(torch.argmax(logits)))
    return ids[len(prompt):]


def test_batched_decoding_on_the_cache_equals_recomputing_each_sequence(tiny_model):
    """Rows of different lengths joined (left-padded), finished rows dropped (trimmed), a shared
    prefix reused: every request still gets exactly the tokens of its own uncached greedy decode."""
    prompts = [[3, 9, 14, 15, 22, 40], [3, 9, 14, 50, 51], [3, 9, 14, 61, 62, 63, 64, 65, 66, 67], [70, 71, 72]]
    lengths = [12, 5, 9, 7]
    expected = [greedy(tiny_model, p, n) for p, n in zip(prompts, lengths)]
    scheduler = BatchScheduler(tiny_model, eos_token_ids=[], max_batch=3, prefill_chunk=4, device="cpu")
    try:
        streams = [scheduler.submit(p, n, min_new_tokens=n, shared_prefix=3 if p[0] == 3 else 0)
                   for p, n in zip(prompts, lengths)]
        got = [list(s) for s in streams]
    finally:
        scheduler.close()
    assert got == expected
    stats = scheduler.stats()
    assert stats["max_batch_seen"] >= 2 and stats["prefix_hits"] >= 1 and stats["completed"] == 4


def test_join_and_keep_rows_pad_on_the_left_and_trim_unused_columns():
    a = kv_cache.new_cache([[torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)]])
    b = kv_cache.new_cache([[torch.full((1, 1, 4, 2), 2.0), torch.full((1, 1, 4, 2), 2.0)]])
    mask = kv_cache.join_rows(a, torch.ones(1, 2, dtype=torch.long), b, torch.ones(1, 4, dtype=torch.long))
    assert mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]
    keys = kv_cache.layer_tensors(a)[0][0]
    assert keys[0, 0, :, 0].tolist() == [0, 0, 1, 1] and keys[1, 0, :, 0].tolist() == [2, 2, 2, 2]
    mask = kv_cache.keep_rows(a, mask, torch.tensor([0]))
    assert mask.tolist() == [[1, 1]], "padding no remaining row needs is dropped"
    assert kv_cache.layer_tensors(a)[0][0].shape == (1, 1, 2, 2)


def test_the_private_cpu_operations_of_4_bit_decoding_exist_on_the_tested_torch():
    """int4.py calls torch._convert_weight_to_int4pack_for_cpu, torch._weight_int4pack_mm_for_cpu and
    torch.ops.mkldnn._reorder_linear_weight / _linear_pointwise. Another torch may lack them
    (4-bit then falls back to fp32); the tested one must have them."""
    if re.sub(r"\+.*", "", torch.__version__) != pinned_version("torch"):
        pytest.skip(f"torch {torch.__version__} is not the tested {pinned_version('torch')}")
    assert int4_kernel_available()
    assert hasattr(torch.ops.mkldnn, "_reorder_linear_weight") and hasattr(torch.ops.mkldnn, "_linear_pointwise")
