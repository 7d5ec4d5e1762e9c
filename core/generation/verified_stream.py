"""Verified streaming: a draft reaches the user one checked sentence at a time.

The generator's deltas are buffered until a sentence is complete; the sentence is then
bound to its evidence (:meth:`GroundingChecker.claim`). A supported sentence is released, a
filler sentence is dropped, and the first unsupported sentence, a loop or a run-on ends the
draft: generation stops and nothing after it is shown. The first text is held until the
released sentences also pass the whole-answer checks (a number for "how long", not just
filler), so what the user sees is never taken back — the final answer is exactly the text
released, or, when nothing could be released, a composed answer instead.
"""

from __future__ import annotations

import re
from collections import Counter

from core.generation.verification import (
    _HEADER_COPY,
    _META,
    _PREAMBLE,
    CITATION,
    Evidence,
    GroundingChecker,
    answer_sentences,
)
from core.language import is_cjk

# A sentence is complete at . ! ? followed by white space, at 。！？, or at a line end.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
_NOT_AN_END = re.compile(r"\d{1,2}[.)]|[A-Za-z]\.|e\.g\.|i\.e\.|etc\.|approx\.|no\.", re.I)
_END_MARK = re.compile(r"([.!?。！？]+)$")
MAX_SENTENCES = 4  # a support answer is short; more is drift
MAX_SENTENCE_CHARS = 400  # a "sentence" longer than this is a run-on or a loop without stops


class VerifiedDraft:
    """Feed generator deltas in; get back only the text that may be shown."""

    def __init__(self, checker: GroundingChecker, evidence: Evidence, question: str) -> None:
        self.checker = checker
        self.evidence = evidence
        self.question = question
        self.raw = ""
        self._start = 0  # where the unchecked sentence begins in ``raw``
        self._held: list[str] = []  # accepted, not yet shown (until the whole-answer check passes)
        self._seen: set[str] = set()
        self.shown = ""
        self.cited: list[int] = []  # passage numbers (1-based), in order of first use
        self.accepted = 0
        self.stopped = False
        self.reason: str | None = None

    # ---- feeding ------------------------------------------------------------------------
    def feed(self, delta: str) -> str:
        """Add generated text; returns the newly verified text to show (often empty)."""
        if self.stopped:
            return ""
        self.raw += delta
        if self._loops():
            return self._stop("repeats itself")
        out = []
        position = self._start
        while not self.stopped and position <= len(self.raw):
            match = _BOUNDARY.search(self.raw, position)
            if match is None:
                break
            # A boundary after 。 is empty: step past it, or the same match is found forever.
            position = match.end() if match.end() > match.start() else match.end() + 1
            sentence = self.raw[self._start : match.start()].strip()
            last_word = sentence.split()[-1] if sentence.split() else ""
            if "\n" not in match.group(0) and _NOT_AN_END.fullmatch(last_word):
                continue  # "1." of a list, "e.g." — the sentence goes on
            self._start = match.end()
            if sentence:
                out.append(self._take(sentence))
        if not self.stopped and len(self.raw) - self._start > MAX_SENTENCE_CHARS:
            return "".join(out) + self._stop("runs on without finishing a sentence")
        return "".join(out)

    def close(self) -> str:
        """Generation ended: check the unfinished last sentence and release what passes."""
        out = ""
        if not self.stopped:
            tail = self.raw[self._start :].strip()
            self._start = len(self.raw)
            if tail:
                out += self._take(tail)
        while self._held and _opens(self._held[-1]):
            self._held.pop()  # a lead-in whose list never came
        if self._held and self._ready():
            out += self._release()
        if not self.shown and self.reason is None:
            self.reason = self.checker.whole(" ".join(self._held), self.question) or "nothing was supported"
        self.stopped = True
        return out

    @property
    def text(self) -> str:
        return self.shown

    # ---- internals ----------------------------------------------------------------------
    def _stop(self, reason: str) -> str:
        self.stopped = True
        self.reason = self.reason or reason
        return ""

    def _loops(self) -> bool:
        words = self.raw.lower().split()
        if len(words) >= 12:
            grams = Counter(tuple(words[i : i + 4]) for i in range(len(words) - 3))
            if grams.most_common(1)[0][1] >= 3:
                return True
        if is_cjk(self.raw) and len(self.raw) >= 24:
            text = re.sub(r"\s+", "", self.raw)
            pieces = Counter(text[i : i + 6] for i in range(len(text) - 5))
            if pieces.most_common(1)[0][1] >= 3:
                return True
        return False

    def _take(self, sentence: str) -> str:
        key = " ".join(CITATION.sub("", sentence).lower().split())
        if key in self._seen:
            return self._stop("repeats a sentence")
        self._seen.add(key)
        if _META.search(sentence) or _HEADER_COPY.search(sentence):
            return self._stop("copies the prompt instead of answering")
        claims = [self.checker.claim(part, self.evidence) for part in answer_sentences(sentence)]
        failed = next((c for c in claims if not c.ok), None)
        if failed is not None:
            return self._stop(failed.reason or "unsupported sentence")
        substantive = [c for c in claims if not c.filler]
        if not substantive:
            return ""
        claim = substantive[0]
        number = claim.unit.passage + 1 if claim.unit is not None else 1
        if number not in self.cited:
            self.cited.append(number)
        shown = _PREAMBLE.sub("", CITATION.sub("", sentence)).strip() or sentence  # not "The answer is: …"
        shown = shown[:1].upper() + shown[1:]
        self._held.append(_with_marker(shown, self.cited.index(number) + 1))
        self.accepted += 1
        released = self._release() if self._ready() else ""
        if self.accepted >= MAX_SENTENCES:
            self._stop("long enough")
        return released

    def _ready(self) -> bool:
        """Whether the held sentences may be shown: the first text must pass the whole-answer
        checks; later, a lead-in ("…these steps:") waits for what it introduces."""
        if self.shown:
            return not _opens(self._held[-1])
        return self.checker.whole(" ".join(self._held), self.question) is None

    def _release(self) -> str:
        out = ""
        for sentence in self._held:
            joiner = "" if not self.shown and not out else ("" if is_cjk(sentence) else " ")
            out += joiner + sentence
        self._held.clear()
        self.shown += out
        return out


def _opens(sentence: str) -> bool:
    """A lead-in ("You can use the following steps:") that only makes sense with what follows."""
    return CITATION.sub("", sentence).rstrip().endswith((":", "："))


def _with_marker(sentence: str, number: int) -> str:
    """"… of delivery." → "… of delivery [1]." (the citation of this sentence's evidence)."""
    sentence = re.sub(r"\s+([.!?。！？])", r"\1", sentence.strip())
    space = "" if is_cjk(sentence) else " "
    match = _END_MARK.search(sentence)
    if match:
        return f"{sentence[: match.start()].rstrip()}{space}[{number}]{match.group(1)}"
    return f"{sentence}{space}[{number}]"
