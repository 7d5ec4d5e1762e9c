"""Prometheus metrics of one askdesk process, in its own registry.

Each :class:`Metrics` owns a ``CollectorRegistry`` (never prometheus-client's global one), so
two bots in one test run, or the Slack and Telegram adapters of one process, count into
exactly the registry they were given. The events are counted where they happen without the
pipeline knowing about Prometheus: :func:`instrument_assistant` wraps an assistant's answer
stream and its retrievers, and :func:`instrument_store` wraps the store's feedback call; the
serving layer applies both once at start. Queue depth and batch size are read from the local
batching schedulers at scrape time, so a scrape costs no work on the answering path.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from functools import wraps
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: Latency buckets (seconds) that separate a composed answer, a streamed one, and a slow one.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _SchedulerCollector:
    """Queue depth and batch size of the local continuous-batching schedulers, read on scrape."""

    def __init__(self, source: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._source = source

    def collect(self):  # noqa: ANN201 - prometheus-client's collector protocol
        waiting = active = prompt_tokens = 0
        seconds = {"prompt": 0.0, "decode": 0.0}
        for stats in self._source():
            waiting += int(stats.get("waiting", 0))
            active += int(stats.get("active", 0))
            prompt_tokens += int(stats.get("prompt_tokens", 0))
            for phase in seconds:
                seconds[phase] += float(stats.get(f"{phase}_seconds", 0.0))
        depth = GaugeMetricFamily("askdesk_generation_queue_depth", "Generation requests waiting for a batch slot.")
        depth.add_metric([], waiting)
        batch = GaugeMetricFamily("askdesk_generation_batch_size", "Questions being decoded together right now.")
        batch.add_metric([], active)
        yield depth
        yield batch
        # Prompt reading is per question; a decoding step serves every running answer at once, so the
        # share of prompt time says how much batching can gain (docs/performance.md).
        spent = CounterMetricFamily("askdesk_generation_seconds", "Scheduler time reading prompts or decoding.",
                                    labels=["phase"])
        for phase, value in seconds.items():
            spent.add_metric([phase], value)
        yield spent
        tokens = CounterMetricFamily("askdesk_generation_prompt_tokens", "Prompt tokens read by the schedulers.")
        tokens.add_metric([], prompt_tokens)
        yield tokens


class _TurnedAwayCollector:
    """Questions the fair queue did not take (core.fairness.TURNED_AWAY), read on scrape."""

    def collect(self):  # noqa: ANN201 - prometheus-client's collector protocol
        from core.fairness import TURNED_AWAY

        family = CounterMetricFamily("askdesk_turned_away", "Questions not queued (limits), by reason and "
                                     "whether the asker was told in words.", labels=["reason", "told"])
        for (reason, told), count in sorted(TURNED_AWAY.items()):
            family.add_metric([reason, "yes" if told else "no"], count)
        yield family


def _local_scheduler_stats() -> list[dict[str, Any]]:
    """Stats of every batching scheduler this process started (none before the first generation)."""
    try:
        from core.generation import transformers_backend
    except ImportError:  # pragma: no cover - the local backend is always installed
        return []
    schedulers = getattr(transformers_backend, "_SCHEDULERS", {})
    return [s.stats() for s in list(schedulers.values()) if hasattr(s, "stats")]


class Metrics:
    """All askdesk metrics of one process; ``render()`` is the body of ``GET /metrics``."""

    def __init__(self, scheduler_stats: Callable[[], Iterable[dict[str, Any]]] = _local_scheduler_stats) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.questions = Counter("askdesk_questions", "Questions received.", ["platform"], registry=r)
        self.answers = Counter("askdesk_answers", "Answers given, by answer mode.", ["platform", "mode"], registry=r)
        self.refusals = Counter("askdesk_refusals", "Questions refused (the knowledge base does not cover them).",
                                ["platform"], registry=r)
        self.handoffs = Counter("askdesk_handoffs", "Hand-offs to a person requested.", ["platform"], registry=r)
        self.feedback = Counter("askdesk_feedback", "Feedback clicks stored, by value.", ["value"], registry=r)
        self.errors = Counter("askdesk_errors", "Errors, by kind.", ["kind"], registry=r)
        self.rejected = Counter("askdesk_http_rejected", "HTTP requests refused, by reason.", ["endpoint", "reason"],
                                registry=r)
        self.retrieval_seconds = Histogram("askdesk_retrieval_seconds", "Time to retrieve passages for one query.",
                                           buckets=LATENCY_BUCKETS, registry=r)
        self.first_text_seconds = Histogram("askdesk_first_text_seconds", "Time from question to the first text shown.",
                                            buckets=LATENCY_BUCKETS, registry=r)
        self.answer_seconds = Histogram("askdesk_answer_seconds", "Time from question to the final answer.",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.stage_seconds = Histogram("askdesk_answer_stage_seconds",
                                       "Time one answer spent in each pipeline stage (core.timeline.STAGES).",
                                       ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens_per_second = Gauge("askdesk_generation_tokens_per_second",
                                       "Text deltas per second of the latest generated answer.", registry=r)
        self.in_flight = Gauge("askdesk_questions_in_flight", "Questions being answered now.", registry=r)
        r.register(_SchedulerCollector(scheduler_stats))
        r.register(_TurnedAwayCollector())

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric in this registry."""
        return generate_latest(self.registry)


