"""The one rule for how much conversation goes with an escalation.

Agents need the latest turns, readable: each line is shortened on its own (a pasted log does
not push out everything else), then lines are dropped from the oldest end until the whole
fits, with "…" saying that something was left out. Applied once, when the escalation is
opened, so every platform posts the same transcript.
"""

from __future__ import annotations

#: Characters of transcript kept with an escalation (fits a Slack section and a Telegram message).
TRANSCRIPT_LIMIT = 2500
#: Characters per transcript line.
TRANSCRIPT_LINE_LIMIT = 300
ELLIPSIS = "…"


def clip_line(text: str, limit: int) -> str:
    """One line, whitespace collapsed, cut at ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def clip_transcript(text: str, limit: int = TRANSCRIPT_LIMIT, line_limit: int = TRANSCRIPT_LINE_LIMIT) -> str:
    """``text`` with lines shortened and the oldest lines dropped until it fits in ``limit``."""
    lines = [clip_line(line, line_limit) for line in text.splitlines() if line.strip()]
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > limit:
            kept.append(ELLIPSIS)
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(reversed(kept))
