"""Conversation memory: which earlier turns count, and follow-ups rewritten for retrieval.

A follow-up such as "and for gift cards?" means nothing to a search index on its own.
The small bundled model is not reliable at rewriting questions, so the rewrite is a
measured heuristic: a short or anaphoric question is searched together with the
previous question of the same conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from core.language import CJK_CHAR
from core.messages import HistoryTurn
from core.retrieval.hybrid import RetrievalResult
from core.retrieval.index import ScoredPassage

_FOLLOW_UP_START = re.compile(r"^\s*((and|or|but|also|what about|how about|same for|then|so)\b|那|还有|另外|如果是)", re.I)
_ANAPHORA = re.compile(r"\b(it|its|that|this|those|these|them|they|there|one)\b|它|这个|那个", re.I)
_WORD = re.compile(r"\w+")
SHORT_QUESTION_WORDS = 4  # "and gift cards?", "what about Canada"
SHORT_QUESTION_CJK = 4  # "礼品卡呢？"


def last_user_question(history: Sequence[HistoryTurn]) -> str | None:
    return next((t.text for t in reversed(history) if t.role == "user"), None)


def is_follow_up(question: str) -> bool:
    """Starts like a continuation, points back ("it", "that"), or is too short to stand alone."""
    if _FOLLOW_UP_START.search(question) or _ANAPHORA.search(question):
        return True
    cjk = len(CJK_CHAR.findall(question))
    latin = len(_WORD.findall(CJK_CHAR.sub(" ", question)))
    if cjk > latin:
        return cjk <= SHORT_QUESTION_CJK
    return latin <= SHORT_QUESTION_WORDS


def standalone_query(question: str, history: Sequence[HistoryTurn]) -> str:
    """The text to search with: the question, joined with the previous one when it is a follow-up."""
    previous = last_user_question(history)
    if previous and is_follow_up(question):
        return f"{previous} {question}"
    return question


def search_in_context(
    retrieve: Callable[[str, int], RetrievalResult],
    question: str,
    history: Sequence[HistoryTurn],
    k: int,
    depth: int = 20,
) -> RetrievalResult:
    """Retrieve for a possibly follow-up question.

    A follow-up is searched twice — joined with the previous question, and alone — and each
    passage gets the mean of its two scores (a passage missing from a list gets that list's
    lowest score). "and for gift cards?" after a refund question then ranks the gift-card
    refund article high: it matches both, while the refund article matches only the join
    and the gift-card purchase article only the follow-up. The intent is the joined query's.
    """
    query = standalone_query(question, history)
    if query == question:
        return retrieve(question, k)
    joined = retrieve(query, depth)
    alone = retrieve(question, depth).hits
    if not joined.hits or not alone:
        joined.hits = (joined.hits or alone)[:k]
        return joined
    floor_joined, floor_alone = joined.hits[-1].score, alone[-1].score
    by_id = {h.passage.passage_id: h.passage for h in joined.hits + alone}
    score_joined = {h.passage.passage_id: h.score for h in joined.hits}
    score_alone = {h.passage.passage_id: h.score for h in alone}
    mean = {pid: (score_joined.get(pid, floor_joined) + score_alone.get(pid, floor_alone)) / 2 for pid in by_id}
    ranked = sorted(mean, key=lambda pid: -mean[pid])[:k]
    # The word coverage the gate may fall back on: the better of the two searches.
    lexical: dict[str, float] = {}
    for h in joined.hits + alone:
        if h.lexical is not None:
            lexical[h.passage.passage_id] = max(lexical.get(h.passage.passage_id, 0.0), h.lexical)
    joined.hits = [ScoredPassage(by_id[pid], mean[pid], lexical=lexical.get(pid)) for pid in ranked]
    return joined
