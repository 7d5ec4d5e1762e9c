"""Rank fusion: combine the dense, BM25 and classifier rankings into one order.

Reciprocal-rank fusion (Cormack et al., 2009) adds ``weight / (k + rank)`` for every list an
item appears in. It needs no score calibration between the lists, which is why it suits
cosine similarities, BM25 scores and class probabilities side by side.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

DEFAULT_RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hashable]],
    weights: Sequence[float] | None = None,
    k: int = DEFAULT_RRF_K,
) -> dict[Hashable, float]:
    """Fused score of every item in any of ``rankings`` (each best first; rank 1 is the first).

    An item missing from a list gets nothing from it. Ties keep the order in which the
    items were first seen, so callers that sort with ``sorted(..., key=-score)`` are stable.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    fused: dict[Hashable, float] = {}
    for ranking, weight in zip(rankings, weights):
        if weight == 0:
            continue
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def fused_order(
    rankings: Sequence[Sequence[Hashable]],
    weights: Sequence[float] | None = None,
    k: int = DEFAULT_RRF_K,
) -> list[tuple[Hashable, float]]:
    """Items of :func:`reciprocal_rank_fusion`, best first."""
    fused = reciprocal_rank_fusion(rankings, weights, k)
    return sorted(fused.items(), key=lambda item: -item[1])
