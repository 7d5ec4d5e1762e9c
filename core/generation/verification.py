"""Grounding checks: is each sentence of a draft stated by one sentence of the passages?

A small model given passages happily invents specifics ("1.5 %", an order code), attaches a
number that stands in the passages to the wrong subject ("$5.99" for Canada, where $5.99 is
the US price), repeats a number the customer put in the question, or writes filler ("I hope
this helps."). Overlap with the passages as a whole catches none of the last three, so the
check binds every claim to its evidence (:class:`GroundingChecker`):

* the answer as a whole must not be empty, filler, a loop, or a copy of the prompt, and must
  give a number when the question asks for an amount or a time;
* every sentence is matched to the one evidence unit (passage sentence, list item or table
  row — :mod:`core.retrieval.units`) that means the same, by the sentence embedder and by
  shared content words;
* every specific of the sentence must stand in *that* unit; the question never counts.

The assistant applies :meth:`GroundingChecker.claim` sentence by sentence while a draft is
generated (:mod:`core.generation.verified_stream`), so nothing unsupported is ever shown.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.retrieval.units import Unit, all_units
from core.language import CJK_RUN, is_cjk
from core.retrieval.chunking import split_sentences
from core.retrieval.passages import Passage

CITATION = re.compile(r"\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://\S+|www\.\S+", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_POSSESSIVE = re.compile(r"['’]s$")  # "printer’s" is "printer", not "printer’"

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
    "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100",
    "thousand": "1000", "once": "1", "twice": "2", "single": "1", "double": "2",
}
# "one" is too often a pronoun ("the one you ordered") to count as a specific in answers.
_AMBIGUOUS_NUMBER_WORDS = {"one", "once", "single", "double"}

STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from as is are was were be been being
    it its this that these those there here you your yours we our ours us they them their i me my he she
    his her can could will would should may might must do does did done have has had not no yes all any
    each more most other some such only own same than too very just also into about over after before
    up down out off again further once which who whom what when where why how both few nor per via
    please thank thanks get got make made let let's i'm you're it's we're don't can't won't""".split()
)
# Capitalised words that are not specifics.
_COMMON_CAPITALISED = frozenset({"i", "i'm", "i've", "i'll", "i'd", "ok", "okay", "yes", "no", "please", "hi", "hello"})


@dataclass(slots=True)
class Verdict:
    ok: bool
    reason: str | None = None
    cited: list[int] = field(default_factory=list)  # 1-based numbers of the supporting passages
    unsupported: list[str] = field(default_factory=list)
    support: float = 0.0


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_tokens(text: str) -> list[str]:
    """Lower-cased, lightly stemmed content words; Chinese as character bigrams."""
    tokens = [_stem(_POSSESSIVE.sub("", w.lower()).strip("'’-")) for w in _WORD.findall(text)]
    tokens = [t for t in tokens if len(t) > 2 and t not in STOPWORDS]
    for run in CJK_RUN.findall(text):
        tokens.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    tokens.extend(_NUMBER.findall(text))
    return tokens


def _normalise_number(raw: str) -> str:
    """"1,000" → "1000", "5.00" → "5", "5.50" → "5.5"; "9:00" stays."""
    value = raw.replace(",", "")
    if "." in value:
        whole, _, fraction = value.partition(".")
        fraction = fraction.rstrip("0")
        value = f"{whole}.{fraction}" if fraction else whole
    return value


def _numbers(text: str, include_words: bool) -> set[str]:
    found = {_normalise_number(n) for n in _NUMBER.findall(CITATION.sub(" ", text))}
    if include_words:
        found.update(_number_words(text, ambiguous=True))
    return found


def _number_words(text: str, ambiguous: bool = False) -> list[str]:
    """Numbers written as words ("five", "twenty-one" → "20", "1"), as digits; "one" only if ``ambiguous``."""
    return [NUMBER_WORDS[part] for word in _WORD.findall(text.lower()) for part in word.split("-")
            if part in NUMBER_WORDS and (ambiguous or part not in _AMBIGUOUS_NUMBER_WORDS)]


