"""4-bit weights on CPU: a Q4_1 grid comes back exactly, products match fp32 to bf16 precision,
and ``auto`` picks 4 bits only for a 4-bit GGUF source on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from core.generation.int4 import int4_kernel_available, quantize_int4
from core.generation.model_store import SOURCE_INFO, four_bit_source
from core.generation.transformers_backend import resolve_quantize

pytestmark = pytest.mark.skipif(not int4_kernel_available(), reason="this torch build has no 4-bit CPU kernels")


def q4_1_weights(out_features: int, in_features: int, seed: int = 0) -> torch.Tensor:
    """Weights as a Q4_1 file holds them: per 32 inputs, d·q + m with fp16 d and m, q in 0…15."""
    g = torch.Generator().manual_seed(seed)
    blocks = in_features // 32
    q = torch.randint(0, 16, (out_features, blocks, 32), generator=g).float()
    q[..., 0], q[..., 1] = 0, 15  # the quantizer's block minimum and maximum
    d = (torch.rand(out_features, blocks, 1, generator=g) * 0.02 + 1e-3).half().float()
    m = (-torch.rand(out_features, blocks, 1, generator=g) * 0.1).half().float()
    return (d * q + m).reshape(out_features, in_features)


class Tiny(torch.nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=True)
        self.proj.weight.data = weight.clone()
        self.proj.bias.data = torch.linspace(-1, 1, weight.shape[0])
        self.lm_head = torch.nn.Linear(weight.shape[0], 48, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.proj(x))


def test_q4_1_weights_keep_their_codes_and_products_match_fp32():
    weight = q4_1_weights(64, 128)
    model = Tiny(weight)
    reference = Tiny(weight)
    reference.lm_head.weight.data = model.lm_head.weight.data.clone()
    report = quantize_int4(model)
    assert (report.layers, report.kept) == (1, 1)  # the output head keeps its fp32 weights
    assert report.same_codes and report.max_error == 0.0 and report.exact_top_head
    assert type(model.proj).__name__ == "Int4Linear" and type(model.lm_head).__name__ == "ExactTopHead"
    assert model.lm_head.weight is reference.lm_head.weight or torch.equal(model.lm_head.weight, reference.lm_head.weight)
    for shape in ((1, 128), (3, 1, 128), (2, 20, 128)):  # decoding steps: 4-bit kernel; prompts: bf16 matrix
        x = torch.randn(*shape)
        with torch.inference_mode():
            expected, got = reference.proj(x), model.proj(x)
        assert got.dtype == torch.float32 and got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2 * float(expected.abs().max()))


def test_rows_are_computed_independently_of_the_batch_and_of_prompt_chunks():
    model = Tiny(q4_1_weights(64, 128, seed=1))
    quantize_int4(model)
    with torch.inference_mode():
        step = torch.randn(24, 1, 128)  # one decoding step of 24 answers
        assert torch.equal(model.proj(step), torch.cat([model.proj(step[i:i + 1]) for i in range(24)]))
        prompt = torch.randn(1, 70, 128)  # read whole, or in chunks of 64 + 5 + 1 positions
        chunks = [prompt[:, :64], prompt[:, 64:69], prompt[:, 69:]]
        assert torch.equal(model.proj(prompt)[:, :69], torch.cat([model.proj(c) for c in chunks[:2]], dim=1))


def test_ordinary_weights_are_quantized_approximately():
    model = Tiny(torch.randn(64, 128))
    report = quantize_int4(model)
    assert report.layers == 1 and not report.same_codes and 0 < report.max_error < 0.5


def test_auto_means_4_bit_only_for_a_4_bit_gguf_source_on_cpu(tmp_path):
    converted = tmp_path / "from-gguf"
    converted.mkdir()
    (converted / SOURCE_INFO).write_text(json.dumps({"gguf": "m.Q4_1.gguf", "matrix_types": {"Q4_1": 210, "Q8_0": 1}}))
    eight_bit = tmp_path / "from-q8"
    eight_bit.mkdir()
    (eight_bit / SOURCE_INFO).write_text(json.dumps({"gguf": "m.Q8_0.gguf", "matrix_types": {"Q8_0": 211}}))
    plain = tmp_path / "hf-folder"
    plain.mkdir()

    assert four_bit_source(converted) and not four_bit_source(eight_bit) and not four_bit_source(plain)
    assert resolve_quantize("auto", "cpu", str(converted)) == "int4"
    assert resolve_quantize("auto", "cpu", str(eight_bit)) == "none"
    assert resolve_quantize("auto", "cpu", str(plain)) == "none"
    assert resolve_quantize("auto", "cuda", str(converted)) == "none"  # CUDA runs bf16
    assert resolve_quantize("none", "cpu", str(converted)) == "none"
    assert resolve_quantize("int4", "cpu", str(plain)) == "int4"
    (converted / SOURCE_INFO).write_text("{not json")
    assert resolve_quantize("auto", "cpu", str(converted)) == "none"  # a damaged hint: full precision


def test_the_bundled_model_runs_on_its_own_4_bit_codes(settings):
    from core.generation.transformers_backend import TransformersGenerator

    generator = TransformersGenerator(settings.generator_model, "cpu", settings.cache_dir, quantize="auto")
    model, _ = generator._loaded()
    layers = [m for m in model.modules() if type(m).__name__ == "Int4Linear"]
    assert len(layers) == 210  # every attention and MLP projection of SmolLM2-135M
    assert max(m.reconstruction_error for m in layers) == 0.0  # Q4_1: the file's codes, exactly
    assert type(model.lm_head).__name__ == "ExactTopHead"
    # Still tied: the head reads the input embeddings' own fp32 parameter, no second fp32 copy.
    assert model.lm_head.weight is model.get_input_embeddings().weight


def test_exact_top_head_picks_what_the_fp32_head_picks():
    """bf16 scores the vocabulary, fp32 rescores the best candidates: same winner, same winning logit."""
    from core.generation.int4 import EXACT_TOP_K

    g = torch.Generator().manual_seed(3)
    vocab, width = 5000, 256
    head = torch.nn.Linear(width, vocab, bias=False)
    head.weight.data = torch.randn(vocab, width, generator=g) * 0.05

    class OnlyHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lm_head = head

    model = OnlyHead()
    x = torch.randn(64, 1, width, generator=g)
    # A race bf16 cannot see: token 20 is token 10 plus a nudge below bf16's resolution, so
    # bf16 scores them equal (and argmax takes 10), fp32 puts 20 ahead.
    x[0, 0] = 1.0
    head.weight.data[10] = 0.5
    head.weight.data[20] = 0.5 + 1e-4
    quantize_int4(model)
    exact_top = model.lm_head
    assert type(exact_top).__name__ == "ExactTopHead" and exact_top.k == EXACT_TOP_K
    with torch.inference_mode():
        reference = torch.nn.functional.linear(x, head.weight)
        got = exact_top(x)
        approximate = torch.nn.functional.linear(x.bfloat16(), head.weight.bfloat16()).float()
    assert got.shape == reference.shape and got.dtype == torch.float32
    assert int(reference[0, 0].argmax()) == 20 and int(approximate[0, 0].argmax()) == 10
    assert torch.equal(got.argmax(-1), reference.argmax(-1))
    winners = reference.argmax(-1, keepdim=True)
    torch.testing.assert_close(got.gather(-1, winners), reference.gather(-1, winners), rtol=1e-5, atol=1e-5)
