"""Text helpers the platform adapters share."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def _cut(text: str, limit: int) -> int:
    """Best position ≤ limit to split: paragraph, then line, sentence, word, else hard."""
    window = text[:limit]
    for sep in ("\n\n", "\n"):
        pos = window.rfind(sep)
        if pos > limit // 3:
            return pos
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] > limit // 3:
        return ends[-1]
    pos = window.rfind(" ")
    return pos if pos > limit // 3 else limit


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters at natural boundaries."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut(rest, limit)
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces
