"""Turn the Markdown dialects people write knowledge bases in into plain prose plus clean tables.

Retrieval, answer selection and rendering should never see raw markup: ``**`` inflates
lexical matches, ``[[Note|alias]]`` is not what a reader sees, and a pipe table is
unreadable once cut out of context. So at indexing time a Markdown body is rewritten into
what its reader would see:

* GitHub Markdown: emphasis, code spans, links, images, autolinks, HTML comments, pipe
  tables (each row becomes one ``Column: value; Column: value.`` line), blockquotes;
* Obsidian: wikilinks, ``![[embeds]]`` (resolved against the knowledge-base folder),
  ``^block-id`` markers, ``%%comments%%`` and ``> [!note]`` callouts.

What carries structure the rest of the pipeline relies on is kept: ATX headings (the
chunker turns them into the heading path), list markers at line starts (evidence units are
lines) and fenced code blocks, which stay verbatim.

Images are not prose, but the answer may want to point at them: their sources are kept as
invisible markers in :attr:`Normalised.text` so the loader can tell which passage each one
belongs to (:func:`take_images`) after chunking.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MARKDOWN_SUFFIXES = (".md", ".markdown")
MAX_EMBED_DEPTH = 3

# Private-use characters: they never occur in real text, so placeholders cannot collide.
_CODE_OPEN, _CODE_CLOSE = "\ue000", "\ue001"
_ESC_OPEN, _ESC_CLOSE = "\ue002", "\ue003"
_IMG_OPEN, _IMG_CLOSE = "\ue010", "\ue011"
_DROP = "\ue020"  # marks text removed from a line, so a line left with only this goes entirely

_IMAGE_MARKER = re.compile(f"{_IMG_OPEN}(\\d+){_IMG_CLOSE}")
_BROKEN_MARKER = re.compile(f"{_IMG_OPEN}\\d*|\\d*{_IMG_CLOSE}")

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_LIST_ITEM = re.compile(r"^(\s*(?:[-*+]|\d{1,9}[.)])\s+)(.*)$")
_TASK = re.compile(r"^\[([ xX])\]\s+")
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_CALLOUT = re.compile(r"^\[!([A-Za-z][\w-]*)\]([+-]?)\s*(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
# "[ref]: https://…" link definitions; only URL-like targets, so "[Step 1]: open the app" stays.
_REF_DEFINITION = re.compile(
    r"^\s{0,3}\[(?!\^)[^\]]+\]:\s+<?(?:[a-z][a-z0-9+.-]*:|/|\.|#)\S*>?(?:\s+[\"'(].*[\"')])?\s*$", re.IGNORECASE
)

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_OBSIDIAN_COMMENT = re.compile(r"%%.*?%%", re.DOTALL)
_BLOCK_ID_END = re.compile(r"\s+\^([A-Za-z0-9][A-Za-z0-9-]*)\s*$")
_BLOCK_ID_LINE = re.compile(r"^\s*\^([A-Za-z0-9][A-Za-z0-9-]*)\s*$")

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_EMBED = re.compile(r"!\[\[([^\[\]]+?)\]\]")
_WIKILINK = re.compile(r"\[\[([^\[\]]+?)\]\]")
_URL = r"(?:[^()\s<>]|\([^()\s]*\))+"  # one level of parentheses: wiki/Foo_(bar)
_IMAGE = re.compile(rf"!\[([^\]]*)\]\(\s*<?({_URL})>?(?:\s+[\"'(][^)]*[\"')])?\s*\)")
_IMAGE_REF = re.compile(r"!\[([^\]]*)\]\[[^\]]*\]")
_LINK = re.compile(rf"\[([^\[\]]*)\]\(\s*<?(?:{_URL})?>?(?:\s+[\"'(][^)]*[\"')])?\s*\)")
_LINK_REF = re.compile(r"\[([^\[\]]+)\]\[[^\[\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^\s<>]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)>")
_HTML_TAG = re.compile(
    r"</?(?:kbd|b|i|u|em|strong|span|sup|sub|mark|small|abbr|code|details|summary|div|p|font|ins|del|s)"
    r"(?:\s[^<>]*)?>",
    re.IGNORECASE,
)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_STRONG_STAR = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_STRONG_UNDERSCORE = re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_EM_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_EM_UNDERSCORE = re.compile(r"(?<![\w])_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)")
_HIGHLIGHT = re.compile(r"==(?=\S)(.+?)(?<=\S)==")

_CALLOUT_NAMES = {"faq": "FAQ", "todo": "To do", "tldr": "TL;DR"}
_END_MARK = (".", "!", "?", "。", "！", "？", ":")


@dataclass(slots=True)
class Normalised:
    """A normalised body: prose with invisible image markers, and the image sources they index."""

    text: str
    images: list[str] = field(default_factory=list)

    @property
    def plain(self) -> str:
        """The text without image markers."""
        return take_images(self.text, self.images)[0]


def take_images(text: str, images: list[str]) -> tuple[str, list[str]]:
    """Remove image markers from ``text`` (a chunk of :attr:`Normalised.text`), returning their sources.

    Lines left empty by the removal go, so an image on its own line leaves no gap.
    """
    found: list[str] = []

    def take(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n < len(images) and images[n] not in found:
            found.append(images[n])
        return ""

    lines = []
    for orig in text.split("\n"):
        line = _BROKEN_MARKER.sub("", _IMAGE_MARKER.sub(take, orig))
        if line == orig:
            lines.append(line)
        elif line.strip():  # a marker went: close the gap it leaves, keep the indent
            indent = orig[: len(orig) - len(orig.lstrip())]
            lines.append(indent + re.sub(r"\s+([.,;:!?])", r"\1", " ".join(line.split())))
    return _squeeze_blank_lines("\n".join(lines)).strip(), found


def _squeeze_blank_lines(text: str) -> str:
    """At most one blank line in a row and no trailing spaces, except inside fenced code (verbatim)."""
    out: list[str] = []
    for line, in_code in _lines_with_code_state(text.split("\n")):
        if in_code:
            out.append(line)
        elif line.strip() or (out and out[-1]):
            out.append(line.rstrip())
        elif not out:
            continue
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# The knowledge-base folder, for embeds


class Vault:
    """Markdown notes under a knowledge-base folder, found by name the way Obsidian finds them.

    ``![[Note]]`` names a file by its stem (case-insensitive, ``.md`` optional) anywhere in the
    folder, or by a relative path; the first in sorted path order wins when names repeat.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root).resolve() if root is not None else None
        self._by_name: dict[str, Path] | None = None
        self._bodies: dict[Path, str] = {}

    def _index(self) -> dict[str, Path]:
        if self._by_name is None:
            self._by_name = {}
            if self.root is not None and self.root.is_dir():
                for path in sorted(self.root.rglob("*")):
                    rel = path.relative_to(self.root)
                    if not path.is_file() or any(part.startswith(".") for part in rel.parts):
                        continue
                    keys = [rel.as_posix().lower(), path.name.lower()]
                    if path.suffix.lower() in MARKDOWN_SUFFIXES:
                        keys += [rel.with_suffix("").as_posix().lower(), path.stem.lower()]
                    for key in keys:
                        self._by_name.setdefault(key, path)
        return self._by_name

    def find(self, name: str) -> Path | None:
        """The note called ``name`` (``Note``, ``Note.md``, ``folder/Note``), or None."""
        key = name.strip().replace("\\", "/").lstrip("/").lower()
        return self._index().get(key) if key else None

    def body(self, path: Path) -> str:
        """The note's text without front matter (read once per build)."""
        if path not in self._bodies:
            from core.retrieval.chunking import parse_front_matter

            text = path.read_bytes().decode("utf-8-sig", errors="replace")
            self._bodies[path] = parse_front_matter(text)[1]
        return self._bodies[path]


