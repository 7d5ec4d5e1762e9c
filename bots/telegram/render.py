"""Answers as Telegram HTML: the model's Markdown subset converted, everything else escaped.

Why HTML and not MarkdownV2: HTML needs only ``<``, ``>`` and ``&`` escaped, so knowledge-base
text full of ``*``, ``_``, ``.`` or ``!`` passes through untouched, and a converter that
escapes every piece of text it does not turn into a tag cannot produce invalid markup.

Long answers are split on the *source* text (``bots.text.split_text``) and each piece is
converted on its own, so no piece is ever cut inside a tag; each converted piece is then
checked against Telegram's limit and split finer if escaping made it too long.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from bots.streaming import first_piece, stable_prefix
from bots.text import split_text
from core.language import phrase
from core.messages import Answer

#: Telegram's maximum message length (counted in UTF-16 code units).
MESSAGE_LIMIT = 4096

_FENCE = "```"
_FENCE_LINE = re.compile(r"^\s*```\s*([\w+#.-]*)\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+•]\s+(.*)$")
_SAFE_URL = re.compile(r"^(https?://|mailto:|tg://)[^\s<>\"]+$", re.IGNORECASE)

# Inline constructs, tried left to right; whatever none of them matches is escaped text.
_INLINE = re.compile(
    r"(?P<code>`(?P<code_text>[^`\n]+)`)"
    r"|(?P<link>\[(?P<link_text>[^\]\n]+)\]\((?P<link_url>[^)\s]+)\))"
    r"|(?P<bold>\*\*(?=\S)(?P<bold_text>.+?)(?<=\S)\*\*)"
    r"|(?P<ubold>(?<!\w)__(?=\S)(?P<ubold_text>.+?)(?<=\S)__(?!\w))"
    r"|(?P<italic>(?<![\w*])\*(?=[^\s*])(?P<italic_text>[^*\n]+?)(?<=[^\s*])\*(?![\w*]))"
    r"|(?P<uitalic>(?<![\w_])_(?=[^\s_])(?P<uitalic_text>[^_\n]+?)(?<=[^\s_])_(?![\w_]))"
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One Telegram message: its HTML, and the plain text to send if Telegram rejects the HTML."""

    html: str
    plain: str


def telegram_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Text escaped for Telegram HTML: only ``&``, ``<`` and ``>`` are special."""
    return html.escape(text, quote=False)


def _link(text: str, url: str) -> str:
    url = html.unescape(url)
    if not _SAFE_URL.match(url):
        return escape(f"[{text}]({url})")
    return f'<a href="{html.escape(url, quote=True)}">{escape(text)}</a>'


def inline_to_html(text: str) -> str:
    """Convert one line's inline Markdown (code, links, bold, italic); escape the rest."""
    out: list[str] = []
    pos = 0
    for m in _INLINE.finditer(text):
        out.append(escape(text[pos : m.start()]))
        kind = m.lastgroup
        if m.group("code") is not None:
            out.append(f"<code>{escape(m.group('code_text'))}</code>")
        elif m.group("link") is not None:
            out.append(_link(m.group("link_text"), m.group("link_url")))
        elif m.group("bold") is not None or m.group("ubold") is not None:
            inner = m.group("bold_text") if m.group("bold") is not None else m.group("ubold_text")
            out.append(f"<b>{inline_to_html(inner)}</b>")
        elif m.group("italic") is not None or m.group("uitalic") is not None:
            inner = m.group("italic_text") if m.group("italic") is not None else m.group("uitalic_text")
            out.append(f"<i>{inline_to_html(inner)}</i>")
        else:  # pragma: no cover - every alternative is handled above
            out.append(escape(m.group(kind or 0)))
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """Convert the Markdown subset small models write (bold, italic, links, lists, code,
    headings) to Telegram HTML. Unclosed code fences are closed at the end of the text,
    so a half-streamed answer renders as valid HTML too."""
    lines_out: list[str] = []
    code: list[str] | None = None
    language = ""
    for line in text.split("\n"):
        fence = _FENCE_LINE.match(line)
        if code is not None:
            if fence and not fence.group(1):
                lines_out.append(_pre(code, language))
                code = None
            else:
                code.append(line)
            continue
        if fence:
            code, language = [], fence.group(1)
            continue
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        if heading:
            lines_out.append(f"<b>{inline_to_html(heading.group(1))}</b>")
        elif bullet:
            lines_out.append(f"{bullet.group(1)}• {inline_to_html(bullet.group(2))}")
        else:
            lines_out.append(inline_to_html(line))
    if code is not None:
        lines_out.append(_pre(code, language))
    return "\n".join(lines_out)


