"""Plain-text rendering of answers for the terminal."""

from __future__ import annotations

from core.language import detect_language, phrase
from core.messages import Answer


def format_sources(answer: Answer, language: str = "en") -> str:
    if not answer.citations:
        return ""
    lines = [f"{phrase('sources', language)}:"]
    for c in answer.citations:
        where = c.url or c.source
        lines.append(f"  [{c.number}] {c.label} — {where}")
    return "\n".join(lines)


def format_answer(answer: Answer, question: str = "") -> str:
    sources = format_sources(answer, detect_language(question or answer.text))
    return f"{answer.text}\n\n{sources}" if sources else answer.text