# --------------------------------------------------------------------------------------------
# Embeds: resolved on the raw Markdown, before anything else, so embedded text is normalised
# exactly like the note's own.


# Files an embed shows rather than inlines. Anything else is a note: "Release 1.2" is a name, not a file type.
ATTACHMENT_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .svg .webp .bmp .avif .tif .tiff .ico .heic .pdf"
    " .mp3 .wav .ogg .m4a .flac .mp4 .webm .mov .mkv .canvas .excalidraw".split()
)


def _is_markdown_target(name: str) -> bool:
    """Whether ``![[name]]`` embeds a note (inlined) rather than an attachment (collected as an image)."""
    return Path(name.split("#", 1)[0].strip()).suffix.lower() not in ATTACHMENT_SUFFIXES


def _section(body: str, heading: str) -> str | None:
    """From the heading named ``heading`` to the next heading of the same or a higher level."""
    wanted = _clean_inline(heading).strip().lower()
    lines = body.splitlines()
    start = level = None
    for n, (line, in_code) in enumerate(_lines_with_code_state(lines)):
        match = None if in_code else _HEADING.match(line)
        if not match:
            continue
        if start is None:
            if _clean_inline(match.group(2)).strip().lower() == wanted:
                start, level = n + 1, len(match.group(1))
        elif len(match.group(1)) <= level:
            return "\n".join(lines[start:n])
    return "\n".join(lines[start:]) if start is not None else None