_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)、]\s*", re.M)


def _specifics(text: str) -> list[tuple[str, str]]:
    """(kind, value) pairs an answer must not invent (list numbering "1." is not one)."""
    text = _LIST_MARKER.sub(" ", CITATION.sub(" ", text))
    items: list[tuple[str, str]] = [("email", e.lower()) for e in _EMAIL.findall(text)]
    items += [("url", u.rstrip(".,)").lower()) for u in _URL.findall(text)]
    scrubbed = _URL.sub(" ", _EMAIL.sub(" ", text))
    items += [("number", n) for n in sorted(_numbers(scrubbed, include_words=False))]
    items += [("number", n) for n in _number_words(scrubbed)]
    for sentence in split_sentences(scrubbed):
        words = _WORD.findall(sentence)
        for word in words[1:]:  # the first word of a sentence is capitalised anyway
            if word[:1].isupper() and word.lower() not in _COMMON_CAPITALISED:
                items.append(("name", word.lower().strip("'’-")))
    return items


def _evidence_has(kind: str, value: str, evidence_lower: str, evidence_numbers: set[str]) -> bool:
    if kind == "number":
        return value in evidence_numbers
    if kind == "name":
        return re.search(rf"(?<![a-z]){re.escape(value)}", evidence_lower) is not None
    return value in evidence_lower


_META = re.compile(r"\bpassages?\b|段落", re.I)
# "[2] (Title…" or "Passphrase [4] (Title…": the model copying the prompt's passage headers.
_HEADER_COPY = re.compile(
    r"(^|\n)\s*\w*\s*\[\d{1,2}\]\s*[(:]|(^|\n|[.!?]\s+)(Question|Article|Passage)\s*(\[\d{1,2}\])?\s*:", re.I
)
# Questions that ask for an amount, a duration or a time are answered with a number.
_ASKS_FOR_NUMBER = re.compile(
    r"\bhow (long|much|many|soon|quickly|fast)\b|\bwhat time\b|\bphone\b|\bnumber to call\b|多久|多长时间|多少|几天|何时|电话", re.I
)
# Filler a small model wraps around (or puts instead of) an answer; it says nothing.
_PREAMBLE = re.compile(r"^\s*((the |my )?(short )?answer( to [^:,.]{1,40})?( is)?\s*[:,]|the answer is\b|answer\s*:)\s*", re.I)
_FILLER = re.compile(r"\b(i'?m|we'?re|i am|we are) (here|happy|glad) to (help|assist)( you)?( with [^.!?]*)?[.!?]?", re.I)


def _is_degenerate(answer: str, instructions: str) -> str | None:
    words = answer.lower().split()
    if len(CITATION.sub("", answer).strip()) < 2 or (
        not is_cjk(answer) and len(words) < 3 and not _numbers(answer, False) and not _EMAIL.search(answer) and not _URL.search(answer)
    ):
        return "empty or too short"
    grams = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
    if grams and grams.most_common(1)[0][1] >= 3:
        return "repeats itself"
    sentences = [s.lower() for s in split_sentences(answer) if len(s) > 20]
    if len(sentences) != len(set(sentences)):
        return "repeats a sentence"
    if _META.search(answer):
        return "talks about the passages instead of answering"
    if _HEADER_COPY.search(answer):
        return "copies the passage headers instead of answering"
    instruction_words = instructions.lower().split()
    instruction_grams = {tuple(instruction_words[i : i + 6]) for i in range(len(instruction_words) - 5)}
    if any(tuple(words[i : i + 6]) in instruction_grams for i in range(len(words) - 5)):
        return "echoes the instructions"
    return None


# ---- binding claims to evidence --------------------------------------------------------

Embed = Callable[[list[str]], np.ndarray]
"""Texts → L2-normalised vectors (the bundled sentence embedder); cosine is a dot product."""

