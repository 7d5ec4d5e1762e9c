"""HTML pages → Markdown of their main content (trafilatura), fragments → Markdown (markdownify).

A help-centre page is mostly not the article: navigation, breadcrumbs, "related" boxes,
cookie banners and footers would otherwise be indexed on every page and match every
question. trafilatura finds the main content (it keeps headings, lists, tables and images,
resolving image sources against the page URL); it was chosen over readability-lxml after
trying both on real documentation pages, where readability emptied headings that hold a link.

Fragments that are already just the article (a Confluence ``main-content`` div, the ``body``
of a Zendesk or Intercom article) have no boilerplate to remove: markdownify converts them as
they are, so a short article is never dropped as "too little content".
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

from core.retrieval.loaders import Document, UnusableFile

HTML_SUFFIXES = (".html", ".htm")

_CANONICAL = re.compile(r"<link\b[^>]*\brel=[\"']?canonical[\"']?[^>]*>", re.IGNORECASE)
_OG_URL = re.compile(r"<meta\b[^>]*\bproperty=[\"']og:url[\"'][^>]*>", re.IGNORECASE)
_HREF = re.compile(r"\b(?:href|content)=[\"']([^\"']+)[\"']", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?\s*\)")


def read_html(path: Path) -> str:
    raw = path.read_bytes()
    if not raw.strip():
        raise UnusableFile("empty file")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")


def page_url(html: str) -> str | None:
    """The page's own public address: ``<link rel=canonical>``, else ``og:url`` (absolute only)."""
    for pattern in (_CANONICAL, _OG_URL):
        tag = pattern.search(html)
        if tag:
            href = _HREF.search(tag.group(0))
            if href and href.group(1).startswith(("http://", "https://")):
                return unescape(href.group(1).strip())
    return None


def _title_tag(html: str) -> str | None:
    match = _TITLE.search(html)
    if not match:
        return None
    text = " ".join(unescape(_TAG.sub("", match.group(1))).split())
    # "Article | Site name" / "Article - Site": the article part.
    return re.split(r"\s+[|–—-]\s+", text)[0].strip() or None


def absolute_images(markdown: str, base: str | None) -> str:
    """Relative image sources made absolute against ``base`` (left as they are without one)."""
    if not base:
        return markdown
    return _IMAGE.sub(lambda m: f"![{m.group(1)}]({urljoin(base, m.group(2))})", markdown)


_TABLE_TOKEN = "askdesktable{}x"
_TABLE_TOKEN_LINE = re.compile(r"^.*askdesktable(\d+)x.*$", re.MULTILINE)


# Site chrome that is never the article: menus, breadcrumbs, the site header and footer, sidebars,
# cookie banners. Dropped before main-content extraction because trafilatura, on a page whose
# article is short (a two-sentence help answer, a topic page that only lists articles), falls
# back to taking the whole body, menus included. Headers, footers, sidebars and cookie boxes
# inside the <article>/<main> stay (a header there often holds the H1), and so does a header
# that holds the page's H1.
_OUTSIDE_ARTICLE = ("not(ancestor::article) and not(ancestor::main) and not(ancestor::*[@role='main'])"
                    " and not(.//article) and not(.//main) and not(.//*[@role='main'])")  # nor wrapping it
_CHROME = " | ".join((
    "//nav", "//*[@role='navigation']",
    f"//header[{_OUTSIDE_ARTICLE} and not(.//h1)]", f"//*[@role='banner'][{_OUTSIDE_ARTICLE} and not(.//h1)]",
    f"//footer[{_OUTSIDE_ARTICLE}]", f"//*[@role='contentinfo'][{_OUTSIDE_ARTICLE}]",
    "//aside[not(ancestor::article) and not(.//article) and not(.//main)]",
    f"//*[(contains(translate(@id, 'COKIE', 'cokie'), 'cookie') or contains(translate(@class, 'COKIE', 'cokie'), 'cookie'))"
    f" and {_OUTSIDE_ARTICLE} and not(.//h1) and not(self::body) and not(self::html)]",
))


def _drop_chrome(tree) -> None:
    for element in tree.xpath(_CHROME):
        if element.getparent() is not None:
            element.drop_tree()


