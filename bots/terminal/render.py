"""Plain-text rendering of answers for the terminal."""

from __future__ import annotations

from core.language import phrase
from core.messages import Answer


def answer_text(answer: Answer) -> str:
    """The terminal has no support team to hand over to: say so honestly, with the KB's contacts.

    A silent answer (an audience outside every scope, ``unknown: ignore``) shows nothing.
    """
    if answer.silent:
        return ""
    if not answer.handoff:
        return answer.text
    unavailable = phrase("handoff_unavailable", answer.language)
    return f"{unavailable}\n\n{answer.contact}" if answer.contact else unavailable


def format_sources(answer: Answer) -> str:
    lines = []
    if answer.citations:
        lines.append(f"{phrase('sources', answer.language)}:")
        lines += [f"  [{c.number}] {c.label} — {c.url or c.source}" for c in answer.citations]
    if answer.related:
        lines.append(f"{phrase('related', answer.language)}:")
        lines += [f"  - {c.label} — {c.url or c.source}" for c in answer.related]
    return "\n".join(lines)


def format_answer(answer: Answer) -> str:
    sources = format_sources(answer)
    text = answer_text(answer)
    return f"{text}\n\n{sources}" if sources else text
