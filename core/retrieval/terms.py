"""Names the knowledge base never mentions: "reset my netflix password" is not about us.

A question about another company's product ("walmart", "spotify premium") embeds close to
our own articles on the same task (passwords, returns), so retrieval alone answers it
with our policy — a confident, cited, wrong answer. A question word is a *foreign name*
when it is in none of: the knowledge base's words (or a prefix of one: "promo"), an English
dictionary (english-words: web2 + GCIDE), or the common words of current English (wordfreq
Zipf ≥ 4.3: "app", "website"); and it is no typo of a knowledge-base word. The gate refuses
such a question unless retrieval is very sure anyway.

In Chinese there are no spaces and no capitals to go by: the segmenter (jieba) tags place,
organisation and other proper names ("淘宝", "京东", "北京"), and such a name that no passage
contains is foreign.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from functools import lru_cache
from itertools import islice

_WORD = re.compile(r"[a-z]+")
# Other companies and their products that customers name when they write to the wrong help
# centre ("whats amazons return policy", "reset my gmail password"). Dictionaries know some of
# them as ordinary words (amazon) or as common ones (iphone), so they are named here; like any
# foreign name, each counts only where the knowledge base never mentions it. Words that are also
# everyday English ("target", "apple", "windows", "chrome") are left out on purpose.
OTHER_COMPANIES = frozenset(
    """amazon walmart ebay etsy costco ikea aliexpress alibaba shein temu zalando asos wayfair homedepot
    netflix spotify hulu disney youtube google gmail android iphone ipad ipod macbook imac macos itunes icloud
    airpods samsung huawei xiaomi oneplus motorola microsoft outlook hotmail xbox playstation nintendo
    facebook instagram whatsapp tiktok snapchat twitter linkedin reddit pinterest
    dropbox uber lyft airbnb expedia venmo klarna afterpay zelle cashapp yahoo""".split()
)
# Three letters are enough to name a thing ("vpn", "isp", "usb"); chat shorthand is not one.
MIN_LENGTH = 3
# Chat shorthand, and contractions typed without their apostrophe ("isnt", "doesnt"): never names.
SHORTHAND = frozenset(
    "pls plz thx thnx tnx idk btw asap fyi imo imho tbh omg lol smh wtf brb ttyl hru "
    "isnt arent wasnt werent dont doesnt didnt cant couldnt wont wouldnt shouldnt hasnt havent hadnt "
    "mustnt neednt aint im ive youre youve youll theyre theyve thats whats wheres theres heres lets".split())
COMMON_ZIPF = 4.3  # wordfreq's scale: 4.3 ≈ 20 per million words
# English's closed classes, past the stopword list: quantifiers, indefinite pronouns and adverbs of
# frequency and degree. However few articles use one ("always", "whole", "several"), it counts or
# qualifies what is asked and never names a topic the knowledge base might lack.
CLOSED_CLASS = frozenset(
    """all any some every each both either neither several many much few whole entire
    something anything everything nothing someone anyone everyone somebody anybody everybody nobody
    somewhere anywhere everywhere nowhere else
    always never ever often sometimes usually rarely seldom again anymore still already just really even
    only also too very quite rather once twice""".split())
# "aaaaaaaa", "sooo": a letter typed three times or more is how it sounds, not a name.
_DRAWN_OUT = re.compile(r"([a-z])\1\1")


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True))


def load_word_lists() -> None:
    """Read the dictionary and the word frequencies now (a server's start), not on a question."""
    from wordfreq import zipf_frequency

    _dictionary()
    _common_long_words()
    zipf_frequency("warm", "en")


_ENDINGS = (("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"),
            ("iest", "y"), ("ier", "y"), ("est", ""), ("er", ""), ("ly", ""))


def _forms(word: str) -> set[str]:
    """The word and the stems its common endings may hide: plural, past ("emptied"), -ing, comparative
    ("quickest"), adverb, and a doubled final consonant ("cancelled", "stopped")."""
    forms = {word}
    for suffix, repl in _ENDINGS:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            forms.add(stem + repl)
            if not repl and len(stem) >= 4 and stem[-1] == stem[-2] and stem[-1] not in "aeiou":
                forms.add(stem[:-1])
    return forms


def is_common_word(word: str) -> bool:
    from wordfreq import zipf_frequency

    forms = _forms(word)
    return bool(forms & _dictionary()) or zipf_frequency(word, "en") >= COMMON_ZIPF or is_misspelt_common(word)


MISSPELT_MIN_LENGTH = 7  # shorter words are one letter away from too many others ("unpair", "repair")


@lru_cache(maxsize=1)
def _common_long_words() -> tuple[str, ...]:
    from wordfreq import top_n_list

    return tuple(w for w in top_n_list("en", 50_000) if len(w) >= MISSPELT_MIN_LENGTH - 1 and w.isalpha())


def is_misspelt_common(word: str) -> bool:
    """Whether a long word is one typo away from a common English word ("definitly"): the speller
    only knows the knowledge base's words, and a misspelt everyday word names nothing foreign."""
    if len(word) < MISSPELT_MIN_LENGTH:
        return False
    from rapidfuzz import process
    from rapidfuzz.distance import DamerauLevenshtein

    return process.extractOne(word, _common_long_words(), scorer=DamerauLevenshtein.distance, score_cutoff=1) is not None


def foreign_names(question: str, vocabulary: Collection[str], stopwords: Collection[str] = ()) -> list[str]:
    """Words of an (already typo-corrected) English question that name something outside the KB."""
    found = []
    for word in _WORD.findall(question.lower()):
        if len(word) < MIN_LENGTH or word in stopwords or word in SHORTHAND or _DRAWN_OUT.search(word):
            continue
        if any(form in vocabulary for form in _forms(word)) or any(v.startswith(word) for v in vocabulary):
            continue
        if not is_common_word(word) or _forms(word) & OTHER_COMPANIES:
            found.append(word)
    return found


_CJK_NAME_TAGS = {"ns", "nt", "nz"}  # jieba: place, organisation, other proper name (person names mis-tag too often)


def foreign_names_zh(question: str, corpus: str) -> list[str]:
    """Proper names of a Chinese question that the knowledge base's text (``corpus``) never contains."""
    import logging

    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(logging.ERROR)
    return [w.word for w in pseg.cut(question) if w.flag in _CJK_NAME_TAGS and len(w.word) >= 2 and w.word not in corpus]


# "how do i scan a document", "how to powerwash a chromebook": the action asked for. Where the knowledge
# base never uses the verb in any form, it documents no way of doing it, however close its articles
# on printers or resetting come. Only after an explicit "how do i / how to / can i": a bare first word
# is as often the subject of a problem report ("app is playing sound but …").
_ASKED_ACTION = re.compile(
    r"^\s*(?:how (?:do|can|could|should|would) (?:i|you|we|one)|how to|can (?:i|you|we)|help me|i (?:want|need) to"
    r"|is (?:it|there) (?:possible|a way|any way) (?:for me )?to)"
    r"\s+(?:quickly |easily |still |also )?([a-z]{3,})\b", re.I)


# "how can i tell if my mouse is broken": telling, knowing, seeing whether, is finding out, not an action.
_FINDS_OUT = re.compile(r"(?:tell|know|see|find out|check)\s+(?:if|whether|what|which|when|who|how)\b", re.I)


def asked_action(question: str) -> str | None:
    """The verb of a how-to question ("scan" in "how do i scan a document"), or None."""
    match = _ASKED_ACTION.match(question)
    if match is None or _FINDS_OUT.match(question, match.start(1)):
        return None
    return match.group(1).lower()


def how_to_words(question: str) -> list[str]:
    """The words of a how-to question from its verb on ("scan", "document", "printer" in "how do i
    scan a document with my printer"), shorthand and closed-class words left out; none for another
    kind of question."""
    match = _ASKED_ACTION.match(question)
    if match is None or asked_action(question) is None:
        return []
    return [w for w in _WORD.findall(question[match.start(1):].lower())
            if len(w) >= 3 and w not in SHORTHAND and w not in CLOSED_CLASS]


def unknown_action(question: str, vocabulary: Collection[str]) -> list[str]:
    """The verb of a how-to question (already typo-corrected) where the knowledge base never uses it."""
    verb = asked_action(question)
    return [] if verb is None or known_word(verb, vocabulary) else [verb]


# A verb the knowledge base uses in this many articles at most is one it barely documents: asked for
# ("how do i scan a document") and absent from the article found, it is not what that article does.
RARE_ACTION_DOCS = 2
RARE_SHARE = 0.1  # ... and, for the other words of a how-to question, a tenth of the articles at most


class WordArticles:
    """Which articles hold a word in one of its forms ("scanning" for "scan"), as a whole word: built
    once per index, so each how-to verb is a lookup, not a pass over every passage."""

    def __init__(self, articles: Iterable[tuple[str, str]]) -> None:
        self._by_word: dict[str, set[str]] = {}
        for article, text in articles:
            for word in set(_WORD.findall(text.lower())):
                self._by_word.setdefault(word, set()).add(article)
        self._count = len({a for where in self._by_word.values() for a in where})
        self._by_form: dict[str, set[str]] = {}  # a form ("scan") -> the articles of the words it may be of
        for word, where in self._by_word.items():
            for form in _forms(word):
                self._by_form.setdefault(form, set()).update(where)

    def __len__(self) -> int:
        """How many articles there are."""
        return self._count

    def articles(self, word: str) -> set[str]:
        found = set(self._by_form.get(word, ()))
        for form in _forms(word):
            found |= self._by_word.get(form, set())
        return found


def mentions(word: str, text: str) -> bool:
    """Whether ``text`` holds ``word`` in one of its forms ("scanning" for "scan"), as a whole word."""
    return bool(WordArticles([("", text)]).articles(word))


# What a how-to question acts on: the first word after its verb, past particles, articles and
# modifiers ("how do i set up fingerprint login", "how do i find my public ip address").
_NOT_THE_OBJECT = frozenset(
    """up on off out in into down back over away a an the my your our their his her its this that these those
    to for of with from by at about new old own other another public private default
    current external internal different same specific certain main extra more less
    multiple first second last next previous""".split()) | CLOSED_CLASS
SYNONYM_SIMILARITY = 0.65  # all-MiniLM-L6-v2, word against word: apps ~ applications 0.71, vpn ~ network 0.55


def asked_object(question: str) -> str | None:
    """The thing a how-to question (already typo-corrected) asks to act on, or None."""
    match = _ASKED_ACTION.match(question)
    if match is None:
        return None
    rest = _WORD.findall(question[match.end():].lower())
    word = next((w for w in rest if w not in _NOT_THE_OBJECT), None)
    return word if word and len(word) >= MIN_LENGTH else None


def known_word(word: str, vocabulary: Collection[str]) -> bool:
    """The word, one of its forms, or (four letters or more) a longer word it begins, is in ``vocabulary``."""
    return any(form in vocabulary for form in _forms(word)) or (
        len(word) >= 4 and any(v.startswith(word) for v in vocabulary))


def other_companies(question: str, vocabulary: Collection[str]) -> list[str]:
    """Other companies' names in the question as written (before typo correction turns "gmail" into
    "email"), where the knowledge base never mentions them."""
    return [w for w in _WORD.findall(question.lower())
            if _forms(w) & OTHER_COMPANIES and not any(form in vocabulary for form in _forms(w))]


# Another operating system or device named as where the question applies ("where does windows 11
# save screenshots", "show hidden files in finder on a mac", "lock the screen on a chromebook").
# The words are everyday English or appear in passing in a help centre ("the Windows key",
# "Chromebooks have a magnifying glass"), so a name counts as ours where the passages found for the
# question say it ("no windows key on my chromebook": the article on the Super key names Chromebooks),
# or where the knowledge base says it in at least PLATFORM_MENTIONS places: then it documents that platform.
_OTHER_PLATFORMS = re.compile(
    r"\bwindows ?(?:\d{1,2}|xp|vista|pc|laptop|computer|explorer|defender|update|store)\b"
    r"|\b(?:mac ?os|os ?x|chrome ?os|ipad ?os|ios|apple id|apple watch|file explorer|windows explorer"
    r"|system preferences|mission control|siri|cortana|finder|chromebooks?|macbooks?|imacs?)\b"
    r"|\b(?:on|in|for|with|using|from) (?:a |an |my |the |your )?(?:mac|windows|pc)\s*[?.!]*$"
)
PLATFORM_MENTIONS = 3
_WHERE = re.compile(r"\b(?:on|in|for|with|using|from) (?:a |an |my |the |your )?(?=(mac|windows|pc)\b)")


@lru_cache(maxsize=2)
def _lower(corpus: str) -> str:
    return corpus.lower()  # a str caches its hash: a repeated corpus costs one lookup


@lru_cache(maxsize=256)
def _mentions(name: str, corpus: str) -> int:
    """How many places of the knowledge base name ``name``, counted up to PLATFORM_MENTIONS: kept per
    corpus (one per index), so a question naming a platform does not rescan the whole knowledge base."""
    return sum(1 for _ in islice(re.finditer(name, _lower(corpus)), PLATFORM_MENTIONS))


def other_platforms(question: str, corpus: str, evidence: str = "") -> list[str]:
    """Other systems the question (as written) is about that neither the passages found for it
    (``evidence``) name nor the knowledge base's text (``corpus``) names PLATFORM_MENTIONS times."""
    found_text = evidence.lower()
    found = []
    for match in _OTHER_PLATFORMS.finditer(question.lower()):
        phrase = match.group(0).strip(" ?.!")
        bare = _WHERE.match(phrase)
        if bare:  # "on a mac": as a place, not "Mac keyboards" or the "windows" of apps
            name = rf"{_WHERE.pattern}{re.escape(bare.group(1))}\b"
        else:
            name = rf"\b{re.escape(phrase[:-1] if phrase.endswith(('books', 'macs')) else phrase)}"
        if not re.search(name, found_text) and _mentions(name, corpus) < PLATFORM_MENTIONS:
            found.append(phrase)
    return found