_HEADINGS = "h1 h2 h3 h4 h5 h6".split()
LINK_LIST_SHARE = 0.8  # of the words outside headings that are link text: a page of links


def is_link_list(html: str) -> bool:
    """Whether the page's content, without its site chrome, is only a list of links.

    A help centre's home page and its topic or category pages list articles by title: indexed,
    such a page matches every question about its topic (its text is those titles) and ranks
    above the article that answers, yet it answers nothing. It counts as a list of links when
    it has links and link text makes up ``LINK_LIST_SHARE`` of its words outside
    headings; a short article that points to another ("To reset it, see Passwords.") does not.
    """
    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(html)
    except (etree.ParserError, ValueError):
        return False
    _drop_chrome(tree)
    for element in tree.xpath("//script | //style | //noscript | //template | //head"):
        if element.getparent() is not None:
            element.drop_tree()
    main = next(iter(tree.xpath("//main | //*[@role='main'] | //article")), tree)

    def words(element) -> int:
        return len(element.text_content().split())

    headings = [h for h in main.iter(*_HEADINGS)]
    links = [a for a in main.iter("a") if not any(h in headings for h in a.iterancestors(*_HEADINGS))]
    body = words(main) - sum(words(h) for h in headings)
    return bool(links) and body > 0 and sum(words(a) for a in links) >= LINK_LIST_SHARE * body


def _prepare(html: str) -> tuple[str, list[str]]:
    """The page without its site chrome, each ``<table>`` replaced by a token paragraph, and its Markdown.

    trafilatura turns a table whose header row is empty (key/value tables, common in help
    pages) into one whose first data row is the header, so every row would read
    "Alt+F1: Super+L; …". markdownify keeps the empty header, which the Markdown normaliser
    reads as "Key: value" rows. The token survives main-content extraction exactly when the
    table is part of the article, so tables in menus and footers still go.
    """
    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(html)
    except (etree.ParserError, ValueError):
        return html, []
    _drop_chrome(tree)
    tables: list[str] = []
    for table in tree.xpath("//table[not(ancestor::table)]"):
        tables.append(fragment_to_markdown(lxml_html.tostring(table, encoding="unicode")))
        token = lxml_html.fromstring(f"<p>{_TABLE_TOKEN.format(len(tables) - 1)}</p>")
        token.tail = table.tail
        table.getparent().replace(table, token)
    return lxml_html.tostring(tree, encoding="unicode"), tables


def page_to_markdown(html: str, url: str | None = None) -> str:
    """The main content of a whole page as Markdown ('' when the page has none)."""
    import trafilatura

    html, tables = _prepare(html)
    text = trafilatura.extract(
        html, url=url, output_format="markdown", include_tables=True, include_images=True,
        include_links=False, include_comments=False, deduplicate=False,
    ) or ""
    if tables:
        text = _TABLE_TOKEN_LINE.sub(lambda m: f"\n{tables[int(m.group(1))].strip()}\n"
                                     if int(m.group(1)) < len(tables) else "", text)
    return absolute_images(text, url)


def fragment_to_markdown(html: str, base_url: str | None = None) -> str:
    """An HTML fragment that is all article (no boilerplate) as Markdown with ATX headings."""
    from markdownify import markdownify

    markdown = markdownify(html, heading_style="ATX", bullets="-", strip=["script", "style"],
                           keep_inline_images_in=["td", "th", "li", "a"])
    return absolute_images(markdown, base_url)


def load_html(path: Path, url: str | None = None, html: str | None = None) -> list[Document]:
    """A saved web page (or a crawled one, whose ``url`` the crawler knows) → one document."""
    html = html if html is not None else read_html(path)
    url = url or page_url(html)
    body = page_to_markdown(html, url)
    if not body.strip():
        raise UnusableFile("no article text found in the page (only navigation or scripts?)")
    if is_link_list(html):
        raise UnusableFile("only a list of links (a home, topic or category page), no article text")
    heading = next((line[2:].strip() for line in body.splitlines() if line.startswith("# ")), None)
    return [Document(body=body, title=heading or _title_tag(html), url=url)]