def _block(body: str, block_id: str) -> str | None:
    """The paragraph or list item that carries ``^block_id`` (or the block just above a lone ``^id``)."""
    lines = body.splitlines()
    for n, line in enumerate(lines):
        end = _BLOCK_ID_END.search(line)
        lone = _BLOCK_ID_LINE.match(line)
        if not ((end and end.group(1) == block_id) or (lone and lone.group(1) == block_id)):
            continue
        if lone:
            last = n - 1
            while last >= 0 and not lines[last].strip():
                last -= 1
            if last < 0:
                return None
        else:
            last = n
            if _LIST_ITEM.match(line):
                return _BLOCK_ID_END.sub("", line).rstrip()
        first = last
        while first > 0 and lines[first - 1].strip() and not _HEADING.match(lines[first - 1]):
            first -= 1
        block = lines[first : last + 1]
        return "\n".join(_BLOCK_ID_END.sub("", b) for b in block).rstrip()
    return None


def _demote_headings(text: str) -> str:
    """Headings inside embedded text become plain lines, so they do not reshape the host's heading path."""
    out = []
    for line, in_code in _lines_with_code_state(text.splitlines()):
        match = None if in_code else _HEADING.match(line)
        if match:
            out += ["", match.group(2), ""]
        else:
            out.append(line)
    return "\n".join(out)


def _embedded_text(target: str, vault: Vault, stack: tuple[tuple[Path, str], ...]) -> str:
    """The Markdown that ``![[target]]`` stands for, with its own embeds resolved ('' when unusable)."""
    name, _, anchor = target.partition("#")
    path = vault.find(name) if name.strip() else (stack[-1][0] if stack else None)
    where = stack[-1][0].name if stack else "note"
    if path is None:
        log.warning("%s: embedded note %r not found; embed dropped", where, target)
        return ""
    key = (path, anchor.strip().lower())
    if key in stack:
        chain = " → ".join(p.name for p, _ in stack)
        log.warning("%s: embed of %r would loop (%s); embed dropped", where, target, chain)
        return ""
    if len(stack) > MAX_EMBED_DEPTH:
        log.warning("%s: embeds nested deeper than %d; %r dropped", where, MAX_EMBED_DEPTH, target)
        return ""
    try:
        body = vault.body(path)
    except OSError as exc:
        log.warning("%s: embedded note %r unreadable (%s); embed dropped", where, target, exc)
        return ""
    anchor = anchor.strip()
    if anchor.startswith("^"):
        part = _block(body, anchor[1:])
    elif anchor:
        part = _section(body, anchor.split("#")[-1])
    else:
        part = body
    if part is None:
        kind = "block" if anchor.startswith("^") else "section"
        log.warning("%s: %r has no %s; embed dropped", where, target, kind)
        return ""
    return _demote_headings(resolve_embeds(part, vault, (*stack, key)))


