"""Continuous batching for the local transformers backend.

One scheduler thread owns the model. Requests (prompt token ids) are queued by any
thread; between two decoding steps the scheduler

1. drops cancelled requests (their consumer stopped reading) — the slot is free at once;
2. admits waiting requests up to ``max_batch``: each is prefilled on its own KV cache
   (whole when nobody is decoding, else at most ``prefill_chunk`` prompt tokens between two
   decoding steps, so running answers pause for one bounded chunk, never for a burst of
   long prompts), its first token is chosen, and its cache rows are joined to the running
   batch (left-padded). A prompt's shared prefix (the system prompt, ``submit(...,
   shared_prefix=n)``) is read once and its keys and values reused by every later prompt
   that starts with the same tokens;
3. runs *one* decoding step for every running request together, with a per-row
   attention mask and position ids, and hands each request its next token.

A request finishes at its own EOS or ``max_new_tokens`` and leaves the batch in that
same step, so nobody waits for the slowest member and a newcomer joins at the next
step. Which token comes next, and how ids become text in each consumer's thread:
:mod:`core.generation.decoding`; the KV cache and the transformers internals it relies on:
:mod:`core.generation.kv_cache`.

Why these choices: every prompt chunk reads all the weights, so a prompt costs less per token
in larger chunks, and while prompts are being read the decoding steps in between run at a
smaller batch than they could — larger chunks finish a burst of questions sooner. A chunk is
still bounded (``prefill_chunk``) so that the pause it causes in running answers stays below
the one-second interval at which the Slack and Telegram adapters edit a streaming message. The
KV cache grows into preallocated room (:func:`core.generation.kv_cache.new_cache`) instead of being concatenated
anew at every step, which copied the whole cache of every layer once per token. Measured
figures (``python -m benchmarks.generation_speed``): docs/serving.md, docs/performance.md.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from core.generation.decoding import TokenChooser
from core.generation.kv_cache import cache_kwarg, join_rows, keep_rows, layer_tensors, new_cache

log = logging.getLogger(__name__)

_END = object()


@dataclass(eq=False)
class _Request:
    prompt: list[int]
    max_new_tokens: int
    min_new_tokens: int = 0  # end-of-sequence is masked until this many tokens exist (benchmarks)
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.perf_counter)
    history: list[int] = field(default_factory=list)  # prompt + generated (for banned sequences)
    generated: int = 0
    position: int = 0  # position id of the next token to feed
    done: bool = False
    shared_prefix: int = 0  # leading prompt tokens whose keys and values may be shared with other prompts
    cache: object = None  # its own KV cache while being prefilled
    logits: object = None  # of the last prefilled token


class TokenStream:
    """The token ids of one request, as the scheduler produces them. ``close()`` cancels."""

    def __init__(self, scheduler: BatchScheduler, request: _Request) -> None:
        self._scheduler = scheduler
        self._request = request
        self.finished = False

    def __iter__(self) -> Iterator[int]:
        try:
            while True:
                item = self._request.out.get()
                if item is _END:
                    self.finished = True
                    return
                if isinstance(item, BaseException):
                    self.finished = True
                    raise item
                yield item
        finally:
            if not self.finished:
                self.close()

    def close(self) -> None:
        """Stop generating for this request; its batch slot is freed before the next step."""
        if not self.finished and not self._request.cancelled.is_set():
            self._request.cancelled.set()
            self._scheduler._wake()


#: Shared prompt prefixes whose keys and values a scheduler keeps (one per system prompt in use).
PREFIX_CACHE_SIZE = 8


class BatchScheduler:
    """Continuous-batching greedy decoder over one loaded causal LM.

    ``submit`` is thread-safe and returns a :class:`TokenStream`. The scheduler thread
    starts on the first request and keeps running (idle-waiting) until :meth:`close`.
    """

    def __init__(
        self,
        model,
        eos_token_ids: Sequence[int],
        bad_words_ids: Sequence[Sequence[int]] | None = None,
        max_batch: int = 16,
        prefill_chunk: int = 256,
        device: str | None = None,
    ) -> None:
        self.model = model
        self.device = device or str(next(model.parameters()).device)
        self._chooser = TokenChooser(eos_token_ids, bad_words_ids, self.device)
        self.eos = self._chooser.eos
        self.max_batch = max_batch
        self.prefill_chunk = prefill_chunk
        self._prefilling: deque[_Request] = deque()  # admitted, prompt not fully in the cache yet
        self._prefixes: OrderedDict[tuple[int, ...], list[list]] = OrderedDict()  # shared prefix -> its KV
        self._cache_kw = cache_kwarg(model)
        self._pending: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        # Running batch (scheduler thread only).
        self._active: list[_Request] = []
        self._cache = None
        self._mask = None  # [B, L] 1 for real tokens, 0 for left padding
        self._next = None  # [B] next input token per row
        self._stats = {"submitted": 0, "completed": 0, "cancelled": 0, "failed": 0, "steps": 0, "prefills": 0, "prefill_chunks": 0,
                       "prefix_hits": 0, "max_batch_seen": 0, "active": 0, "waiting": 0,
                       # Where the scheduler's time goes: reading prompts (one at a time, compute-bound on a
                       # CPU) against decoding steps (shared by every running answer).
                       "prompt_seconds": 0.0, "prompt_tokens": 0, "decode_seconds": 0.0}

    # ---- public ------------------------------------------------------------------------
    def submit(self, prompt_ids: Sequence[int], max_new_tokens: int, min_new_tokens: int = 0,
               shared_prefix: int = 0) -> TokenStream:
        """Queue a prompt; ``min_new_tokens`` masks end-of-sequence until then, as ``generate`` does.

        ``shared_prefix``: how many leading tokens other prompts share (the system prompt). They
        are read once per scheduler; later prompts starting with the same tokens reuse them.
        """
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        prompt = [int(t) for t in prompt_ids]
        # The rest of the prompt must be two or more tokens (see _prefill_some): else read it all.
        shared = shared_prefix if 2 <= shared_prefix <= len(prompt) - 2 else 0
        request = _Request(prompt=prompt, max_new_tokens=max_new_tokens,
                           min_new_tokens=min(min_new_tokens, max_new_tokens), shared_prefix=shared)
        with self._cond:
            if self._closed:
                raise RuntimeError("the batch scheduler is closed")
            self._pending.append(request)
            self._stats["submitted"] += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="askdesk-batch-scheduler", daemon=True)
                self._thread.start()
            self._cond.notify()
        return TokenStream(self, request)

    def stats(self) -> dict:
        """Counters and the current occupancy: ``active`` slots in use, ``waiting`` requests queued."""
        with self._cond:
            stats = dict(self._stats)
            stats["waiting"] = len(self._pending) + len(self._prefilling)
        return stats

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ---- scheduler thread ----------------------------------------------------------------
    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        import torch

        from core.devices import use_decoder_threads

        use_decoder_threads()
        with torch.inference_mode():
            while True:
                with self._cond:
                    while not self._closed and not self._pending and not self._active and not self._prefilling:
                        self._cond.wait()
                    if self._closed:
                        self._fail_all(RuntimeError("the batch scheduler was closed"))
                        return
                    self._admit()
                try:
                    self._drop_cancelled()
                    self._prefill_some()
                    if self._active:
                        self._step()
                except BaseException as exc:  # noqa: BLE001 - delivered to every waiting consumer
                    log.exception("batched generation failed")
                    self._fail_all(exc)

    def _admit(self) -> None:
        """Move waiting requests into prefill while batch slots are free (caller holds the lock)."""
        while self._pending and len(self._active) + len(self._prefilling) < self.max_batch:
            self._prefilling.append(self._pending.popleft())

    def _prefill_some(self) -> None:
        """Prefill waiting requests. With nobody decoding, the first prompt is prefilled whole; while
        others decode, at most ``prefill_chunk`` prompt tokens run between two of their steps, so a
        long prompt (or a burst of them) delays running answers by one chunk, not a whole backlog.
        A prompt that does not fit what is left of the budget waits for the next step rather than
        being cut into a sliver: every chunk reads all the weights, so a few tokens cost a good part
        of what a full chunk does (docs/serving.md). A shared prefix is read as a chunk of its own
        and kept, or taken from what was kept."""
        budget = self.prefill_chunk if self._active else None
        while self._prefilling and (budget is None or budget > 0):
            request = self._prefilling[0]
            if request.cancelled.is_set():
                self._prefilling.popleft()
                self._stats["cancelled"] += 1
                request.out.put(_END)
                continue
            if request.position == 0 and request.shared_prefix and self._reuse_prefix(request):
                continue
            remaining = len(request.prompt) - request.position
            if budget is not None and remaining > budget and budget < self.prefill_chunk:
                break  # not a sliver of the next prompt (a chunk's cost is mostly fixed): next time, whole
            n = remaining if budget is None else min(remaining, budget)
            if request.position < request.shared_prefix:  # the prefix on its own, so it can be kept
                n = min(n, request.shared_prefix - request.position)
            # No one-token chunk: 4-bit layers treat one position as a decoding step
            # (core.generation.int4), and prompt tokens must be computed like generate's.
            if remaining - n == 1:
                n = remaining
            elif n == 1:
                n = 2
            self._prefill_chunk(request, n)
            if budget is not None:
                budget -= n
            if request.shared_prefix and request.position == request.shared_prefix:
                self._keep_prefix(request)
            if request.position == len(request.prompt):
                self._prefilling.popleft()
                self._complete_prefill(request)
                if budget is None:
                    budget = self.prefill_chunk

    def _fail_all(self, exc: BaseException) -> None:
        with self._cond:
            pending = [*self._prefilling, *self._pending]
            self._pending.clear()
            self._prefilling.clear()
        for request in [*self._active, *pending]:
            request.out.put(exc)
            self._stats["failed"] += 1
        self._active, self._cache, self._mask, self._next = [], None, None, None
        self._stats["active"] = 0

    def _forward(self, input_ids, cache, attention_mask=None, position_ids=None):
        kwargs = {self._cache_kw: cache, "use_cache": True, "logits_to_keep": 1}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        return self.model(input_ids=input_ids, **kwargs).logits[:, -1, :]

    def _choose(self, logits, requests: list[_Request]) -> list[int]:
        return self._chooser.choose(logits, [r.history for r in requests],
                                    [r.generated >= r.min_new_tokens for r in requests])

    def _emit(self, request: _Request, token: int) -> bool:
        """Hand ``token`` to the request; True when the request is finished (the caller frees
        its slot, then calls :meth:`_finish`, so stats never show a finished request as active)."""
        request.generated += 1
        request.history.append(token)
        if token in self.eos:
            request.done = True
        else:
            request.out.put(token)
            if request.generated >= request.max_new_tokens:
                request.done = True
        return request.done

    def _finish(self, request: _Request) -> None:
        self._stats["completed"] += 1
        request.out.put(_END)

    def _reuse_prefix(self, request: _Request) -> bool:
        """Start ``request`` from a kept copy of its shared prefix's keys and values, if there is one."""
        key = tuple(request.prompt[:request.shared_prefix])
        layers = self._prefixes.get(key)
        if layers is None:
            return False
        self._prefixes.move_to_end(key)
        request.cache = new_cache(layers)
        request.position = request.shared_prefix
        self._stats["prefix_hits"] += 1
        return True

    def _keep_prefix(self, request: _Request) -> None:
        key = tuple(request.prompt[:request.shared_prefix])
        self._prefixes[key] = [[k.clone(), v.clone()] for k, v in layer_tensors(request.cache)]
        self._prefixes.move_to_end(key)
        while len(self._prefixes) > PREFIX_CACHE_SIZE:
            self._prefixes.popitem(last=False)

    def _prefill_chunk(self, request: _Request, n: int) -> None:
        import torch

        if request.cache is None:
            request.cache = new_cache()
        start = request.position
        started = time.perf_counter()
        ids = torch.tensor([request.prompt[start:start + n]], dtype=torch.long, device=self.device)
        positions = torch.arange(start, start + n, device=self.device)[None, :]
        request.logits = self._forward(ids, request.cache, position_ids=positions)
        request.position += n
        self._stats["prefill_chunks"] += 1
        self._stats["prompt_tokens"] += n
        self._stats["prompt_seconds"] += time.perf_counter() - started

    def _complete_prefill(self, request: _Request) -> None:
        self._stats["prefills"] += 1
        request.history = list(request.prompt)
        (token,) = self._choose(request.logits, [request])
        cache, request.cache, request.logits = request.cache, None, None
        if self._emit(request, token):
            self._finish(request)
            return
        self._join(request, cache, token)

    def _join(self, request: _Request, cache, token: int) -> None:
        """Add a prefilled request's cache rows to the running batch, left-padding the shorter side."""
        import torch

        new_mask = torch.ones((1, layer_tensors(cache)[0][0].shape[-2]), dtype=torch.long, device=self.device)
        new_next = torch.tensor([token], dtype=torch.long, device=self.device)
        if not self._active:
            self._active, self._cache, self._mask, self._next = [request], cache, new_mask, new_next
        else:
            self._mask = join_rows(self._cache, self._mask, cache, new_mask)
            self._next = torch.cat([self._next, new_next])
            self._active.append(request)
        self._stats["active"] = len(self._active)
        self._stats["max_batch_seen"] = max(self._stats["max_batch_seen"], len(self._active))

    def _keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` of the batch and trim padding columns no remaining row needs."""
        import torch

        self._active = [self._active[i] for i in rows]
        self._stats["active"] = len(self._active)
        if not rows:
            self._cache = self._mask = self._next = None
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self._mask = keep_rows(self._cache, self._mask, index)
        self._next = self._next.index_select(0, index)

    def _drop_cancelled(self) -> None:
        if not self._active:
            return
        keep = []
        dropped = []
        for i, request in enumerate(self._active):
            if request.cancelled.is_set():
                dropped.append(request)
            else:
                keep.append(i)
        if dropped:
            self._keep(keep)
            for request in dropped:
                self._stats["cancelled"] += 1
                request.out.put(_END)

    def _step(self) -> None:
        import torch

        started = time.perf_counter()
        requests = self._active
        positions = torch.tensor([[r.position] for r in requests], dtype=torch.long, device=self.device)
        self._mask = torch.cat([self._mask, torch.ones((len(requests), 1), dtype=self._mask.dtype, device=self.device)], 1)
        single = len(requests) == 1
        logits = self._forward(self._next[:, None], self._cache, None if single else self._mask, positions)
        self._stats["steps"] += 1
        tokens = self._choose(logits, requests)
        keep, finished = [], []
        for i, (request, token) in enumerate(zip(requests, tokens)):
            request.position += 1
            (finished if self._emit(request, token) else keep).append(i)
        self._next = torch.tensor(tokens, dtype=torch.long, device=self.device)
        if finished:
            self._keep(keep)
            for i in finished:
                self._finish(requests[i])
        self._stats["decode_seconds"] += time.perf_counter() - started
