"""Rank fusion: combine the dense, BM25 and classifier rankings into one order.

Reciprocal-rank fusion (Cormack et al., 2009) adds ``weight / (k + rank)`` for every list an
item appears in. It needs no score calibration between the lists, which is why it suits
cosine similarities, BM25 scores and class probabilities side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

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


def document_ranking(passage_order: Iterable[Hashable], doc_of: Callable[[Hashable], Hashable]) -> list[Hashable]:
    """Distinct documents of a passage ranking, each at the rank of its best passage."""
    return list(dict.fromkeys(doc_of(p) for p in passage_order))


def passages_in_document_order(
    passage_order: Sequence[Hashable],
    doc_order: Sequence[Hashable],
    doc_of: Callable[[Hashable], Hashable],
    extra: Mapping[Hashable, Sequence[Hashable]] | None = None,
) -> list[Hashable]:
    """Passages re-ordered so that their distinct documents follow ``doc_order``.

    Why: fusing *passages* lets a document whose dense hit and BM25 hit are different
    passages collect only one list's vote per passage, so it can lose to a document with one
    passage in both lists. Documents are therefore ranked by fusing document ranks
    (``doc_order``), while the result stays a passage list — several passages of one article
    are legitimate hits.

    ``passage_order`` (e.g. the passage-level fusion) decides everything else: each place where
    it shows a document for the first time is a *slot*; the i-th slot goes to the best passage
    (first in ``passage_order``) of the i-th document of ``doc_order``, and a document's further
    passages keep their places, moved just behind its best passage when they came earlier. So
    any prefix of the output holds at least as many distinct documents as the same prefix of
    ``passage_order`` (a top-k list does not lose documents) and the order of documents changes. ``extra`` gives
    passages of documents that ``passage_order`` lacks (e.g. brought in by the classifier);
    documents of ``doc_order`` that get no slot follow at the end, in order.
    """
    by_doc: dict[Hashable, list[Hashable]] = {}
    for p in passage_order:
        by_doc.setdefault(doc_of(p), []).append(p)
    for doc, passages in (extra or {}).items():
        if doc not in by_doc and passages:
            by_doc[doc] = list(passages)
    docs = list(dict.fromkeys([d for d in doc_order if d in by_doc] + list(by_doc)))
    next_doc = iter(docs)
    seen: dict[Hashable, int] = {}
    emitted: dict[Hashable, int] = {}  # documents given a slot → passages already written
    out: list[Hashable] = []

    def flush(doc: Hashable, upto: int) -> None:
        done = emitted[doc]
        if upto > done:
            out.extend(by_doc[doc][done:upto])
            emitted[doc] = upto

    for p in passage_order:
        doc = doc_of(p)
        seen[doc] = seen.get(doc, 0) + 1
        if seen[doc] == 1:  # a slot: the next document in doc_order opens here
            opened = next(next_doc)
            emitted[opened] = 0
            flush(opened, max(1, seen.get(opened, 0)))
        if doc in emitted:
            flush(doc, seen[doc])
    for doc in next_doc:
        emitted[doc] = 0
    for doc in list(emitted):  # what is left: passages from ``extra`` and documents without a slot
        flush(doc, len(by_doc[doc]))
    return out