def _one_line(text: str) -> str:
    """Embedded Markdown flattened into running text: one line, no list markers."""
    return " ".join(" ".join(_LIST_ITEM.sub(r"\2", line).split()) for line in text.splitlines() if line.strip())


def resolve_embeds(body: str, vault: Vault | None, stack: tuple[tuple[Path, str], ...] = ()) -> str:
    """Replace ``![[Note]]``, ``![[Note#Heading]]`` and ``![[Note#^block]]`` with what they embed.

    A whole-line embed (optionally inside a blockquote) becomes the embedded lines; an embed in
    running text becomes the embedded text on one line. Embeds of non-Markdown files are images
    and are left for the inline pass to collect. Missing targets, cycles and nesting deeper
    than :data:`MAX_EMBED_DEPTH` are dropped with a warning. ``stack`` holds the (note, anchor)
    pairs being expanded: a note may embed its own sections, but nothing may embed itself.
    """
    out: list[str] = []
    for line, in_code in _lines_with_code_state(body.splitlines()):
        if in_code or "![[" not in line:
            out.append(line)
            continue

        def replace(match: re.Match[str]) -> str:
            target = match.group(1).split("|", 1)[0].strip()
            if not _is_markdown_target(target):
                return match.group(0)
            if vault is None:
                log.warning("embed %r cannot be resolved without a knowledge-base folder; dropped", target)
                return ""
            return _embedded_text(target, vault, stack)

        quote = _QUOTE.match(line)
        prefix = ""
        rest = line
        while quote:
            prefix += quote.group(0)
            rest = rest[quote.end() :]
            quote = _QUOTE.match(rest)
        alone = _EMBED.fullmatch(rest.strip())
        if alone and _is_markdown_target(alone.group(1).split("|", 1)[0]):
            text = replace(alone)
            if prefix:
                quoted = prefix.rstrip()
                out += [f"{quoted} {t}".rstrip() if t.strip() else quoted for t in text.splitlines()]
            else:
                out += ["", *text.splitlines(), ""]
            continue
        out.append(_EMBED.sub(lambda m: _one_line(replace(m)), line))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Inline markup


def _wikilink_text(inner: str) -> str:
    """What a reader sees for ``[[inner]]``: the alias, else ``Note › Section``, else the note name."""
    target, bar, alias = inner.partition("|")
    if bar and alias.strip():
        return alias.strip()
    name, _, anchor = target.partition("#")
    name = name.strip().replace("\\", "/").rsplit("/", 1)[-1]
    if name.lower().endswith(MARKDOWN_SUFFIXES):
        name = name.rsplit(".", 1)[0]
    parts = [p.strip() for p in anchor.split("#") if p.strip() and not p.strip().startswith("^")]
    section = parts[-1] if parts else ""
    if name and section:
        return f"{name} › {section}"
    return name or section


def _protect(
    text: str, store: list[str], pattern: re.Pattern[str], value: Callable[[re.Match[str]], str], mark: tuple[str, str]
) -> str:
    """Swap what ``pattern`` matches for numbered placeholders, so later passes cannot touch it."""

    def keep(match: re.Match[str]) -> str:
        store.append(value(match))
        return f"{mark[0]}{len(store) - 1}{mark[1]}"

    return pattern.sub(keep, text)


def _restore(text: str, store: list[str], mark: tuple[str, str]) -> str:
    return re.sub(f"{mark[0]}(\\d+){mark[1]}", lambda m: store[int(m.group(1))], text)


def _image_marker(src: str, images: list[str]) -> str:
    src = src.strip()
    if not src:
        return ""
    if src not in images:
        images.append(src)
    return f"{_IMG_OPEN}{images.index(src)}{_IMG_CLOSE}"


_ANY_IMAGE = re.compile(f"{_EMBED.pattern}|{_IMAGE.pattern}")


