"""Grounding checks: is a generated answer supported by the passages it stands on?

A small model given numbered passages happily invents specifics (a "1.5 %" fee, an
order code, a country the passage never lists), so word overlap alone is not enough.
The check rejects an answer that

* is empty, loops, or echoes the instructions;
* cites a passage number that was not given;
* states a specific — number, duration, price, e-mail, URL, phone, or a capitalised
  name or place — that appears in none of the passages (nor in the question);
* has sentences whose content words are mostly absent from the passages.

When it fails, the assistant answers with :func:`extractive_answer` instead: quoted
sentences of the best passage, which are supported by construction.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.language import CJK_RUN, is_cjk
from core.retrieval.chunking import split_sentences
from core.retrieval.passages import Passage

CITATION = re.compile(r"\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://\S+|www\.\S+", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")

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
    tokens = [_stem(w.lower().strip("'’-")) for w in _WORD.findall(text)]
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
        for word in _WORD.findall(text.lower()):
            for part in word.split("-"):
                if part in NUMBER_WORDS:
                    found.add(NUMBER_WORDS[part])
    return found


_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)、]\s*", re.M)


def _specifics(text: str) -> list[tuple[str, str]]:
    """(kind, value) pairs an answer must not invent (list numbering "1." is not one)."""
    text = _LIST_MARKER.sub(" ", CITATION.sub(" ", text))
    items: list[tuple[str, str]] = [("email", e.lower()) for e in _EMAIL.findall(text)]
    items += [("url", u.rstrip(".,)").lower()) for u in _URL.findall(text)]
    scrubbed = _URL.sub(" ", _EMAIL.sub(" ", text))
    items += [("number", n) for n in sorted(_numbers(scrubbed, include_words=False))]
    for word in _WORD.findall(scrubbed.lower()):
        for part in word.split("-"):
            if part in NUMBER_WORDS and part not in _AMBIGUOUS_NUMBER_WORDS:
                items.append(("number", NUMBER_WORDS[part]))
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
_PREAMBLE = re.compile(r"^\s*(the answer( to (this|the|your) question)?( is)?\s*[:,]?|answer\s*:)\s*", re.I)
_FILLER = re.compile(r"\b(i'?m|we'?re|i am|we are) (here|happy|glad) to (help|assist)( you)?( with [^.!?]*)?[.!?]?", re.I)


def _is_degenerate(answer: str, instructions: str) -> str | None:
    words = answer.lower().split()
    if len(CITATION.sub("", answer).strip()) < 2 or (not is_cjk(answer) and len(words) < 3):
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


def verify_answer(
    answer: str,
    passages: Sequence[Passage],
    question: str = "",
    instructions: str = "",
    min_support: float = 0.6,
) -> Verdict:
    """Check ``answer`` against the numbered ``passages`` ([1] is ``passages[0]``)."""
    problem = _is_degenerate(answer, instructions)
    if problem:
        return Verdict(False, problem)
    if _ASKS_FOR_NUMBER.search(question) and not _numbers(answer, include_words=True):
        return Verdict(False, "the question asks for an amount or a time and the answer gives none")
    markers = [int(m) for m in CITATION.findall(answer)]
    bad = sorted({m for m in markers if not 1 <= m <= len(passages)})
    if bad:
        return Verdict(False, f"cites passage(s) {bad} that were not given", unsupported=[f"[{m}]" for m in bad])

    texts = [f"{p.title}\n{' '.join(p.headings)}\n{p.text}" for p in passages]
    token_sets = [set(content_tokens(t)) for t in texts]
    answer_tokens = content_tokens(_LIST_MARKER.sub(" ", CITATION.sub(" ", answer)))

    # Which passages the answer stands on: its own markers, else the ones it overlaps most.
    cited = sorted(set(markers))
    if not cited and passages:
        overlaps = [len(set(answer_tokens) & ts) for ts in token_sets]
        best = max(overlaps)
        cited = [i + 1 for i, o in enumerate(overlaps) if best and o >= 0.5 * best][:2] or [1]

    # Specifics must come from the passages (any given one; the one that has it joins the citations).
    question_lower = question.lower()
    question_numbers = _numbers(question, include_words=True)
    lowered = [t.lower() for t in texts]
    numbers = [_numbers(t, include_words=True) for t in texts]
    unsupported: list[str] = []
    for kind, value in _specifics(answer):
        if _evidence_has(kind, value, question_lower, question_numbers):
            continue
        holders = [i + 1 for i in range(len(texts)) if _evidence_has(kind, value, lowered[i], numbers[i])]
        if not holders:
            unsupported.append(value)
        elif not set(holders) & set(cited):
            cited.append(holders[0])
    if unsupported:
        return Verdict(False, f"states specifics found in no passage: {', '.join(sorted(set(unsupported)))}",
                       cited=sorted(cited), unsupported=sorted(set(unsupported)))

    # Sentence-level support by content words of the cited passages. Words the answer takes
    # from the question are neutral: restating the question is not evidence of an answer.
    evidence = set().union(*(token_sets[i - 1] for i in cited))
    asked = set(content_tokens(question))
    weak: list[str] = []
    total = hit = 0
    for sentence in split_sentences(CITATION.sub(" ", answer)):
        tokens = [t for t in content_tokens(sentence) if t not in asked or t in evidence]
        if len(tokens) < 3:
            continue
        covered = sum(1 for t in tokens if t in evidence)
        total += len(tokens)
        hit += covered
        if covered / len(tokens) < 0.5:
            weak.append(sentence)
    substance = content_tokens(_FILLER.sub(" ", _PREAMBLE.sub("", _LIST_MARKER.sub(" ", CITATION.sub(" ", answer)))))
    if not set(substance) - asked:
        return Verdict(False, "only restates the question", cited=sorted(cited))
    support = hit / total if total else 1.0
    if weak or support < min_support:
        return Verdict(False, f"not supported by the passages (support {support:.2f})", cited=sorted(cited),
                       unsupported=weak, support=support)
    return Verdict(True, None, cited=sorted(cited), support=support)


def supported_prefix(
    answer: str,
    passages: Sequence[Passage],
    question: str = "",
    instructions: str = "",
) -> tuple[str, Verdict]:
    """The longest run of leading sentences that passes :func:`verify_answer`.

    A small model often gives a correct first sentence and then drifts, loops or invents;
    keeping the verified start is better than discarding it. Returns the whole answer's
    verdict when no prefix passes.
    """
    verdict = verify_answer(answer, passages, question, instructions)
    if verdict.ok:
        return answer, verdict
    sentences = split_sentences(answer)
    joiner = "" if is_cjk(answer) else " "
    for n in range(len(sentences) - 1, 0, -1):
        prefix = joiner.join(sentences[:n])
        candidate = verify_answer(prefix, passages, question, instructions)
        if candidate.ok:
            return prefix, candidate
    return answer, verdict


def _sentences(passage: Passage) -> list[str]:
    lines = [line.strip(" -*\t") for line in passage.text.splitlines()]
    return [s for line in lines if line for s in split_sentences(line) if len(s) > 2]


def extractive_answer(
    question: str,
    passages: Sequence[Passage],
    similarity: Callable[[str, list[str]], list[float]],
    max_sentences: int = 2,
    retrieval_scores: Sequence[float] | None = None,
) -> tuple[int, str]:
    """Quote the passage whose sentences best answer the question: (its index, the quote).

    Retrieval ranks whole passages, and the top one is sometimes a neighbouring section of
    the right article; each passage is judged by its best sentence's similarity to the
    question plus its retrieval score, so a passage that states the answer wins unless
    retrieval clearly preferred another. The chosen sentences keep their original order.
    """
    best: tuple[float, int, str] = (float("-inf"), 0, passages[0].text.strip())
    for index, passage in enumerate(passages):
        sentences = _sentences(passage)
        if not sentences:
            continue
        scores = similarity(question, sentences)
        chosen = sorted(sorted(range(len(sentences)), key=lambda i: -scores[i])[:max_sentences])
        strength = max(scores[i] for i in chosen) + (retrieval_scores[index] if retrieval_scores else 0.0)
        if strength > best[0]:
            joiner = "" if is_cjk(passage.text) else " "
            best = (strength, index, joiner.join(sentences[i] for i in chosen))
    return best[1], best[2]
