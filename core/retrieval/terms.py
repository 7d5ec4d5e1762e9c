"""Names the knowledge base never mentions: "reset my netflix password" is not about us.

A question about another company's product ("walmart", "spotify premium") embeds close to
our own articles on the same task (passwords, returns), so retrieval alone answers it
with our policy — a confident, cited, wrong answer. A question word is a *foreign name*
when it is in none of: the knowledge base's words (or a prefix of one: "promo"), an English
dictionary (english-words: web2 + GCIDE), or the common words of current English (wordfreq
Zipf ≥ 4.3: "app", "website"); and it is no typo of a knowledge-base word. The gate refuses
such a question unless retrieval is very sure anyway.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

_WORD = re.compile(r"[a-z]+")
MIN_LENGTH = 4
COMMON_ZIPF = 4.3  # wordfreq's scale: 4.3 ≈ 20 per million words


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True))


def _forms(word: str) -> set[str]:
    """The word and the stems its common endings may hide (plural, past, -ing)."""
    forms = {word}
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            forms.add(word[: -len(suffix)] + repl)
    return forms


def is_common_word(word: str) -> bool:
    from wordfreq import zipf_frequency

    forms = _forms(word)
    return bool(forms & _dictionary()) or zipf_frequency(word, "en") >= COMMON_ZIPF


def foreign_names(question: str, vocabulary: Collection[str], stopwords: Collection[str] = ()) -> list[str]:
    """Words of an (already typo-corrected) English question that name something outside the KB."""
    found = []
    for word in _WORD.findall(question.lower()):
        if len(word) < MIN_LENGTH or word in stopwords:
            continue
        if any(form in vocabulary for form in _forms(word)) or any(v.startswith(word) for v in vocabulary):
            continue
        if not is_common_word(word):
            found.append(word)
    return found