def _image(match: re.Match[str], images: list[str]) -> str:
    """``![[file.png]]`` or ``![alt](src)`` → a marker (images in order of appearance); a note embed left → ''."""
    if match.group(1) is not None:
        target = match.group(1).split("|", 1)[0]
        return "" if _is_markdown_target(target) else _image_marker(target, images)
    return _image_marker(match.group(3), images)


def _clean_inline(text: str, images: list[str] | None = None) -> str:
    """Inline Markdown → the text a reader sees. Code spans keep their text verbatim, minus backticks."""
    images = images if images is not None else []
    codes: list[str] = []
    escapes: list[str] = []
    text = _protect(text, codes, _CODE_SPAN, lambda m: m.group(2).strip() or m.group(2), (_CODE_OPEN, _CODE_CLOSE))
    text = _protect(text, escapes, _ESCAPE, lambda m: m.group(1), (_ESC_OPEN, _ESC_CLOSE))
    text = _ANY_IMAGE.sub(lambda m: _image(m, images), text)
    text = _IMAGE_REF.sub("", text)
    text = _WIKILINK.sub(lambda m: _wikilink_text(m.group(1)), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _LINK_REF.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: m.group(1), text)
    text = _BR.sub(" ", text)
    text = _HTML_TAG.sub("", text)
    for pattern in (_STRONG_STAR, _STRONG_UNDERSCORE, _EM_STAR, _EM_UNDERSCORE, _HIGHLIGHT):
        previous = None
        while previous != text:  # nested emphasis: ***x***, **a *b* c**
            previous, text = text, pattern.sub(lambda m: m.group(1), text)
    text = _BLOCK_ID_END.sub("", text)
    text = _restore(text, escapes, (_ESC_OPEN, _ESC_CLOSE))
    return _restore(text, codes, (_CODE_OPEN, _CODE_CLOSE))


# --------------------------------------------------------------------------------------------
# Blocks


def _lines_with_code_state(lines: list[str]) -> Iterator[tuple[str, bool]]:
    """Each line with whether it belongs to a fenced code block (fence lines included)."""
    fence: str | None = None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            yield line, True
        elif fence is not None:
            closing = match.group(1) if match else ""
            if closing[:1] == fence[0] and len(closing) >= len(fence) and not line.strip()[len(closing) :].strip():
                fence = None
            yield line, True
        else:
            yield line, False


def _split_cells(line: str) -> list[str]:
    """Cells of a pipe-table row; ``\\|`` is a literal pipe inside a cell."""
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", row)]


def _is_table_line(line: str) -> bool:
    return "|" in line.replace("\\|", "") and bool(line.strip())


def _table_rows(lines: list[str], images: list[str]) -> list[str]:
    """A pipe table → one ``Header: value; Header: value.`` line per data row.

    The first row is the header even without a separator row under it; when every header cell is
    empty (key/value tables), a row reads ``First cell: second cell; third.``. Empty cells are skipped;
    ``;`` inside a value becomes ``,`` so ``; `` always separates cells. Images in cells are kept
    as markers after the row, so the row text stays clean.
    """
    rows = [_split_cells(line) for line in lines if not _TABLE_RULE.match(line)]
    if not rows:
        return []
    header = [_clean_inline(h, images).strip().rstrip(":") for h in rows[0]]
    out = []
    for cells in rows[1:]:
        if not any(_IMAGE_MARKER.sub("", h) for h in header):  # an empty header row: label: rest
            cells = [c for c in cells if _clean_inline(c, images).strip()]
            if len(cells) > 1:
                label = " ".join(_IMAGE_MARKER.sub("", _clean_inline(cells[0], images)).split()).rstrip(":")
                cells = [f"{label}: {_clean_inline(cells[1], images)}", *cells[2:]]
        parts, markers = [], []
        for n, cell in enumerate(cells):
            value = _clean_inline(cell, images)
            markers += _IMAGE_MARKER.findall(value)
            value = " ".join(_IMAGE_MARKER.sub("", value).replace(";", ",").split())
            if not value:
                continue
            name = _IMAGE_MARKER.sub("", header[n]).strip() if n < len(header) else ""
            parts.append(f"{name}: {value}" if name else value)
        if not parts:
            continue
        row = "; ".join(parts)
        if not row.endswith(_END_MARK):
            row += "."
        out.append(row + "".join(f"{_IMG_OPEN}{m}{_IMG_CLOSE}" for m in markers))
    return out