_SHORTCUT = re.compile(r"\b(?:ctrl|cmd|command|alt|option|opt|shift|control|fn|win|meta)(?:\s*\+\s*[\w.,/;'\[\]-]+)+", re.I)
_QUOTED = re.compile(r"[\"“]([^\"”]{2,40})[\"”]")
# A number with the unit it counts: "15 minutes" and "15 days" are different claims.
_AMOUNT = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(?:-|to|–)?\s*(?:\d+(?:[.,]\d+)?\s*)?"
    r"(business days?|working days?|days?|hours?|minutes?|mins?|seconds?|weeks?|months?|years?|%|percent|characters?|digits?|"
    r"个工作日|工作日|天|小时|分钟|周|个月|年)",
    re.I,
)
_UNIT_CANON = {"min": "minute", "mins": "minute", "percent": "%", "working day": "business day", "工作日": "个工作日"}
# Words that say nothing about the question: a sentence made only of these is filler.
_FILLER_WORDS = frozenset(
    """help helps helped helping hope happy glad ready assist assistance sure question questions welcome
    feel free ask anything else further great good nice day reach reaching out know let note information
    answer puzzle appreciate patience understand sorry apologize inconvenience certainly absolutely course
    definitely happy thing things way need needs provide""".split()
)
_FILLER_ZH = re.compile(r"^(希望(这)?(对您)?有(所)?帮助|很高兴(为您)?(服务|帮助)|感谢(您的)?(咨询|提问)|如有(其他|任何)问题.*|祝您.*)[。！!.]?$")

MIN_SIMILARITY = 0.5  # a claim and its evidence unit must mean about the same
MIN_COVERAGE = 0.5  # share of the claim's content words that its evidence unit contains
STRONG_SIMILARITY = 0.72  # … or a close paraphrase with fewer shared words
STRONG_COVERAGE = 0.3
MIN_OWN_COVERAGE = 0.25  # … of which this share must stand in the unit's own sentence (not its headings)
FULL_COVERAGE = 0.9  # every word of the claim (and its specifics) stands in the unit
BINDING_MARGIN = 0.25  # how much worse than the best match the unit holding the specifics may be


def _canon_unit(unit: str) -> str:
    unit = unit.lower()
    unit = _UNIT_CANON.get(unit, unit)
    if unit.endswith("s") and unit not in ("%",) and not is_cjk(unit):
        unit = unit[:-1]
    return _UNIT_CANON.get(unit, unit)


def _amounts(text: str) -> set[tuple[str, str]]:
    return {(_normalise_number(n), _canon_unit(u)) for n, u in _AMOUNT.findall(text)}


def claim_specifics(text: str) -> list[tuple[str, str]]:
    """Everything in a claim that must be found, as written, in its evidence unit."""
    items = _specifics(text)
    items += [("shortcut", re.sub(r"\s+", "", m).lower()) for m in _SHORTCUT.findall(text)]
    items += [("quoted", q.lower()) for q in _QUOTED.findall(text)]
    items += [("amount", f"{n} {u}") for n, u in _amounts(text)]
    return items


def _evidence_numbers(text: str) -> set[str]:
    """Numbers a passage states, in digits or words — not "one" ("one order" is no count)."""
    return _numbers(text, include_words=False) | set(_number_words(text))


_PHONE_NUMBER = re.compile(r"\+?\d[\d\s().-]{7,}\d")
# Negations of English statements ("no-reply@…" is an address, not a "no"). Chinese negation
# characters are too often parts of other words (不同, 无障碍) to compare this way.
_NEGATION = re.compile(r"\b(not|no(?![-@.\w])|never|none|nothing|cannot|cant|neither|nor|without)\b|n['’]t\b", re.I)
_YES_NO = re.compile(r"^\s*(yes|no|yep|nope|sure)\b[,.!]?\s*|^\s*(是的|是|不是|不)[，,。]\s*", re.I)


def negated(text: str) -> bool:
    """Whether a statement is negative ("We don't ship …") — a leading "No," is only an echo."""
    return not is_cjk(text) and bool(_NEGATION.search(_YES_NO.sub("", text)))


