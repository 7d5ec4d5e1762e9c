"""4-bit weights for CPU decoding: run a GGUF model with the numbers its file holds.

On a CPU, decoding one token reads every weight once, so tokens/s is bounded by bytes per
weight. transformers de-quantises a GGUF file (the bundled SmolLM2 is Q4_1) into fp32: eight
times the bytes of the 4-bit original. This module puts the 4-bit numbers back: each
``nn.Linear`` becomes an :class:`Int4Linear` holding groupwise 4-bit codes with one scale
and one offset per group of 32 inputs, packed for PyTorch's CPU kernel
(``torch._weight_int4pack_mm_for_cpu``), which multiplies bf16 activations by the codes
without materialising fp32 weights. Reading a prompt is compute-bound instead, and there
a dense bf16 product beats both fp32 and the 4-bit kernel, so prompt tokens are multiplied by a
bf16 copy of the same weights.

Q4_1 stores exactly that: per block of 32, ``w = d·q + m`` with ``q`` in 0…15. Recovering
``m`` as the block minimum and ``d`` as range/15 gives back the file's own codes exactly
(``Int4Linear.reconstruction_error`` is 0 for a Q4_1 file). The kernel keeps the scale and
offset in bf16, and multiplies bf16 activations, so results differ from the fp32 copy in the
last bits: most greedy answers come out token for token the same as fp32, a few differ in
near-ties (docs/serving.md).
Other 4-bit GGUF types (Q4_0, Q4_K) land on nearly the same grid. For any other model the
same packing is an ordinary 4-bit quantization: smaller and faster, with slightly different
text, and therefore only used when asked for (``ASKDESK_GENERATOR_QUANTIZE=int4``).

The output head keeps its fp32 weights (tied to the embeddings, Q8_0 in the bundled file;
4 bits there would change which token wins) but reads them through :class:`ExactTopHead`:
a bf16 copy scores the whole vocabulary at half the bytes, and the few best candidates are
scored again in fp32. The winner is the one the fp32 head would choose unless the fp32 best
falls outside the bf16 top ``k`` — bf16 rounding moves a logit far less than the usual gap
between the best and the k-th best. The fp32 head, a product with the whole vocabulary, is a
large share of a CPU decoding step; the prepacked bf16 copy (:class:`Bf16Product`) reads half
the bytes, and rescoring ``k`` rows costs next to nothing (figures: docs/serving.md,
docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP_SIZE = 32
#: Module names never quantized (the output head decides the next token).
KEEP_FULL_PRECISION = ("lm_head",)


def int4_kernel_available() -> bool:
    """True when this torch build has the CPU kernels (torch ≥ 2.5)."""
    import torch

    return hasattr(torch, "_weight_int4pack_mm_for_cpu") and hasattr(torch, "_convert_weight_to_int4pack_for_cpu")


def _int4_linear_class():
    import torch

    class Int4Linear(torch.nn.Module):
        """A linear layer with groupwise 4-bit weights (asymmetric: scale and offset per group)."""

        def __init__(self, linear: torch.nn.Linear, group_size: int = GROUP_SIZE) -> None:
            super().__init__()
            weight = linear.weight.detach().float().cpu()
            out_features, in_features = weight.shape
            groups = weight.reshape(out_features, in_features // group_size, group_size)
            low = groups.amin(dim=-1, keepdim=True)
            scale = ((groups.amax(dim=-1, keepdim=True) - low) / 15).clamp_min(torch.finfo(torch.float32).tiny)
            codes = torch.clamp(torch.round((groups - low) / scale), 0, 15)
            #: Largest |w - codes·scale - low| in fp32; 0 when the weights came from a Q4_1 file.
            self.reconstruction_error = float(((codes * scale + low) - groups).abs().max())
            # The kernel computes (code - 8) · scale + zero, so zero = low + 8 · scale.
            scales_and_zeros = torch.stack([scale.squeeze(-1), (low + 8 * scale).squeeze(-1)], dim=-1)
            self.register_buffer("packed", torch._convert_weight_to_int4pack_for_cpu(
                codes.reshape(out_features, in_features).to(torch.int32), 1))
            self.register_buffer("scales_and_zeros", scales_and_zeros.transpose(0, 1).contiguous().to(torch.bfloat16))
            # The same weights as a bf16 matrix, for reading prompts (compute-bound, where the
            # 4-bit kernel loses to a dense product). Half the bytes of the fp32 layer it replaces.
            self.dense = Bf16Product((codes * scale + low).reshape(out_features, in_features).to(torch.bfloat16))
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().float(), requires_grad=False)
            self.in_features, self.out_features, self.group_size = in_features, out_features, group_size

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            rows = x.reshape(-1, shape[-1]).to(torch.bfloat16)
            # Prompt tokens (more than one position per sequence) take the dense product; decoding
            # steps (one position per sequence, any batch size) the 4-bit kernel. Deciding by
            # position rather than by row count keeps every row's arithmetic the same however
            # prompts are chunked and however many answers share a step, so a question gets the
            # same answer alone or in a batch. (Both products compute rows independently.)
            if x.dim() >= 3 and shape[-2] > 1:
                y = self.dense(rows).to(x.dtype)
            else:
                y = torch._weight_int4pack_mm_for_cpu(rows, self.packed, self.group_size, self.scales_and_zeros).to(x.dtype)
            y = y.reshape(*shape[:-1], self.out_features)
            return y if self.bias is None else y + self.bias

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}"

    return Int4Linear


class Bf16Product:
    """``F.linear(x, weight)`` for a fixed bf16 matrix, with the weight laid out for oneDNN once.

    A plain bf16 ``F.linear`` reorders the whole weight into oneDNN's blocked layout at every
    call; for the output head that reordering was most of the call, and a noticeable share of
    reading a prompt (docs/performance.md). The prepacked product gives the same bits
    (checked on a probe here, else the plain product is used).
    """

    def __init__(self, weight) -> None:
        import torch

        self.weight = weight
        self.packed = None
        try:
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, 128)
            probe = torch.linspace(-2, 2, 3 * weight.shape[1]).reshape(3, -1).to(weight.dtype)
            if torch.equal(torch.ops.mkldnn._linear_pointwise(probe, packed, None, "none", [], ""),
                           torch.nn.functional.linear(probe, weight)):
                self.packed = packed
        except (AttributeError, RuntimeError):  # no oneDNN in this torch build, or no bf16 support on this CPU
            pass

    def __call__(self, rows):
        import torch

        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(rows.contiguous(), self.packed, None, "none", [], "")
        return torch.nn.functional.linear(rows, self.weight)


#: Candidates the output head scores again in fp32.
EXACT_TOP_K = 16


def _exact_top_head_class():
    import torch

    class ExactTopHead(torch.nn.Module):
        """Output head: bf16 logits for the vocabulary, fp32 logits for its ``k`` best entries."""

        def __init__(self, linear: torch.nn.Linear, k: int = EXACT_TOP_K) -> None:
            super().__init__()
            self.weight = linear.weight  # the fp32 parameter itself (tied to the input embeddings)
            self.bias = linear.bias
            self.approximate = Bf16Product(linear.weight.detach().to(torch.bfloat16))
            self.k = min(k, linear.out_features)
            self.in_features, self.out_features = linear.in_features, linear.out_features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = x.reshape(-1, self.in_features)
            logits = self.approximate(rows.to(torch.bfloat16)).float()
            top = logits.topk(self.k, dim=-1).indices  # [rows, k]
            exact = torch.einsum("rkd,rd->rk", self.weight[top], rows.float())
            if self.bias is not None:
                logits = logits + self.bias
                exact = exact + self.bias[top]
            logits.scatter_(1, top, exact)
            return logits.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, exact_top_k={self.k}"

    return ExactTopHead


@dataclass(frozen=True, slots=True)
class Int4Report:
    layers: int  # linear layers now 4-bit
    kept: int  # linear layers left in full precision (the head, odd shapes)
    exact_top_head: bool  # the output head scores bf16 then rescores its best candidates in fp32
    max_error: float  # largest fp32 reconstruction error of the codes over the converted layers

    @property
    def same_codes(self) -> bool:
        """The weights were already on a 4-bit grid (a 4-bit GGUF source): no rounding of codes."""
        return self.layers > 0 and self.max_error == 0.0


def quantize_int4(model, group_size: int = GROUP_SIZE) -> Int4Report:
    """Replace the model's linear layers (in place, CPU) with :class:`Int4Linear`; returns what changed."""
    import torch

    Int4Linear = _int4_linear_class()
    ExactTopHead = _exact_top_head_class()
    layers = kept = 0
    max_error = 0.0
    head = False
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, torch.nn.Linear):
                continue
            if name in KEEP_FULL_PRECISION:
                setattr(parent, name, ExactTopHead(child))
                kept += 1
                head = True
                continue
            if child.in_features % group_size or child.out_features % 16:
                kept += 1
                continue
            replacement = Int4Linear(child, group_size)
            setattr(parent, name, replacement)
            layers += 1
            max_error = max(max_error, replacement.reconstruction_error)
    return Int4Report(layers, kept, head, max_error)


__all__ = ["EXACT_TOP_K", "GROUP_SIZE", "Int4Report", "int4_kernel_available", "quantize_int4"]
