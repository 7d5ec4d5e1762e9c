"""Statements ("units"): the sentences, list items and table rows of a passage.

They are how the knowledge base is split below the passage, so they live with chunking: the
rebuild command embeds every one of them once (:mod:`core.retrieval.statements`). Both the
grounding check and the composed answer work on these units instead of whole passages. A claim is only as good as the one sentence (or table row) that states it, so
the check binds each answer sentence to one unit, and the composer answers with units.
Each unit keeps its heading path, because a list item such as "International Standard:
6-10 business days, flat $19.99" only says *where* it applies in the heading above it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.language import is_cjk
from core.retrieval.chunking import split_sentences
from core.retrieval.passages import Passage

UnitKind = Literal["sentence", "item", "step", "row"]

_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)、])\s+")
_NUMBERED_ITEM = re.compile(r"^\s*\d{1,2}[.)、]\s+")
# "Column: value; Column: value." — how the loader writes a Markdown table row.
_ROW = re.compile(r"^[^:;\n]{1,60}:\s[^;\n]*(?:;\s[^:;\n]{1,60}:\s[^;\n]*)+$")
_PIPE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_PIPE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")
_INLINE_MARKUP = re.compile(r"\*\*|__|`")


@dataclass(frozen=True, slots=True)
class Unit:
    """One statement of a passage, with what it needs to be understood alone."""

    passage: int  # index into the passages it was taken from
    position: int  # order within that passage
    text: str  # the statement, without list marker or markup
    context: str  # the passage's title and headings
    kind: UnitKind
    block: int  # consecutive list items / table rows share a block number
    line: int = 0  # the passage line it comes from: the sentences of one list item share it

    @property
    def full(self) -> str:
        """Context and statement: what is embedded and matched."""
        return f"{self.context}: {self.text}" if self.context else self.text


def clean(text: str) -> str:
    """Text as a reader should see it: no list marker, no emphasis or code markup."""
    return " ".join(_INLINE_MARKUP.sub("", _ITEM.sub("", text)).split())


def _pipe_cells(line: str) -> list[str]:
    return [clean(c) for c in line.strip().strip("|").split("|")]


def passage_units(passage: Passage, index: int = 0) -> list[Unit]:
    """The passage's statements in order; raw pipe tables (old indexes) become row units too."""
    context = " > ".join(h for h in (passage.title, *passage.headings) if h)
    units: list[Unit] = []
    block = 0
    previous: str | None = None
    header: list[str] | None = None
    for number, raw in enumerate(passage.text.splitlines()):
        line = raw.strip()
        if not line:
            previous, header = None, None
            continue
        if raw[:1].isspace() and previous in ("item", "step") and units and not _ITEM.match(line):
            # An indented line continues the list item above it ("2. Click … \n   Click the pointer …").
            last = units[-1]
            units[-1] = Unit(last.passage, last.position, f"{last.text} {clean(line)}", last.context, last.kind, last.block, last.line)
            continue
        if _PIPE_ROW.match(line):
            if _PIPE_RULE.match(line):
                continue
            cells = _pipe_cells(line)
            if header is None:
                header = cells
                continue
            line = "; ".join(f"{h}: {c}" for h, c in zip(header, cells) if c and h) + "."
            kind: UnitKind = "row"
        elif _ROW.match(clean(line)):
            kind = "row"
        elif _NUMBERED_ITEM.match(line):
            kind = "step"
        elif _ITEM.match(line):
            kind = "item"
        else:
            kind = "sentence"
        if kind != previous or kind == "sentence":
            block += 1
        previous = kind
        # A table row, and a numbered step with two sentences, are one unit each.
        pieces = [clean(line)] if kind in ("row", "step") else [clean(s) for s in split_sentences(clean(line))]
        for piece in pieces:
            if len(piece) > 2:
                units.append(Unit(index, len(units), piece, context, kind, block, number))
    return units


def all_units(passages: Sequence[Passage]) -> list[Unit]:
    return [u for i, p in enumerate(passages) for u in passage_units(p, i)]