def claim_specifics_beyond_numbers(text: str) -> bool:
    """Whether a claim has a unit, a price, a phone number, an address — anything but bare numbers."""
    return bool(_AMOUNT.search(text) or re.search(r"[$€£¥%]", text) or _EMAIL.search(text) or _URL.search(text)
                or _PHONE_NUMBER.search(text))


def is_filler(sentence: str) -> bool:
    """Says nothing a customer can use ("I hope this helps.", "I'm ready to help.")."""
    body = _FILLER.sub(" ", _PREAMBLE.sub("", CITATION.sub(" ", sentence))).strip()
    if is_cjk(body):
        return bool(_FILLER_ZH.match(body.strip())) or not CJK_RUN.search(body)
    words = [_stem(w.lower().strip("'’-")) for w in _WORD.findall(body)]
    words = [w for w in words if w not in STOPWORDS and len(w) > 1]
    if _numbers(body, include_words=False) or _EMAIL.search(body) or _URL.search(body):
        return False
    return all(w in _FILLER_WORDS or _stem(w) in _FILLER_WORDS for w in words)


@dataclass(slots=True)
class Evidence:
    """The retrieved passages cut into units, with what matching needs, computed once."""

    question: str
    units: list[Unit]
    tokens: list[set[str]]
    lowered: list[str]
    numbers: list[set[str]]
    amounts: list[set[tuple[str, str]]]
    question_tokens: set[str]
    vectors: np.ndarray | None = None

    @classmethod
    def build(cls, passages: Sequence[Passage], question: str = "", embed: Embed | None = None) -> "Evidence":
        # Single units only: a window of two neighbours lets a claim take its subject from one
        # sentence and its number from the next ("screenshots go to Videos/Screencasts").
        units = all_units(passages)
        fulls = [u.full for u in units]
        evidence = cls(
            question=question, units=units,
            tokens=[set(content_tokens(f)) for f in fulls],
            lowered=[f.lower() for f in fulls],
            numbers=[_evidence_numbers(f) for f in fulls],
            amounts=[_amounts(f) for f in fulls],
            question_tokens=set(content_tokens(question)),
        )
        if embed is not None and units and not is_cjk(question):
            evidence.vectors = np.asarray(embed(fulls), dtype=np.float32)
        return evidence

    def holds(self, i: int, kind: str, value: str) -> bool:
        """Whether unit ``i`` (with its headings) states the specific."""
        if kind == "amount":
            number, _, unit = value.partition(" ")
            return (number, unit) in self.amounts[i]
        if kind == "shortcut":
            return value in re.sub(r"\s+", "", self.lowered[i])
        return _evidence_has(kind, value, self.lowered[i], self.numbers[i])


@dataclass(slots=True)
class Claim:
    """One answer sentence and the evidence unit that supports it (or why none does)."""

    text: str
    ok: bool
    filler: bool = False
    reason: str | None = None
    unit: Unit | None = None
    similarity: float | None = None
    coverage: float = 0.0
    unsupported: list[str] = field(default_factory=list)


