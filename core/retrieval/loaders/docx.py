"""Word documents → Markdown (python-docx): heading styles become headings, tables pipe tables.

The body is walked in document order (paragraphs and tables interleaved, as the reader sees
them). Word's "Heading N" and "Title" styles carry the structure the chunker needs for
passage titles; list styles become list items, so each step stays one evidence line.
Pictures inside a .docx have no public address, so none is kept as an answer image.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from core.retrieval.loaders import Document, UnusableFile

DOCX_SUFFIXES = (".docx",)

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _table(table) -> list[str]:
    """A Word table as a pipe table (the first row is the header), merged cells once."""
    rows: list[list[str]] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a horizontally merged cell repeats: keep it once
                continue
            previous = cell._tc
            cells.append(_cell(cell.text))
        if any(cells):
            rows.append(cells)
    if not rows:
        return []
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return ["", *lines, ""]


def _paragraph(paragraph) -> tuple[str, str | None]:
    """(Markdown line, title) for one paragraph; title set for the "Title" style."""
    text = " ".join(paragraph.text.split())
    if not text:
        return "", None
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if style.lower() == "title":
        return f"# {text}", text
    heading = _HEADING_STYLE.match(style)
    if heading:
        return "#" * min(max(int(heading.group(1)), 1), 6) + f" {text}", None
    if style.lower().startswith("list number"):
        return f"1. {text}", None
    if style.lower().startswith("list"):
        return f"- {text}", None
    return text, None


_LIST_LINE = re.compile(r"^(?:\d+\. |- )")


def _is_list_style(paragraph) -> bool:
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    return style.lower().startswith("list")


def load_docx(path: Path) -> list[Document]:
    """A .docx → one document; the title is the "Title" paragraph, else the document's core title."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    if path.stat().st_size == 0:
        raise UnusableFile("empty file")
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnusableFile(f"not a readable Word .docx ({exc}); save it again as .docx") from None
    lines: list[str] = []
    title: str | None = None
    number = 0  # consecutive "List Number" paragraphs are one numbered list
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines += _table(block)
            number = 0
        elif isinstance(block, Paragraph):
            line, found = _paragraph(block)
            title = title or found
            if not line:
                continue
            is_item = line.startswith(("1. ", "- ")) and _is_list_style(block)
            if is_item and line.startswith("1. "):
                number += 1
                line = f"{number}. {line[3:]}"
            elif not is_item:
                number = 0
            if is_item and lines and lines[-1] == "" and len(lines) > 1 and _LIST_LINE.match(lines[-2]):
                lines.pop()  # items of one list stay together
            lines += [line, ""]
    body = "\n".join(lines).strip()
    if not body:
        raise UnusableFile("no text in the document")
    core_title = (document.core_properties.title or "").strip()
    return [Document(body=body, title=title or core_title or None)]
