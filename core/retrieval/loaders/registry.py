"""Which reader takes which file: by suffix, then by the export layout the file shows.

``.html`` may be a saved page, a Confluence export page or a Notion HTML page; the layout
decides, because each keeps its article in a different place. Markdown, text and CSV stay
with :mod:`core.retrieval.loader` (they need the knowledge-base folder for embeds).
"""

from __future__ import annotations

from pathlib import Path

from core.retrieval.loaders import Document
from core.retrieval.loaders.articles import JSON_SUFFIXES, load_articles_json
from core.retrieval.loaders.confluence import is_confluence_export, load_confluence
from core.retrieval.loaders.docx import DOCX_SUFFIXES, load_docx
from core.retrieval.loaders.html import HTML_SUFFIXES, load_html, read_html
from core.retrieval.loaders.notion import is_notion_html, load_notion_html
from core.retrieval.loaders.pdf import PDF_SUFFIXES, load_pdf

DOCUMENT_SUFFIXES = frozenset(HTML_SUFFIXES + PDF_SUFFIXES + DOCX_SUFFIXES + JSON_SUFFIXES)


def read_documents(path: Path, url: str | None = None) -> list[Document]:
    """The documents in one file; raises :class:`~core.retrieval.loaders.UnusableFile` with the reason."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return load_pdf(path)
    if suffix in DOCX_SUFFIXES:
        return load_docx(path)
    if suffix in JSON_SUFFIXES:
        return load_articles_json(path)
    html = read_html(path)
    if is_confluence_export(html):
        return load_confluence(path, html)
    if is_notion_html(html):
        return load_notion_html(path)
    return load_html(path, url, html)
