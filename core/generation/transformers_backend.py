"""Local generation with transformers: any causal LM with a chat template, streamed.

CUDA in bf16 when available, else CPU in fp32; greedy decoding by default. The model is
loaded once per process and generation runs in a worker thread that feeds a
``TextIteratorStreamer``, so callers get text as it is produced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from core.errors import GenerationError, ModelError
from core.generation.base import ChatMessage
from core.generation.model_store import resolve_generator_model

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str], tuple[object, object]] = {}


def resolve_quantize(quantize: str, device: str, model_path: str) -> str:
    """What ``ASKDESK_GENERATOR_QUANTIZE`` means for this model and device: ``int4`` or ``none``.

    ``auto`` runs a 4-bit GGUF source (the bundled model) with its own 4-bit weights on CPU
    — several times the tokens/s of the fp32 copy transformers makes of it (docs/serving.md) —
    and everything else as loaded. 4-bit kernels are CPU-only here; CUDA runs bf16.
    """
    from core.generation.int4 import int4_kernel_available
    from core.generation.model_store import four_bit_source

    if device != "cpu" or quantize == "none":
        return "none"
    if not int4_kernel_available():
        if quantize == "int4":
            log.warning("this torch has no 4-bit CPU kernels (torch >= 2.5 needed); running in fp32")
        return "none"
    if quantize == "int4" or four_bit_source(model_path):
        return "int4"
    return "none"


def load_model(name: str, device: str, cache_dir: Path, quantize: str = "auto") -> tuple[object, object]:
    """(model, tokenizer) for ``name`` on ``device``, loaded once per process.

    ``quantize`` is ``auto``, ``int4`` or ``none`` (see :func:`resolve_quantize`).
    """
    key = (name, device, quantize)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_generator_model(name, cache_dir)
        mode = resolve_quantize(quantize, device, path)
        started = time.perf_counter()
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(
                f"Could not load generator model {name!r}: {exc}. Check ASKDESK_GENERATOR_MODEL; without "
                "network access it must be a local folder, a .gguf file, or already in the Hugging Face cache."
            ) from exc
        model.to(device).eval()
        weights = ""
        if mode == "int4":
            from core.generation.int4 import quantize_int4

            report = quantize_int4(model)
            origin = "the GGUF file's own codes" if report.same_codes else "quantized at load"
            weights = f", 4-bit weights in {report.layers} layers ({origin})"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError(f"Generator model {name!r} has no chat template; configure an instruct/chat model.")
        log.info("generator %s loaded on %s (%s%s) in %.1fs", name, device, dtype, weights, time.perf_counter() - started)
        _LOADED[key] = (model, tokenizer)
        return model, tokenizer


class TransformersGenerator:
    """Streams greedy completions from a local causal LM."""

    def __init__(
        self,
        name: str,
        device: str,
        cache_dir: Path,
        repetition_penalty: float = 1.0,
        banned_words: tuple[str, ...] = (),
        quantize: str = "auto",
    ) -> None:
        self.name = name
        self.quantize = quantize
        self.device = device
        self.cache_dir = Path(cache_dir)
        self.repetition_penalty = repetition_penalty
        self.banned_words = banned_words
        self._bad_words_ids: list[list[int]] | None = None
        # One generate() at a time per process; concurrent requests are batched by the scheduler.
        self._generate_lock = threading.Lock()

    def _loaded(self):
        return load_model(self.name, self.device, self.cache_dir, self.quantize)

    def warm_up(self) -> None:
        self._loaded()

    def bad_words_ids(self) -> list[list[int]] | None:
        """Token sequences never to generate: each banned word, capitalised or not, with or without a leading space."""
        if self._bad_words_ids is None:
            _, tokenizer = self._loaded()
            variants = {v for w in self.banned_words for base in (w, w.lower()) for v in (base, " " + base)}
            self._bad_words_ids = [tokenizer.encode(v, add_special_tokens=False) for v in sorted(variants)]
        return self._bad_words_ids or None

    def encode(self, messages: list[ChatMessage]):
        """Token ids of the chat-formatted prompt (with the assistant turn opened)."""
        _, tokenizer = self._loaded()
        return tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def stream(self, messages: list[ChatMessage], max_new_tokens: int, min_new_tokens: int = 0) -> Iterator[str]:
        """Text deltas of the greedy answer; ``min_new_tokens`` (benchmarks) defers end-of-sequence."""
        from transformers import TextIteratorStreamer

        model, tokenizer = self._loaded()
        inputs = self.encode(messages).to(self.device)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        failure: list[BaseException] = []

        def run() -> None:
            from core.devices import use_decoder_threads

            use_decoder_threads()
            try:
                with self._generate_lock:
                    model.generate(
                        **inputs,
                        streamer=streamer,
                        max_new_tokens=max_new_tokens,
                        min_new_tokens=min_new_tokens or None,
                        do_sample=False,
                        repetition_penalty=self.repetition_penalty,
                        bad_words_ids=self.bad_words_ids(),
                        pad_token_id=tokenizer.pad_token_id,
                    )
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="askdesk-generate", daemon=True)
        worker.start()
        for text in streamer:
            if text:
                yield text
        worker.join()
        if failure:
            raise GenerationError(f"The generator failed: {failure[0]}") from failure[0]


_SCHEDULERS: dict[tuple, object] = {}


class BatchedTransformersGenerator(TransformersGenerator):
    """The same model and output as :class:`TransformersGenerator`, decoded by the process-wide
    continuous-batching scheduler (:mod:`core.generation.scheduler`): concurrent questions share
    each decoding step, and a single question runs a lean decode loop instead of ``generate``."""

    def __init__(self, name: str, device: str, cache_dir: Path, banned_words: tuple[str, ...] = (),
                 max_batch: int = 16, quantize: str = "auto", prefill_chunk: int = 256) -> None:
        super().__init__(name, device, cache_dir, banned_words=banned_words, quantize=quantize)
        self.max_batch = max_batch
        self.prefill_chunk = prefill_chunk
        self._system_tokens: dict[str, list[int]] = {}
        self._fp32: bool | None = None

    def warm_up(self) -> None:
        self.scheduler()

    def scheduler(self):
        from core.generation.scheduler import BatchScheduler

        model, tokenizer = self._loaded()
        key = (self.name, self.device, self.quantize, tuple(map(tuple, self.bad_words_ids() or ())), self.max_batch,
               self.prefill_chunk)
        with _LOCK:
            if key not in _SCHEDULERS:
                eos = model.generation_config.eos_token_id
                eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
                if tokenizer.eos_token_id is not None:
                    eos_ids.add(tokenizer.eos_token_id)
                _SCHEDULERS[key] = BatchScheduler(model, sorted(eos_ids), self.bad_words_ids(), max_batch=self.max_batch,
                                                  prefill_chunk=self.prefill_chunk, device=self.device)
            return _SCHEDULERS[key]

    def shared_prefix(self, messages: list[ChatMessage], prompt: list[int]) -> int:
        """How many leading tokens of ``prompt`` are its system turn, which every question shares.

        The system turn is encoded alone and compared token by token, so a chat template
        that renders it differently in context shares only what really matches (maybe 0).

        Only for fp32 arithmetic: reading the prompt in two pieces changes attention in the
        last bits, which fp32 absorbs (the answers stay identical to ``generate``) but bf16
        activations — the 4-bit CPU layers, CUDA — turn into different near-tie choices
        (docs/performance.md). There the prompt is read whole, like ``generate`` does.
        """
        if not messages or messages[0]["role"] != "system" or not self._exact_prompt_split():
            return 0
        alone = self._system_tokens.get(messages[0]["content"])
        if alone is None:
            _, tokenizer = self._loaded()
            alone = tokenizer.apply_chat_template([messages[0]], add_generation_prompt=False, return_dict=True)["input_ids"]
            alone = list(alone[0] if alone and isinstance(alone[0], list) else alone)
            if len(self._system_tokens) < 16:
                self._system_tokens[messages[0]["content"]] = alone
        shared = 0
        for a, b in zip(alone, prompt):
            if a != b:
                break
            shared += 1
        return shared

    def _exact_prompt_split(self) -> bool:
        """True when the model computes in fp32 throughout (no bf16 weights or 4-bit layers)."""
        import torch

        model, _ = self._loaded()
        if self._fp32 is None:
            self._fp32 = model.dtype == torch.float32 and not any(
                type(m).__name__ == "Int4Linear" for m in model.modules())
        return self._fp32

    def stream(self, messages: list[ChatMessage], max_new_tokens: int, min_new_tokens: int = 0) -> Iterator[str]:
        from core.generation.decoding import IncrementalDecoder

        _, tokenizer = self._loaded()
        prompt = self.encode(messages)["input_ids"][0].tolist()
        tokens = self.scheduler().submit(prompt, max_new_tokens, min_new_tokens,
                                         shared_prefix=self.shared_prefix(messages, prompt))
        decoder = IncrementalDecoder(tokenizer)
        try:
            for token in tokens:
                delta = decoder.push(token)
                if delta:
                    yield delta
        except Exception as exc:
            raise GenerationError(f"The generator failed: {exc}") from exc
        finally:
            tokens.close()  # a consumer that stopped early frees its batch slot
        tail = decoder.flush()
        if tail:
            yield tail
