"""Typo correction of questions against the knowledge base's own words.

"i forgot my pasword" embeds far from the password article (the sentence embedder splits
the unknown word into pieces) and BM25 finds no "pasword" at all, so a customer's typo
turns into a refusal. A word that is neither in the knowledge base nor a word the
embedder knows whole is replaced by the closest knowledge-base word (RapidFuzz edit
distance, at most 1 for short words and 2 for long ones, the more frequent word on ties).
Known words are never changed, so "bake bread" does not become "make bread".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

_WORD = re.compile(r"[A-Za-z][A-Za-z']+")
_HYPHENATED = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)+")
MIN_LENGTH = 4  # shorter words are too often abbreviations ("pls", "acct")
CACHED_WORDS = 10_000


class SpellingCorrector:
    """Corrects the words of a question that only a typo explains."""

    def __init__(self, vocabulary: Counter[str], known: Callable[[str], bool] = lambda w: False) -> None:
        self.vocabulary = vocabulary
        self._choices = [w for w in vocabulary if len(w) >= MIN_LENGTH - 1]
        self._known = known
        # A question is corrected for the search and again for the gate: remember recent words.
        self.correct_word: Callable[[str], str] = lru_cache(maxsize=CACHED_WORDS)(self._closest)

    @classmethod
    def from_texts(cls, texts: Iterable[str], known: Callable[[str], bool] = lambda w: False) -> "SpellingCorrector":
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(w.lower() for w in _WORD.findall(text))
            # "Wi-Fi", "e-mail", "2-step" are also written "wifi", "email".
            counts.update(m.replace("-", "").lower() for m in _HYPHENATED.findall(text))
        return cls(counts, known)

    def _closest(self, word: str) -> str:
        """The word, or the knowledge-base word it is a typo of."""
        lower = word.lower()
        if len(lower) < MIN_LENGTH or lower in self.vocabulary or self._known(lower) or "'" in lower:
            return word
        limit = 1 if len(lower) < 8 else 2
        matches = process.extract(lower, self._choices, scorer=DamerauLevenshtein.distance, score_cutoff=limit, limit=8)
        if not matches:
            return word
        # Of equally close words, the one that ends the way the typed word does: endings are typed
        # right far more often than middles ("temporarly" is "temporarily", not "temporary").
        best = min(matches, key=lambda m: (m[1], -_shared_ending(lower, m[0]), -self.vocabulary[m[0]]))
        return best[0]

    def correct(self, text: str) -> str:
        """The text with misspelt words replaced; everything else (case, punctuation) kept."""
        return _WORD.sub(lambda m: self.correct_word(m.group(0)), text)


def _shared_ending(a: str, b: str) -> int:
    """How many final letters two words share."""
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n
