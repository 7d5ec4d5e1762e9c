"""What the team needs to see: volumes, refusals, escalations, feedback, latency — and the
knowledge gaps (refused questions grouped by meaning)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.store import Store

Embed = Callable[[list[str]], np.ndarray]
GAP_SIMILARITY = 0.7  # questions at least this similar count as one gap


@dataclass(slots=True)
class Stats:
    questions: int = 0
    answered: int = 0
    refused: int = 0
    escalated: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    median_latency_s: float | None = None
    top_unanswered: list[tuple[str, int]] = field(default_factory=list)

    @property
    def satisfaction(self) -> float | None:
        """Share of 👍 among all feedback (None without feedback)."""
        total = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / total if total else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["satisfaction"] = self.satisfaction
        data["top_unanswered"] = [{"question": q, "count": n} for q, n in self.top_unanswered]
        return data


def group_questions(questions: list[str], embed: Embed | None, threshold: float = GAP_SIMILARITY) -> list[tuple[str, int]]:
    """Greedy grouping by embedding similarity; each group is named by its first question."""
    if not questions:
        return []
    if embed is None:
        counts: dict[str, tuple[str, int]] = {}
        for q in questions:
            key = " ".join(q.lower().split())
            first, n = counts.get(key, (q, 0))
            counts[key] = (first, n + 1)
        groups = list(counts.values())
    else:
        vectors = embed(questions)
        heads: list[int] = []
        sizes: list[int] = []
        for i, v in enumerate(vectors):
            sims = [float(vectors[h] @ v) for h in heads]
            best = int(np.argmax(sims)) if sims else -1
            if best >= 0 and sims[best] >= threshold:
                sizes[best] += 1
            else:
                heads.append(i)
                sizes.append(1)
        groups = [(questions[h], n) for h, n in zip(heads, sizes)]
    return sorted(groups, key=lambda g: -g[1])


def compute_stats(store: Store, since: float = 0.0, embed: Embed | None = None, top: int = 5) -> Stats:
    turns = store.turns_since(since)
    stats = Stats(questions=len(turns))
    stats.refused = sum(1 for t in turns if t.refused)
    stats.answered = sum(1 for t in turns if not t.refused and t.mode != "refusal")
    stats.escalated = len(store.escalations_since(since))
    for _, _, value in store.feedback_since(since):
        if value > 0:
            stats.thumbs_up += 1
        else:
            stats.thumbs_down += 1
    latencies = [t.latency_s for t in turns if t.latency_s > 0]
    stats.median_latency_s = statistics.median(latencies) if latencies else None
    stats.top_unanswered = group_questions([t.question for t in turns if t.refused], embed)[:top]
    return stats
