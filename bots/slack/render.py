"""Answer → Slack mrkdwn: Markdown conversion, escaping, sources as links, message splitting.

The model writes ordinary Markdown; Slack's mrkdwn differs (``*bold*``, ``<url|text>``,
no headings) and treats ``&``, ``<`` and ``>`` as control characters, so every piece of
model or user text is escaped before it is sent. Escaping also means an answer can
never ping ``<!channel>`` or a user, whatever the model writes.
"""

from __future__ import annotations

import re

from bots.streaming import first_piece, stable_prefix
from bots.text import split_text
from core.language import phrase
from core.messages import Answer

#: Slack shows up to 4,000 characters of a message's text and 3,000 in a section block;
#: 3,000 keeps every piece valid either way.
DEFAULT_LIMIT = 3000
#: What a message with no text shows (an empty answer). Streaming previews carry no such marker,
#: and no placeholder is posted before the first words: what a user sees is never taken back.
PLACEHOLDER = "…"

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^>\s]+)>")
_SAFE_URL = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?=\S)")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_TOKEN = re.compile(r"\x00(\d+)\x00")
_BOLD_MARK = "\x01"
_NOBREAK = "\x02"  # stands for a space inside <…> while splitting, so a link is never cut


def escape(text: str) -> str:
    """Escape the three characters Slack reserves for its own markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_url(url: str) -> str:
    return url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C").replace(" ", "%20")


def link(url: str | None, label: str) -> str:
    """``<url|label>`` for web and mail links; anything else (e.g. ``!channel``) stays plain text."""
    if url and _SAFE_URL.match(url):
        return f"<{_escape_url(url)}|{escape(label)}>"
    return escape(f"{label} ({url})" if url else label)


def _inline(text: str) -> str:
    """Emphasis on one already-escaped line: **b**/__b__ → *b*, *i* → _i_, ~~s~~ → ~s~."""
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    return text.replace(_BOLD_MARK, "*")


def to_mrkdwn(markdown: str) -> str:
    """Convert the model's Markdown into Slack mrkdwn, escaping everything that is not markup."""
    tokens: list[str] = []

    def keep(rendered: str) -> str:
        tokens.append(rendered)
        return f"\x00{len(tokens) - 1}\x00"

    # Code first: nothing inside it is converted, only escaped. An unclosed fence
    # (a partial answer while streaming) runs to the end.
    text = _FENCE.sub(lambda m: keep(f"```\n{escape(m.group(1).strip(chr(10)))}\n```"), markdown)
    text = _INLINE_CODE.sub(lambda m: keep(f"`{escape(m.group(1))}`"), text)
    text = _MD_LINK.sub(lambda m: keep(link(m.group(2), _inline(escape(m.group(1))))), text)
    text = _AUTOLINK.sub(lambda m: keep(f"<{_escape_url(m.group(1))}>"), text)

    lines = []
    for line in text.split("\n"):
        quote = _QUOTE.match(line)
        prefix = ""
        if quote:
            prefix, line = ">", quote.group(1)  # Slack needs a literal '>' to start a quote
        heading = _HEADING.match(line)
        if heading:
            title = heading.group(1).replace("**", "").replace("__", "")
            line = f"*{escape(title)}*" if title else ""
        else:
            line = _BULLET.sub(r"\1• ", line)
            line = _inline(escape(line))
        lines.append(prefix + line)
    text = "\n".join(lines)
    # Tokens may contain other tokens (a link label with inline code); resolve until stable.
    while _TOKEN.search(text):
        text = _TOKEN.sub(lambda m: tokens[int(m.group(1))], text)
    return text


def format_sources(answer: Answer, language: str = "en") -> str:
    """The answer's citations as a mrkdwn list of links (the title, else the source file)."""
    if not answer.citations:
        return ""
    lines = [f"*{escape(phrase('sources', language))}*"]
    for c in answer.citations:
        marker = f"[{c.number}] " if c.number else "• "
        lines.append(marker + link(c.url, c.label) if c.url else marker + escape(c.label))
    return "\n".join(lines)


def _protect_links(text: str) -> str:
    return re.sub(r"<[^<>\n]*>", lambda m: m.group(0).replace(" ", _NOBREAK), text)


def split_mrkdwn(text: str, limit: int = DEFAULT_LIMIT) -> list[str]:
    """Split at natural boundaries into pieces ≤ ``limit``; never inside a link, fences re-balanced."""
    margin = 8  # room for closing and reopening a code fence
    pieces = [p.replace(_NOBREAK, " ") for p in split_text(_protect_links(text), max(limit - margin, 1))]
    balanced: list[str] = []
    carry_fence = False
    for piece in pieces:
        if carry_fence:
            piece = "```\n" + piece
        carry_fence = piece.count("```") % 2 == 1
        if carry_fence:
            piece += "\n```"
        balanced.append(piece)
    return balanced


def render_answer(answer: Answer, language: str = "en", limit: int = DEFAULT_LIMIT) -> list[str]:
    """The final answer as one or more messages: converted text, then its sources."""
    body = to_mrkdwn(answer.text.strip())
    sources = format_sources(answer, language)
    full = f"{body}\n\n{sources}" if body and sources else body or sources
    return split_mrkdwn(full, limit) or [PLACEHOLDER]


def render_partial(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """What a streaming message shows: the part of the answer's first message that cannot change.

    No trailing ellipsis or other marker: the preview is always the start of the final message's
    text (:func:`render_answer`), so nothing a user sees is taken back. A tail whose mrkdwn could
    still change (``**bold`` not yet closed, a half link, a heading or code fence being written)
    and text the final split would move to a later message wait for the next edit. Empty while
    nothing is certain yet."""
    shown = to_mrkdwn(stable_prefix(text, lambda source: to_mrkdwn(source.strip())))
    margin = 8  # as split_mrkdwn: room for closing and reopening a code fence
    shown = first_piece(_protect_links(shown), max(limit - margin, 1)).replace(_NOBREAK, " ")
    if shown.count("```") % 2 == 1:  # a code block the final split closes: wait for the rest
        shown = shown[: shown.rfind("```")].rstrip()
    return shown


def to_plain(mrkdwn: str) -> str:
    """Slack message text → plain text for the model's context: links, mentions and escapes undone."""
    text = re.sub(r"<(?:https?://|mailto:)[^|>]*\|([^>]*)>", r"\1", mrkdwn)
    text = re.sub(r"<((?:https?://|mailto:)[^>]*)>", r"\1", text)
    text = re.sub(r"<[@#!][^>]*>", "", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", text).strip()