def _callout_lines(first: str, content: list[str], images: list[str]) -> list[str]:
    """``> [!tip]- Title`` + content → ``Tip: Title`` then the content as ordinary Markdown."""
    match = _CALLOUT.match(first.strip())
    assert match is not None
    kind = match.group(1).lower()
    label = _CALLOUT_NAMES.get(kind, kind.replace("-", " ").capitalize())
    title = _clean_inline(match.group(3), images).strip()
    body = _blocks(content, images)
    if title:
        return [f"{label}: {title}", *body]
    while body and not body[0].strip():
        body.pop(0)
    if body and not _LIST_ITEM.match(body[0]) and not _HEADING.match(body[0]) and not _is_table_row_text(body[0]):
        return [f"{label}: {body[0].lstrip()}", *body[1:]]
    return [f"{label}:", *body]


def _is_table_row_text(line: str) -> bool:
    """Whether ``line`` reads like a table row written by :func:`_table_rows`."""
    return bool(re.match(r"^[^:;\n]{1,60}:\s[^;\n]*(?:;\s[^:;\n]{1,60}:\s[^;\n]*)+$", line))


def _quote(lines: list[str], start: int) -> tuple[list[str], int]:
    """The lines of the blockquote starting at ``start``, one ``>`` level removed; and where it ends."""
    inner = []
    n = start
    while n < len(lines) and _QUOTE.match(lines[n]):
        inner.append(lines[n][_QUOTE.match(lines[n]).end() :])
        n += 1
    return inner, n


def _plain_line(line: str, images: list[str]) -> str:
    """One prose, list or heading line with its inline markup removed; list markers stay."""
    heading = _HEADING.match(line)
    if heading:
        return f"{heading.group(1)} {_clean_inline(heading.group(2), images).strip()}"
    item = _LIST_ITEM.match(line)
    if item:
        rest = item.group(2)
        task = _TASK.match(rest)
        if task:
            rest = rest[task.end() :] + (" (done)" if task.group(1).lower() == "x" else "")
        return item.group(1) + _clean_inline(rest, images)
    return _clean_inline(line, images).rstrip()


def _blocks(lines: list[str], images: list[str]) -> list[str]:
    """Block-level pass over lines outside code fences (quotes and callouts recurse)."""
    out: list[str] = []
    n = 0
    while n < len(lines):
        line = lines[n]
        if _QUOTE.match(line):
            inner, n = _quote(lines, n)
            if inner and _CALLOUT.match(inner[0].strip()):
                out += _callout_lines(inner[0], inner[1:], images)
            else:
                out += _blocks(inner, images)
            continue
        following = lines[n + 1] if n + 1 < len(lines) else ""
        end: int | None = None
        if _is_table_line(line) and "|" in following and "-" in following and _TABLE_RULE.match(following):
            end = n + 2
        elif line.lstrip().startswith("|") and _is_table_line(line) and following.lstrip().startswith("|"):
            end = n + 1  # no separator row: the first row is the header anyway
        if end is not None:
            while end < len(lines) and _is_table_line(lines[end]) and not _QUOTE.match(lines[end]):
                end += 1
            out += _table_rows(lines[n:end], images)
            n = end
            continue
        if _REF_DEFINITION.match(line) or _BLOCK_ID_LINE.match(line):
            n += 1
            continue
        setext = _SETEXT.match(lines[n + 1]) if n + 1 < len(lines) else None
        if setext and line.strip() and not _LIST_ITEM.match(line) and not _HEADING.match(line) and not _RULE.match(line):
            level = "#" if setext.group(1)[0] == "=" else "##"
            out.append(f"{level} {_clean_inline(line.strip(), images).strip()}")
            n += 2
            continue
        if _RULE.match(line):
            out.append("")
            n += 1
            continue
        end = n + 1
        while end < len(lines) and _is_prose(lines, end) and _is_prose(lines, n):
            end += 1
        out += _clean_paragraph(lines[n:end], images) if end > n + 1 else [_plain_line(line, images)]
        n = end
    return out


