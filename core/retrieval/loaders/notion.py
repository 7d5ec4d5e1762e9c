"""Notion exports (Markdown & CSV or HTML): ids out of titles, property lines out of the text.

Notion names every exported page ``Title <32 hex id>.md`` (or ``.html``), and puts its child
pages and attachments in a folder of the same name: ``Billing 1a2b…/Refunds 3c4d….md``,
``Billing 1a2b…/Untitled.png``. The id is noise in a title and in citations, so it goes. A
Markdown page starts with ``# Title`` and then the page's properties as ``Key: value`` lines
(Created, Last edited time, Tags, …); tags are kept as passage metadata, the others dropped
(they would otherwise make every page match "when was this created"). Image sources are
relative and URL-encoded (``Billing%201a2b…/Untitled.png``): they name a file in the
export, which has no public address, so they are kept as metadata but never sent with an answer.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.retrieval.loaders import Document, UnusableFile
from core.retrieval.loaders.html import fragment_to_markdown, read_html

NOTION_NAME = re.compile(r"^(?P<title>.+?)\s+(?P<id>[0-9a-f]{32})$", re.IGNORECASE)
_PROPERTY = re.compile(r"^(?P<key>[A-Z][\w ()/-]{0,40}):\s+(?P<value>\S.*)$")
KEPT_PROPERTIES = {"tags": "tags", "tag": "tags", "aliases": "aliases", "url": "url"}


def notion_title(path: Path) -> str | None:
    """The page title in a Notion export file name (``Refunds 3c4d….md`` → ``Refunds``), else None."""
    match = NOTION_NAME.match(path.stem)
    return match.group("title").strip() if match else None


def is_notion_export(path: Path) -> bool:
    return notion_title(path) is not None


def clean_notion_path(text: str) -> str:
    """``Billing 1a2b…/Refunds 3c4d….md`` → ``Billing/Refunds.md`` (for readable names only)."""
    return re.sub(r"\s+[0-9a-f]{32}(?=/|\.|$)", "", text, flags=re.IGNORECASE)


def _split_properties(body: str) -> tuple[str, dict[str, str]]:
    """Property lines under the H1 taken out of the body; kept ones returned as metadata."""
    lines = body.splitlines()
    start = next((n + 1 for n, line in enumerate(lines) if line.startswith("# ")), 0)
    n = start
    while n < len(lines) and not lines[n].strip():
        n += 1
    kept: dict[str, str] = {}
    end = n
    while end < len(lines) and _PROPERTY.match(lines[end]):
        match = _PROPERTY.match(lines[end])
        assert match is not None
        key = KEPT_PROPERTIES.get(match.group("key").strip().lower())
        if key:
            kept[key] = match.group("value").strip()
        end += 1
    if end == n or (end < len(lines) and lines[end].strip()):
        return body, {}  # no property block (or prose that happens to start "Note: …")
    return "\n".join(lines[:start] + lines[end:]), kept


def load_notion_markdown(path: Path, text: str) -> list[Document]:
    """A Notion Markdown page: title from the name (id removed), properties out, image paths decoded."""
    body, kept = _split_properties(text)
    url = kept.pop("url", None)
    if not body.strip():
        raise UnusableFile("empty Notion page")
    return [Document(body=body, title=notion_title(path), url=url if url and url.startswith("http") else None,
                     extra=kept)]


def load_notion_html(path: Path) -> list[Document]:
    """A Notion HTML page: ``<div class="page-body">`` is the article, ``h1.page-title`` its title."""
    from lxml import html as lxml_html

    tree = lxml_html.fromstring(read_html(path))
    bodies = tree.xpath('//div[contains(concat(" ", normalize-space(@class), " "), " page-body ")]')
    if not bodies:
        raise UnusableFile("Notion HTML page without a page body")
    heading = tree.xpath('//h1[contains(@class, "page-title")]')
    title = " ".join(heading[0].text_content().split()) if heading else notion_title(path)
    body = fragment_to_markdown(lxml_html.tostring(bodies[0], encoding="unicode"))
    if not body.strip():
        raise UnusableFile("empty Notion page")
    return [Document(body=body, title=title or notion_title(path))]


def is_notion_html(html: str) -> bool:
    return 'class="page-body"' in html or "class='page-body'" in html
