"""Where one answer's time goes, stage by stage, so an operator (``askdesk_answer_stage_seconds`` on
``/metrics``) and the concurrency benchmark can see which part of the pipeline a slow answer spent
its time in, without a profiler.

The pipeline marks its stages with :func:`stage`; the marks go to the :class:`Timeline` of the
answer being computed on the current thread (a context variable: concurrent answers run on
different worker threads, each with its own). With no timeline open, :func:`stage` costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

#: The stages, in pipeline order: waiting for a worker thread, finding passages, the generator
#: writing (and the checks verifying) a draft, composing an answer from the sources, and storing
#: the turn. ``other`` is what is left of the answer's time (validation, language, small talk).
STAGES = ("queue", "retrieval", "generation", "composition", "record", "other")

_current: ContextVar["Timeline | None"] = ContextVar("askdesk_timeline", default=None)


@dataclass
class Timeline:
    """Seconds spent per stage of one answer; a stage entered twice (two retrievals) adds up."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def stages(self, total: float) -> tuple[tuple[str, float], ...]:
        """The stages in pipeline order, plus ``other``: ``total`` minus the rest (never negative)."""
        timed = {**self.seconds, "other": max(0.0, total - sum(self.seconds.values()))}
        return tuple((name, round(timed[name], 4)) for name in STAGES if name in timed)


@contextmanager
def recording(timeline: Timeline) -> Iterator[Timeline]:
    """Make ``timeline`` the one :func:`stage` adds to on this thread, for the ``with`` block."""
    token = _current.set(timeline)
    try:
        yield timeline
    finally:
        _current.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the ``with`` block as stage ``name`` of the answer being computed (if one is recorded).

    Nested stages are not subtracted from the outer one: the pipeline never nests them."""
    timeline = _current.get()
    if timeline is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        timeline.add(name, time.perf_counter() - started)