_SOFT_BREAK = "\ue030"


def _is_prose(lines: list[str], n: int) -> bool:
    """Whether line ``n`` is plain paragraph text (no block construct starts there)."""
    line = lines[n]
    if not line.strip() or _QUOTE.match(line) or _HEADING.match(line) or _LIST_ITEM.match(line) or _RULE.match(line):
        return False
    if _is_table_line(line) or _REF_DEFINITION.match(line) or _BLOCK_ID_LINE.match(line):
        return False
    return not (n + 1 < len(lines) and _SETEXT.match(lines[n + 1]))


def _clean_paragraph(lines: list[str], images: list[str]) -> list[str]:
    """Consecutive prose lines cleaned together: emphasis and links may span a soft line break."""
    joined = _SOFT_BREAK.join(_BLOCK_ID_END.sub("", line) for line in lines)
    return [line.rstrip() for line in _clean_inline(joined, images).split(_SOFT_BREAK)]


def _remove(pattern: re.Pattern[str], text: str) -> str:
    """Replace matches with a drop mark, so a line that held only them can go entirely."""
    return pattern.sub(_DROP, text)


def _drop_marked_lines(text: str) -> str:
    """Lines that held only removed text disappear; elsewhere the marks just go."""
    lines = []
    for line in text.split("\n"):
        if _DROP not in line:
            lines.append(line)
        elif line.replace(_DROP, "").strip():
            indent = line[: len(line) - len(line.lstrip())].replace(_DROP, "")
            lines.append(indent + re.sub(f"[ \t]*(?:{_DROP}[ \t]*)+", " ", line.lstrip()).strip())
    return "\n".join(lines)


def _segments(body: str) -> list[tuple[bool, list[str]]]:
    """The body as alternating runs of (is_code, lines)."""
    segments: list[tuple[bool, list[str]]] = []
    for line, in_code in _lines_with_code_state(body.splitlines()):
        if segments and segments[-1][0] == in_code:
            segments[-1][1].append(line)
        else:
            segments.append((in_code, [line]))
    return segments


def _strip_comments(text: str, patterns: tuple[re.Pattern[str], ...]) -> str:
    """Remove comments (possibly multi-line); a line that was only a comment leaves no blank line."""
    for pattern in patterns:
        text = _remove(pattern, text)
    if "<!--" in text:  # never closed: drop the marker, keep the text rather than lose the rest
        log.warning("unclosed HTML comment; its opening marker dropped")
        text = text.replace("<!--", _DROP)
    return _drop_marked_lines(text)


def normalise_markdown(body: str, vault: Vault | None = None, source: Path | None = None) -> Normalised:
    """A Markdown body (front matter already removed) → plain prose, clean table rows, headings kept.

    ``vault`` resolves ``![[embeds]]``; ``source`` is the note's own path, so it cannot embed itself.
    """
    images: list[str] = []
    body = resolve_embeds(body, vault, ((Path(source).resolve(), ""),) if source else ())
    out: list[str] = []
    for is_code, lines in _segments(body):
        if is_code:
            out += lines
            continue
        text = _strip_comments("\n".join(lines), (_HTML_COMMENT, _OBSIDIAN_COMMENT))
        out += _blocks(text.split("\n"), images)
    return Normalised(_squeeze_blank_lines("\n".join(out)).strip("\n"), images)


def normalise_plain_text(body: str) -> Normalised:
    """A ``.txt`` body: only HTML comments and trailing whitespace go; everything else is literal."""
    text = _strip_comments(body, (_HTML_COMMENT,))
    return Normalised(_squeeze_blank_lines(text).strip("\n"), [])
