"""Split Markdown and plain text into passages along headings and paragraphs.

Passages stay under a size bound so each fits the generator's prompt next to others,
and neighbouring passages of one section share a small overlap so a fact cut at a
boundary is still whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# A line that is a unit of its own: a list item, or a finished "Label: value" line, which is
# how the loader writes a table row ("Column: value; Column: value.").
_LINE_UNIT = re.compile(r"^\s*(?:[-*+•]\s|\d{1,9}[.)]\s)|^[^:\n]{1,80}:\s\S.*[.!?。！？]$")
# Sentence ends for English and Chinese text.
# A sentence ends at . ! ? before a space, unless the next word starts in lower case ("rename it
# with a . at the beginning", "e.g. a file"): such a stop is inside the sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?![a-z])|(?<=[。！？])\s*")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of one document with the headings above it."""

    headings: tuple[str, ...]
    text: str


def _meta_value(value: Any) -> str | None:
    """A front-matter value as text: lists (tags, aliases) join with ", "; mappings are ignored."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set)):
        items = [_meta_value(v) for v in value]
        return ", ".join(i for i in items if i)
    if isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _simple_front_matter(lines: list[str]) -> dict[str, str]:
    """``key: value`` lines: the fallback when the block is not valid YAML."""
    meta: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t", "-")):
            meta[key.strip().lower()] = value.strip().strip("'\"")
    return meta


def _yaml_front_matter(lines: list[str]) -> dict[str, str] | None:
    """The block read as YAML (quoted values, lists, ``aliases:``/``tags:``); None if it is not a mapping."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        return None
    try:
        data = yaml.safe_load("\n".join(lines))
    except yaml.YAMLError:
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        return None
    raw = _simple_front_matter(lines)
    meta: dict[str, str] = {}
    for key, value in data.items():
        name = str(key).strip().lower()
        if not isinstance(value, (str, list, tuple, set, dict)) and raw.get(name):
            # YAML would turn "title: No" into false and "version: 1.10" into 1.1: keep what was written.
            meta[name] = raw[name]
            continue
        text = _meta_value(value)
        if key is not None and text is not None:
            meta[name] = text
    return meta


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Read a leading ``---`` block (title, url, tags, aliases, …) as YAML, else as ``key: value`` lines.

    Malformed YAML never fails the file: the simple line parse still finds ``title:``/``url:``.
    Values are strings (lists joined with ", ") because passages store metadata as text.
    """
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines()
    if lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            block = lines[1:end]
            meta = _yaml_front_matter(block)
            if meta is None:
                meta = _simple_front_matter(block)
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


def _units(paragraph: str) -> list[tuple[str, bool]]:
    """Sentences of prose, but list items and table rows whole, each flagged as a line unit.

    A table row or list item is one statement; cutting it at a sentence end inside a cell, or
    gluing two rows into one sentence, would make it unreadable on its own.
    """
    units: list[tuple[str, bool]] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            units.extend((s, False) for s in split_sentences("\n".join(prose)))
            prose.clear()

    for line in paragraph.split("\n"):
        if _LINE_UNIT.match(line):
            flush()
            units.append((line.rstrip(), True))
        else:
            prose.append(line)
    flush()
    return units


def _hard_cut(text: str, limit: int) -> list[str]:
    out = []
    while len(text) > limit:
        out.append(text[:limit])
        text = text[limit:]
    return [*out, text] if text else out


def _pieces(paragraph: str, limit: int) -> list[str]:
    """A paragraph small enough, or its sentences (hard-cut only if one sentence is huge).

    Consecutive table rows / list items are packed into multi-line pieces up to ``limit``, so a
    huge table is split between rows, never inside one, and its rows stay on separate lines.
    """
    if len(paragraph) <= limit:
        return [paragraph]
    out: list[str] = []
    lines: list[str] = []
    for unit, is_line in _units(paragraph):
        if is_line and len(unit) > limit:  # a huge row or item: its sentences, as for prose
            if lines:
                out.append("\n".join(lines))
                lines = []
            out.extend(p for sentence in split_sentences(unit) for p in _hard_cut(sentence, limit))
            continue
        if is_line:
            if lines and len("\n".join([*lines, unit])) > limit:
                out.append("\n".join(lines))
                lines = []
            lines.append(unit)
            continue
        if lines:
            out.append("\n".join(lines))
            lines = []
        out.extend(_hard_cut(unit, limit))
    if lines:
        out.append("\n".join(lines))
    return out


def _tail(text: str, overlap: int) -> str:
    """The last whole sentences (or table rows / list items) of ``text`` within ``overlap`` characters."""
    if overlap <= 0:
        return ""
    tail = ""
    tail_is_line = False
    for unit, is_line in reversed([u for para in text.split("\n\n") for u in _units(para)]):
        joiner = "\n" if is_line or tail_is_line else " "
        candidate = f"{unit}{joiner}{tail}".strip() if tail else unit.strip()
        if len(candidate) > overlap:
            break
        tail, tail_is_line = candidate, is_line
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
                # A lead-in ("Automatically empty your trash and clear temporary files:") goes with
                # the list it introduces, not at the end of the chunk before it.
                lead = buffer.pop() if len(buffer) > 1 and buffer[-1].rstrip().endswith((":", "：")) else None
                text = "\n\n".join(buffer)
                chunks.append(Chunk(headings, text))
                carry = lead if lead is not None else _tail(text, overlap)
                buffer = [carry] if carry and (lead is not None or len(carry) + len(piece) + 2 <= max_chars) else []
                if buffer and _LINE_UNIT.match(carry.rsplit("\n", 1)[-1]) and _LINE_UNIT.match(piece.split("\n", 1)[0]):
                    # Rows carried over continue the same table (or list): one block, no paragraph break.
                    piece, buffer = f"{carry}\n{piece}", []
                size = sum(len(b) + 2 for b in buffer)
            buffer.append(piece)
            size += len(piece) + 2
        if buffer:
            chunks.append(Chunk(headings, "\n\n".join(buffer)))
    return chunks