def instrument_assistant(assistant: Any, metrics: Metrics) -> None:
    """Count questions, answers, refusals and hand-offs and time them, around ``assistant.stream``.

    The wrap is set on the instance, so it sees exactly the assistant the adapters were given
    (one per process, shared by all platforms) and nothing else. Idempotent.
    """
    if getattr(assistant, "_askdesk_metrics", None) is metrics:
        return
    assistant._askdesk_metrics = metrics  # noqa: SLF001
    inner = assistant.stream

    @wraps(inner)
    async def stream(message: Any) -> AsyncIterator[Any]:
        platform = str(getattr(message, "platform", "") or "unknown")
        metrics.questions.labels(platform).inc()
        metrics.in_flight.inc()
        started = time.perf_counter()
        first: float | None = None
        deltas = 0
        try:
            async for event in inner(message):
                if isinstance(event, str):
                    deltas += 1
                    if first is None and event:
                        first = time.perf_counter() - started
                        metrics.first_text_seconds.observe(first)
                else:
                    _count_answer(metrics, platform, event, started, first, deltas)
                yield event
        except Exception as exc:
            metrics.errors.labels(f"answer:{type(exc).__name__}").inc()
            raise
        finally:
            metrics.in_flight.dec()

    assistant.stream = stream
    for retriever in _retrievers(assistant):
        _time_retrieval(retriever, metrics)


def _count_answer(metrics: Metrics, platform: str, answer: Any, started: float, first: float | None,
                  deltas: int) -> None:
    elapsed = time.perf_counter() - started
    metrics.answer_seconds.observe(elapsed)
    for name, seconds in getattr(answer, "stages", ()) or ():
        metrics.stage_seconds.labels(name).observe(seconds)
    if first is None:  # nothing streamed: the whole answer is the first text shown
        metrics.first_text_seconds.observe(elapsed)
    if getattr(answer, "handoff", False):
        metrics.handoffs.labels(platform).inc()
    elif getattr(answer, "refused", False):
        metrics.refusals.labels(platform).inc()
    else:
        metrics.answers.labels(platform, str(getattr(answer, "mode", "") or "unknown")).inc()
    if getattr(answer, "mode", "") == "generated" and first is not None and elapsed > first and deltas > 1:
        metrics.tokens_per_second.set((deltas - 1) / (elapsed - first))


def _retrievers(assistant: Any) -> list[Any]:
    found = list(getattr(assistant, "retrievers", {}).values()) or [getattr(assistant, "retriever", None)]
    unique: dict[int, Any] = {id(r): r for r in found if r is not None}
    return list(unique.values())


def _new_sinks(target: Any, metrics: Metrics) -> list[Metrics] | None:
    """Attach ``metrics`` to ``target``'s registries; the new list when ``target`` is not wrapped yet
    (the caller wraps it then), None when it already is (a retriever or store may be shared)."""
    sinks: list[Metrics] | None = getattr(target, "_askdesk_metrics_sinks", None)
    if sinks is not None:
        if metrics not in sinks:
            sinks.append(metrics)
        return None
    sinks = [metrics]
    target._askdesk_metrics_sinks = sinks  # noqa: SLF001
    return sinks


def _time_retrieval(retriever: Any, metrics: Metrics) -> None:
    """Time every ``retrieve`` call into each registry attached (a retriever may be shared)."""
    sinks = _new_sinks(retriever, metrics)
    if sinks is None:
        return
    inner = retriever.retrieve

    @wraps(inner)
    def retrieve(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            for sink in list(sinks):
                sink.retrieval_seconds.observe(elapsed)

    retriever.retrieve = retrieve


def instrument_store(store: Any, metrics: Metrics) -> None:
    """Count stored feedback (a repeated click is not stored, so not counted)."""
    sinks = _new_sinks(store, metrics)
    if sinks is None:
        return
    inner = store.record_feedback

    @wraps(inner)
    def record_feedback(turn_id: int, user_id: str, value: int) -> bool:
        stored = inner(turn_id, user_id, value)
        if stored:
            for sink in list(sinks):
                sink.feedback.labels("up" if value > 0 else "down").inc()
        return stored

    store.record_feedback = record_feedback


__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Metrics", "instrument_assistant", "instrument_store"]
