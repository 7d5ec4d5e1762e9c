"""Split Markdown and plain text into passages along headings and paragraphs.

Passages stay under a size bound so each fits the generator's prompt next to others,
and neighbouring passages of one section share a small overlap so a fact cut at a
boundary is still whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# Sentence ends for English and Chinese text.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of one document with the headings above it."""

    headings: tuple[str, ...]
    text: str


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Read a leading ``---`` block of ``key: value`` lines (title, url, …)."""
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines()
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            meta: dict[str, str] = {}
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    meta[key.strip().lower()] = value.strip().strip("'\"")
            return meta, "\n".join(lines[end + 1 :])
    return {}, text


def split_sentences(text: str) -> list[str]:
    """Split into sentences (English punctuation plus 。！？); keeps each sentence's end mark."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _sections(body: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """Group paragraphs under their heading path."""
    path: list[tuple[int, str]] = []
    sections: list[tuple[tuple[str, ...], list[str]]] = []
    paragraph: list[str] = []
    current: list[str] = []

    def flush_paragraph() -> None:
        if paragraph:
            current.append("\n".join(paragraph).strip())
            paragraph.clear()

    def flush_section() -> None:
        flush_paragraph()
        if any(p for p in current):
            sections.append((tuple(h for _, h in path), [p for p in current if p]))
        current.clear()

    in_code = False
    for line in body.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            flush_section()
            level = len(match.group(1))
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, match.group(2).strip()))
        elif not line.strip() and not in_code:
            flush_paragraph()
        else:
            paragraph.append(line.rstrip())
    flush_section()
    return sections


def _pieces(paragraph: str, limit: int) -> list[str]:
    """A paragraph small enough, or its sentences (hard-cut only if one sentence is huge)."""
    if len(paragraph) <= limit:
        return [paragraph]
    out: list[str] = []
    for sentence in split_sentences(paragraph):
        while len(sentence) > limit:
            out.append(sentence[:limit])
            sentence = sentence[limit:]
        if sentence:
            out.append(sentence)
    return out


def _tail(text: str, overlap: int) -> str:
    """The last whole sentences of ``text`` within ``overlap`` characters."""
    if overlap <= 0:
        return ""
    tail = ""
    for sentence in reversed(split_sentences(text)):
        candidate = f"{sentence} {tail}".strip()
        if len(candidate) > overlap:
            break
        tail = candidate
    return tail


def chunk_text(body: str, max_chars: int = 900, overlap: int = 120) -> list[Chunk]:
    """Chunk a Markdown/text body: one section at a time, paragraphs packed up to ``max_chars``."""
    chunks: list[Chunk] = []
    for headings, paragraphs in _sections(body):
        pieces = [p for para in paragraphs for p in _pieces(para, max_chars)]
        buffer: list[str] = []
        size = 0
        for piece in pieces:
            if buffer and size + len(piece) + 2 > max_chars:
                text = "\n\n".join(buffer)
                chunks.append(Chunk(headings, text))
                carry = _tail(text, overlap)
                buffer = [carry] if carry and len(carry) + len(piece) + 2 <= max_chars else []
                size = sum(len(b) + 2 for b in buffer)
            buffer.append(piece)
            size += len(piece) + 2
        if buffer:
            chunks.append(Chunk(headings, "\n\n".join(buffer)))
    return chunks