def _pre(lines: list[str], language: str) -> str:
    body = escape("\n".join(lines))
    if language and re.fullmatch(r"[\w+#-]+", language):
        return f'<pre><code class="language-{language}">{body}</code></pre>'
    return f"<pre>{body}</pre>"


def _balance_fences(pieces: list[str]) -> list[str]:
    """A code block cut by splitting is closed in one piece and reopened in the next."""
    out: list[str] = []
    reopen = False
    for piece in pieces:
        if reopen:
            piece = f"{_FENCE}\n{piece}"
        reopen = sum(1 for line in piece.split("\n") if _FENCE_LINE.match(line)) % 2 == 1
        if reopen:
            piece = f"{piece}\n{_FENCE}"
        out.append(piece)
    return out


def split_markdown(text: str, limit: int = MESSAGE_LIMIT, source_limit: int | None = None) -> list[Chunk]:
    """Split source text so each converted piece fits ``limit``; never splits inside a tag."""
    source_limit = source_limit or limit
    chunks: list[Chunk] = []
    for piece in _balance_fences(split_text(text, source_limit)):
        converted = markdown_to_html(piece)
        size = telegram_length(converted)
        if size <= limit:
            chunks.append(Chunk(converted, piece))
        elif source_limit > 64:
            # Escaping (&amp; …) made it longer: split this piece finer, in proportion.
            finer = max(64, min(source_limit - 1, len(piece) * limit // size - 16))
            chunks.extend(split_markdown(piece, limit, finer))
        else:  # pragma: no cover - 64 source characters always fit after escaping
            raise ValueError("cannot fit text into a Telegram message")
    return chunks


def _link_list(label: str, items: list[tuple[str, str, str | None]]) -> Chunk:
    """A bold label, then one line per (marker, title, url): a link when the URL is safe."""
    html_lines = [f"<b>{escape(label)}</b>"]
    plain_lines = [f"{label}:"]
    for marker, title, url in items:
        if url and _SAFE_URL.match(url):
            html_lines.append(f'{marker} <a href="{html.escape(url, quote=True)}">{escape(title)}</a>')
            plain_lines.append(f"{marker} {title} — {url}")
        else:
            html_lines.append(f"{marker} {escape(title)}")
            plain_lines.append(f"{marker} {title}")
    return Chunk("\n".join(html_lines), "\n".join(plain_lines))


def sources(answer: Answer, language: str) -> Chunk | None:
    """The answer's citations as a numbered list of links (titles escaped).

    Two passages of one article are one line ("[1, 2] Title"), not the same link twice."""
    if not answer.citations:
        return None
    grouped: dict[tuple[str, str | None], list[int]] = {}
    for c in answer.citations:
        grouped.setdefault((c.label, c.url), []).append(c.number)
    items = [("[" + ", ".join(str(n) for n in numbers) + "]", title, url) for (title, url), numbers in grouped.items()]
    return _link_list(phrase("sources", language), items)


def related(answer: Answer, language: str) -> Chunk | None:
    """Articles the core found relevant but did not cite, as links under "Related articles"."""
    if not answer.related:
        return None
    return _link_list(phrase("related", language), [("•", c.label, c.url) for c in answer.related])


def render_answer(answer: Answer, language: str, limit: int = MESSAGE_LIMIT) -> list[Chunk]:
    """The final answer as one or more messages; sources, then related articles, go with the
    last piece when they fit (else in a message of their own)."""
    chunks = split_markdown(answer.text, limit) or [Chunk(escape(answer.text) or "…", answer.text or "…")]
    for extra in (sources(answer, language), related(answer, language)):
        if extra is None:
            continue
        last = chunks[-1]
        joined = Chunk(f"{last.html}\n\n{extra.html}", f"{last.plain}\n\n{extra.plain}")
        if telegram_length(joined.html) <= limit:
            chunks[-1] = joined
        else:
            chunks.append(extra)
    return chunks


def visible_text(html_text: str) -> str:
    """What Telegram shows for ``html_text``: tags dropped, entities unescaped."""
    return html.unescape(re.sub(r"<[^>]*>", "", html_text))


def _visible_markdown(text: str) -> str:
    return visible_text(markdown_to_html(text))


def render_partial(text: str, limit: int = MESSAGE_LIMIT) -> Chunk:
    """A preview of a half-written answer: the part of its first message that cannot change.

    No cursor or other marker: everything a preview shows is the start of what the final message
    shows (:func:`render_answer`). Text the final split would put into a later message, and a tail
    whose formatting is still open (``**bold``, a half link, a heading or fence being written),
    wait for the next edit. The chunk is empty when nothing is certain yet."""
    source = stable_prefix(first_piece(text, limit), _visible_markdown)
    if not source:
        return Chunk("", "")
    pieces = split_markdown(source, limit)
    return pieces[0] if pieces else Chunk("", "")