class GroundingChecker:
    """Binds every sentence of an answer to one evidence unit of the retrieved passages.

    A sentence is supported when one unit (a passage sentence, list item or table row) means
    the same — by the sentence embedder where there is one, and by
    shared content words — *and* states every specific of the sentence (number with its unit,
    price, name, shortcut, e-mail, URL). The unit is chosen by meaning first, so a number that
    stands elsewhere in the passages, attached to another subject, does not count; nor does
    anything that only the question says. Short elliptic answers ("60 minutes.") take their
    subject from the question.
    """

    def __init__(self, embed: Embed | None = None, instructions: str = "") -> None:
        self.embed = embed
        self.instructions = instructions

    def evidence(self, passages: Sequence[Passage], question: str = "") -> Evidence:
        return Evidence.build(passages, question, self.embed)

    def claim(self, sentence: str, evidence: Evidence) -> Claim:
        text = _LIST_MARKER.sub("", CITATION.sub(" ", sentence)).strip()
        text = _PREAMBLE.sub("", text).strip() or text
        if is_filler(text):
            return Claim(sentence, ok=True, filler=True)
        if not evidence.units:
            return Claim(sentence, ok=False, reason="there are no passages to support it")
        if text.rstrip().endswith(("?", "？")):
            return Claim(sentence, ok=True, filler=True)  # a question back ("Can I cancel?") claims nothing
        tokens = set(content_tokens(text))
        words = {t for t in tokens if not t[:1].isdigit()}
        if not words and not is_cjk(text) and not claim_specifics_beyond_numbers(text) \
                and not _ASKS_FOR_NUMBER.search(evidence.question):
            return Claim(sentence, ok=False, reason="a bare number says nothing about what it counts", unsupported=[sentence])
        elliptic = len(words) < 2 and not is_cjk(text)
        claim_tokens = tokens | evidence.question_tokens if elliptic else tokens
        if not claim_tokens:
            return Claim(sentence, ok=True, filler=True)
        coverage = [len(claim_tokens & ts) / len(claim_tokens) for ts in evidence.tokens]
        similarity: list[float] | None = None
        if evidence.vectors is not None and self.embed is not None and not is_cjk(text):
            probe = f"{evidence.question} {text}" if elliptic else text
            vector = np.asarray(self.embed([probe]), dtype=np.float32)[0]
            similarity = [float(v) for v in evidence.vectors @ vector]
        score = [c + (similarity[i] if similarity else 0.0) for i, c in enumerate(coverage)]
        order = sorted(range(len(score)), key=lambda i: -score[i])
        specifics = claim_specifics(text)
        # The supporting unit is the best match that states every specific, and it must be
        # nearly as good a match as the best overall: a number that stands in a sentence
        # about something else does not support the claim.
        margin = BINDING_MARGIN if similarity else BINDING_MARGIN + 0.1
        holding = [i for i in order if all(evidence.holds(i, k, v) for k, v in specifics)
                   and score[i] >= score[order[0]] - margin]
        # Of the units that could support it, one that agrees in polarity (can / can't) first.
        polarity = negated(text)
        agreeing = [i for i in holding if negated(evidence.units[i].text) == polarity]
        best = (agreeing or holding or order)[0]
        missing = [v for k, v in specifics if not evidence.holds(best, k, v)]
        sim = similarity[best] if similarity else None
        cov = coverage[best]
        claim = Claim(sentence, ok=False, unit=evidence.units[best], similarity=sim, coverage=cov)
        if missing:
            anywhere = [v for k, v in specifics if not any(evidence.holds(i, k, v) for i in range(len(evidence.units)))]
            if anywhere:
                claim.reason = f"states specifics found in no passage: {', '.join(sorted(set(anywhere)))}"
                claim.unsupported = sorted(set(anywhere))
            else:
                claim.reason = f"states {', '.join(sorted(set(missing)))} where the passages say it of something else"
                claim.unsupported = sorted(set(missing))
            return claim
        specific_words = set(content_tokens(" ".join(v for _, v in specifics)))
        words_only = set() if elliptic else {
            t for t in claim_tokens - evidence.question_tokens - specific_words if not t[:1].isdigit()
        }
        if specifics and len(words_only) >= 2 and not is_cjk(text):
            # The number's own sentence must share the claim's words, not only its headings:
            # "A refund takes 1 hour" is not stated by "cancel within 1 hour" under "Refunds".
            own = set(content_tokens(claim.unit.text))
            if len(words_only & own) / len(words_only) < MIN_OWN_COVERAGE:
                claim.reason = f"states {', '.join(sorted({v for _, v in specifics}))} of something else than its passage sentence does"
                claim.unsupported = [sentence]
                return claim
        if polarity != negated(claim.unit.text):
            claim.reason = "says the opposite of its passage sentence (yes/no, can/can't)"
            claim.unsupported = [sentence]
            return claim
        if sim is None:
            supported = cov >= (0.6 if is_cjk(text) else MIN_COVERAGE + 0.1)
        else:
            supported = (sim >= MIN_SIMILARITY and cov >= MIN_COVERAGE) or (sim >= STRONG_SIMILARITY and cov >= STRONG_COVERAGE) \
                or cov >= FULL_COVERAGE
        if not supported:
            shown = f"similarity {sim:.2f}, " if sim is not None else ""
            claim.reason = f"not supported by any passage sentence ({shown}word coverage {cov:.2f})"
            claim.unsupported = [sentence]
            return claim
        claim.ok = True
        return claim

    def whole(self, answer: str, question: str) -> str | None:
        """Problems of the answer as a whole; ``None`` when it may be shown."""
        problem = _is_degenerate(answer, self.instructions)
        if problem:
            return problem
        if _ASKS_FOR_NUMBER.search(question) and not _numbers(answer, include_words=True):
            return "the question asks for an amount or a time and the answer gives none"
        body = [s for s in answer_sentences(answer) if not is_filler(s)]
        if not body:
            return "says nothing: only filler"
        if CITATION.sub("", body[-1]).rstrip().endswith((":", "：")):
            return "stops where the answer should begin"
        substance = content_tokens(_FILLER.sub(" ", _PREAMBLE.sub("", _LIST_MARKER.sub(" ", CITATION.sub(" ", answer)))))
        # A yes/no answer may repeat the question's words: "Do you sell my data?" → "We don't sell …".
        answers_yes_no = bool(_YES_NO.match(answer)) or negated(answer) != negated(question)
        if not set(substance) - set(content_tokens(question)) and not answers_yes_no:
            return "only restates the question"
        return None

    def check(self, answer: str, passages: Sequence[Passage], question: str = "", evidence: Evidence | None = None) -> Verdict:
        """The whole verdict on a finished draft ([1] is ``passages[0]``)."""
        problem = self.whole(answer, question)
        if problem:
            return Verdict(False, problem)
        markers = sorted({int(m) for m in CITATION.findall(answer)})
        bad = [m for m in markers if not 1 <= m <= len(passages)]
        if bad:
            return Verdict(False, f"cites passage(s) {bad} that were not given", unsupported=[f"[{m}]" for m in bad])
        evidence = evidence or self.evidence(passages, question)
        cited: list[int] = []
        scores: list[float] = []
        for sentence in answer_sentences(answer):
            claim = self.claim(sentence, evidence)
            if not claim.ok:
                return Verdict(False, claim.reason, cited=cited, unsupported=claim.unsupported or [sentence])
            if claim.unit is not None:
                number = claim.unit.passage + 1
                if number not in cited:
                    cited.append(number)
                scores.append(claim.similarity if claim.similarity is not None else claim.coverage)
        support = sum(scores) / len(scores) if scores else 0.0
        return Verdict(True, None, cited=cited or [1], support=support)


_CJK_CLAUSE = re.compile(r"(?<=[，；;])")


def answer_sentences(answer: str) -> list[str]:
    """An answer's claims: its lines (list items) cut into sentences, Chinese ones into clauses
    (a Chinese sentence often joins two facts with "，")."""
    out: list[str] = []
    for line in answer.splitlines():
        for sentence in split_sentences(line.strip()) if line.strip() else []:
            if is_cjk(sentence):
                clauses = [c.strip() for c in _CJK_CLAUSE.split(sentence) if c.strip()]
                if len(clauses) > 1 and all(len(CJK_RUN.sub("", c)) < len(c) // 2 + 1 and len(c) >= 6 for c in clauses):
                    out.extend(clauses)
                    continue
            out.append(sentence)
    return out


def verify_answer(
    answer: str,
    passages: Sequence[Passage],
    question: str = "",
    instructions: str = "",
    embed: Embed | None = None,
) -> Verdict:
    """Check a finished draft; without ``embed`` the support decision uses shared words only."""
    return GroundingChecker(embed, instructions).check(answer, passages, question)
