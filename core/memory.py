"""Conversation memory: which earlier turns count, and follow-ups rewritten for retrieval.

A follow-up such as "and for gift cards?" means nothing to a search index on its own.
The small bundled model is not reliable at rewriting questions, so the rewrite is a
measured heuristic: a short or anaphoric question is searched together with the
previous question of the same conversation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.messages import HistoryTurn

_FOLLOW_UP_START = re.compile(r"^\s*((and|or|but|also|what about|how about|same for|then|so)\b|那|还有|另外|如果是)", re.I)
_ANAPHORA = re.compile(r"\b(it|its|that|this|those|these|them|they|there|one)\b|它|这个|那个", re.I)
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3400-\u9fff]")
SHORT_QUESTION_WORDS = 4  # "and gift cards?", "what about Canada"
SHORT_QUESTION_CJK = 4  # "礼品卡呢？"


def last_user_question(history: Sequence[HistoryTurn]) -> str | None:
    return next((t.text for t in reversed(history) if t.role == "user"), None)


def is_follow_up(question: str) -> bool:
    """Starts like a continuation, points back ("it", "that"), or is too short to stand alone."""
    if _FOLLOW_UP_START.search(question) or _ANAPHORA.search(question):
        return True
    cjk = len(_CJK.findall(question))
    latin = len(_WORD.findall(_CJK.sub(" ", question)))
    if cjk > latin:
        return cjk <= SHORT_QUESTION_CJK
    return latin <= SHORT_QUESTION_WORDS


def standalone_query(question: str, history: Sequence[HistoryTurn]) -> str:
    """The text to search with: the question, joined with the previous one when it is a follow-up."""
    previous = last_user_question(history)
    if previous and is_follow_up(question):
        return f"{previous} {question}"
    return question
