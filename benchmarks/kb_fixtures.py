"""A mixed help centre made from GNOME Help (CC BY-SA 3.0): a website, PDFs, Word files, a Notion export.

Nothing binary is committed: :func:`build_mixed_kb` writes everything at benchmark or test
time from ``benchmarks/data/gnome_help_kb/articles``. The website is what a real help centre
looks like to a crawler: each article inside a header menu, breadcrumbs, a cookie banner, a
"related articles" box and a footer; a ``robots.txt`` with a ``Disallow`` rule and a
``Sitemap``; a sitemap that lists most pages (the rest are found through links); an old
address that redirects; a broken link (404); a printer-friendly duplicate of a page; ETag and
Last-Modified on every page (conditional requests answer 304). :func:`serve_site` serves it
on 127.0.0.1.

The PDFs (fpdf2), Word files (python-docx) and the Notion export (``Title <id>.md`` pages in
same-named folders) hold articles that the website does not, so each labelled question has
exactly one right source. Broken files sit beside them — a scanned PDF without a text layer,
a password-protected PDF, a truncated PDF, an empty .docx, an unknown file type — and the
build must report each with its reason.
"""

from __future__ import annotations

import csv
import hashlib
import html
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from core.retrieval.chunking import parse_front_matter

ARTICLES = Path(__file__).resolve().parent / "data" / "gnome_help_kb" / "articles"
QUESTIONS = Path(__file__).resolve().parent / "data" / "answer_quality" / "gnome_help_in_scope.csv"

PDF_ARTICLES = {"printing-guide.pdf": ["printing-2sided", "printing-cancel-job"], "ink-levels.pdf": ["printing-inklevel"],
                "night-light.pdf": ["display-night-light"]}
DOCX_ARTICLES = {"add-a-user.docx": "user-add", "change-your-password.docx": "user-changepassword"}
NOTION_PARENT = "Files and folders"
NOTION_ARTICLES = ["files-hidden", "files-tilde", "files-recover"]
TOPICS = {
    "a11y": "Accessibility", "backup": "Backups", "bluetooth": "Bluetooth", "clock": "Date & time",
    "display": "Displays", "files": "Files", "keyboard": "Keyboard", "mouse": "Mouse", "net": "Networking",
    "power": "Power", "printing": "Printing", "privacy": "Privacy", "screen": "Screenshots", "shell": "Desktop",
    "sound": "Sound", "tips": "Tips", "user": "User accounts",
}
BAD_FILES = {
    "pdf/scanned-manual.pdf": "no text layer",
    "pdf/protected.pdf": "encrypted",
    "pdf/truncated.pdf": "not a readable PDF",
    "docx/empty.docx": "empty file",
    "archive/old-site.zip": "unsupported file type",
}


@dataclass(frozen=True, slots=True)
class Article:
    slug: str
    title: str
    body: str  # Markdown without front matter

    @property
    def topic(self) -> str:
        return self.slug.split("-", 1)[0]


def articles() -> dict[str, Article]:
    found = {}
    for path in sorted(ARTICLES.glob("*.md")):
        meta, body = parse_front_matter(path.read_text(encoding="utf-8"))
        found[path.stem] = Article(path.stem, meta.get("title") or path.stem, body.strip())
    return found


def site_slugs(all_articles: dict[str, Article]) -> list[str]:
    elsewhere = {s for group in PDF_ARTICLES.values() for s in group} | set(DOCX_ARTICLES.values()) | set(NOTION_ARTICLES)
    return [s for s in all_articles if s not in elsewhere]


# --------------------------------------------------------------------------------------------
# The website


def _markdown_html(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(markdown)


def page_path(article: Article) -> str:
    return f"/{article.topic}/{article.slug}"


def _page(article: Article, related: list[Article], image: bool, printable: bool) -> str:
    menu = " ".join(f'<li><a href="/{t}/">{html.escape(name)}</a></li>' for t, name in TOPICS.items())
    related_links = "".join(f'<li><a href="{page_path(r)}">{html.escape(r.title)}</a></li>' for r in related)
    figure = (f'<figure><img src="/figures/{article.slug}.png" alt="Screenshot: {html.escape(article.title)}">'
              f"<figcaption>{html.escape(article.title)}</figcaption></figure>") if image else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(article.title)} | Desktop Help Center</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/static/site.css">
<script src="/static/analytics.js"></script></head>
<body>
<div id="cookie-consent" class="cookie-banner" role="dialog"><p>We use cookies to remember your preferences and to
measure how our help pages are used. By clicking "Accept all" you agree to the storing of cookies on your device.</p>
<button>Accept all</button> <button>Reject non-essential</button> <a href="/legal/cookies">Cookie settings</a></div>
<header class="site-header"><a class="logo" href="/">Desktop Help Center</a>
<nav class="main-menu" aria-label="Topics"><ul>{menu}</ul></nav>
<form class="search" action="/search"><input name="q" placeholder="Search the help center"></form></header>
<nav class="breadcrumbs" aria-label="Breadcrumb"><a href="/">Help Center</a> › <a href="/{article.topic}/">{html.escape(TOPICS.get(article.topic, article.topic))}</a></nav>
<main id="content"><article class="article">
<h1>{html.escape(article.title)}</h1>
{_markdown_html(article.body)}
{figure}
{f'<p class="article-meta"><a href="/print/{article.slug}">Print this article</a></p>' if printable else ""}
</article>
<aside class="related"><h2>Related articles</h2><ul>{related_links}</ul>
<p>Was this article helpful? <button>Yes</button> <button>No</button></p></aside></main>
<footer class="site-footer"><p>Content adapted from GNOME Help, CC BY-SA 3.0. © Desktop Help Center.</p>
<p><a href="/legal/privacy">Privacy policy</a> · <a href="/legal/terms">Terms of use</a> · <a href="/contact">Contact support</a>
· <a href="/missing-page">Status</a></p></footer>
</body></html>
"""


def _topic_page(topic: str, members: list[Article]) -> str:
    items = "".join(f'<li><a href="{page_path(a)}">{html.escape(a.title)}</a></li>' for a in members)
    return (f"<!DOCTYPE html><html><head><title>{html.escape(TOPICS.get(topic, topic))} | Desktop Help Center</title></head>"
            f'<body><header><a href="/">Desktop Help Center</a></header><main><h1>{html.escape(TOPICS.get(topic, topic))}</h1>'
            f"<ul>{items}</ul></main><footer><p>© Desktop Help Center</p></footer></body></html>")


@dataclass(slots=True)
class Site:
    """Paths → (content type, body), plus redirects; what :func:`serve_site` serves."""

    pages: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    article_paths: dict[str, str] = field(default_factory=dict)  # slug → path
    hits: dict[str, int] = field(default_factory=dict)  # path → requests (tests)
    not_modified: int = 0  # 304 answers (tests)


def build_site(slugs: list[str], all_articles: dict[str, Article] | None = None) -> Site:
    """The help-centre website over ``slugs`` (see the module docstring for its traps)."""
    all_articles = all_articles or articles()
    members = [all_articles[s] for s in slugs]
    site = Site()
    for n, article in enumerate(members):
        related = [members[(n + k) % len(members)] for k in (1, 2, 3) if len(members) > 1]
        body = _page(article, related, image=n % 3 == 0, printable=n == 0).encode("utf-8")
        site.pages[page_path(article)] = ("text/html; charset=utf-8", body)
        site.article_paths[article.slug] = page_path(article)
    by_topic: dict[str, list[Article]] = {}
    for article in members:
        by_topic.setdefault(article.topic, []).append(article)
    for topic, group in by_topic.items():
        site.pages[f"/{topic}/"] = ("text/html; charset=utf-8", _topic_page(topic, group).encode("utf-8"))
    home_links = "".join(f'<li><a href="/{t}/">{html.escape(TOPICS.get(t, t))}</a></li>' for t in by_topic)
    site.pages["/"] = ("text/html; charset=utf-8", (
        "<!DOCTYPE html><html><head><title>Desktop Help Center</title></head><body><main><h1>Desktop Help Center</h1>"
        f"<ul>{home_links}</ul><p><a href='/internal/drafts'>Drafts</a> <a href='/old/{members[0].slug}'>Old link</a></p>"
        "</main></body></html>").encode("utf-8"))
    site.pages["/internal/drafts"] = ("text/html", b"<html><body><h1>Internal drafts</h1><p>Not for customers.</p></body></html>")
    first = members[0]
    # The printer-friendly duplicate: the same bytes under another address.
    site.pages[f"/print/{first.slug}"] = site.pages[page_path(first)]
    site.redirects[f"/old/{first.slug}"] = page_path(first)
    # The sitemap lists every other article; the rest are found through links.
    listed = ["/"] + [page_path(a) for a in members[::2]]
    site.pages["/sitemap.xml"] = ("application/xml", (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + "".join(f"<url><loc>{{base}}{p}</loc></url>" for p in listed) + "</urlset>").encode("utf-8"))
    site.pages["/robots.txt"] = ("text/plain", b"User-agent: *\nDisallow: /internal/\nSitemap: {base}/sitemap.xml\n")
    return site


class _Handler(BaseHTTPRequestHandler):
    site: Site
    base: str

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test server
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        self.site.hits[path] = self.site.hits.get(path, 0) + 1
        if path in self.site.redirects:
            self.send_response(301)
            self.send_header("Location", self.site.redirects[path])
            self.end_headers()
            return
        if path not in self.site.pages:
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body><h1>Page not found</h1></body></html>")
            return
        kind, body = self.site.pages[path]
        body = body.replace(b"{base}", self.base.encode())
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.site.not_modified += 1
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(1_767_225_600, usegmt=True))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve_site(site: Site) -> Iterator[str]:
    """Serve ``site`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = type("SiteHandler", (_Handler,), {"site": site, "base": ""})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler.base
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------------------------
# PDF, Word, Notion


_ASCII = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "→": "->",
                        "←": "<-", "↑": "^", "↓": "v", "×": "x", "•": "-", "›": ">"})


def _latin1(text: str) -> str:
    return text.translate(_ASCII).encode("latin-1", "replace").decode("latin-1")


def _plain_lines(markdown: str) -> list[tuple[str, str]]:
    """(kind, text) lines of an article for PDF and Word: heading, item, row or text."""
    out: list[tuple[str, str]] = []
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped or re.match(r"^\|?\s*-{3,}", stripped):
            continue
        if stripped.startswith("#"):
            out.append(("heading", stripped.lstrip("#").strip()))
        elif stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if any(cells):
                out.append(("row", " | ".join(cells)))
        elif re.match(r"^(\d+[.)]|[-*])\s", stripped):
            out.append(("item", stripped))
        else:
            out.append(("text", stripped))
    return out


def make_pdf(path: Path, members: list[Article]) -> None:
    """One article per page (a long one runs on), text in a real text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(_latin1(members[0].title if len(members) == 1 else "Printing guide"))
    pdf.set_auto_page_break(auto=True, margin=15)
    for article in members:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 9, _latin1(article.title))
        pdf.ln(2)
        for kind, text in _plain_lines(article.body):
            if kind == "heading":
                pdf.ln(2)
                pdf.set_font("Helvetica", "B", 13)
                pdf.multi_cell(0, 7, _latin1(text))
            else:
                pdf.set_font("Helvetica", "", 11)
                pdf.multi_cell(0, 6, _latin1(text))
            pdf.ln(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))


def make_scanned_pdf(path: Path) -> None:
    """A page that is only a picture of text: what a scanner gives."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(image).text((20, 80), "Scanned warranty card: keep your receipt.", fill="black")
    picture = path.with_suffix(".png")
    image.save(picture)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(picture), x=10, y=10, w=180)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    picture.unlink()


def make_encrypted_pdf(path: Path, source: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="RC4-128")
    with open(path, "wb") as fh:
        writer.write(fh)


def make_docx(path: Path, article: Article) -> None:
    """Title style, Heading 2 sections, list styles for steps and a real Word table."""
    import docx

    document = docx.Document()
    document.core_properties.title = article.title
    document.add_paragraph(article.title, style="Title")
    rows: list[list[str]] = []

    def flush_table() -> None:
        if rows:
            table = document.add_table(rows=len(rows), cols=max(len(r) for r in rows))
            for r, cells in enumerate(rows):
                for c, value in enumerate(cells):
                    table.cell(r, c).text = value
            rows.clear()

    for kind, text in _plain_lines(article.body):
        if kind == "row":
            rows.append([c.strip() for c in text.split("|")])
            continue
        flush_table()
        if kind == "heading":
            document.add_heading(text, level=2)
        elif kind == "item":
            numbered = bool(re.match(r"^\d", text))
            document.add_paragraph(re.sub(r"^(\d+[.)]|[-*])\s+", "", text),
                                   style="List Number" if numbered else "List Bullet")
        else:
            document.add_paragraph(text)
    flush_table()
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))


def notion_id(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - a stable fake page id, not security


def make_notion_export(root: Path, all_articles: dict[str, Article]) -> dict[str, str]:
    """A Notion "Markdown & CSV" export: a parent page, child pages in its folder, one picture.

    Returns slug → the child page's path relative to ``root``.
    """
    parent_name = f"{NOTION_PARENT} {notion_id(NOTION_PARENT)}"
    folder = root / parent_name
    folder.mkdir(parents=True, exist_ok=True)
    links, paths = [], {}
    for slug in NOTION_ARTICLES:
        article = all_articles[slug]
        name = f"{article.title} {notion_id(slug)}"
        quoted = f"{parent_name}/{name}.md".replace(" ", "%20")
        links.append(f"[{article.title}]({quoted})")
        body = (f"# {article.title}\n\nCreated: January 5, 2026 10:12 AM\nLast edited time: February 2, 2026 4:40 PM\n"
                f"Tags: files, desktop\n\n{article.body}\n\n![Untitled]({(name + '/Untitled.png').replace(' ', '%20')})\n")
        (folder / f"{name}.md").write_text(body, encoding="utf-8")
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "Untitled.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        paths[slug] = f"{parent_name}/{name}.md"
    (root / f"{parent_name}.md").write_text(
        f"# {NOTION_PARENT}\n\nCreated: January 5, 2026 10:00 AM\n\nWhere your files are, and how to get them back.\n\n"
        + "\n\n".join(links) + "\n", encoding="utf-8")
    return paths


@dataclass(slots=True)
class MixedKB:
    kb_dir: Path
    site: Site
    expected: dict[str, str]  # slug → what `askdesk eval` should rank first (URL or file)
    bad_files: dict[str, str]  # kb-relative path → the reason it must be reported with


def build_mixed_kb(root: Path) -> MixedKB:
    """The files of the mixed knowledge base under ``root/kb`` and the website (not yet served)."""
    all_articles = articles()
    kb = root / "kb"
    expected: dict[str, str] = {}
    for name, slugs in PDF_ARTICLES.items():
        make_pdf(kb / "pdf" / name, [all_articles[s] for s in slugs])
        for slug in slugs:
            expected[slug] = f"pdf/{name}"
    for name, slug in DOCX_ARTICLES.items():
        make_docx(kb / "docx" / name, all_articles[slug])
        expected[slug] = f"docx/{name}"
    for slug, rel in make_notion_export(kb / "notion", all_articles).items():
        expected[slug] = f"notion/{rel}"
    make_scanned_pdf(kb / "pdf" / "scanned-manual.pdf")
    make_encrypted_pdf(kb / "pdf" / "protected.pdf", kb / "pdf" / "ink-levels.pdf")
    good = (kb / "pdf" / "night-light.pdf").read_bytes()
    (kb / "pdf" / "truncated.pdf").write_bytes(good[: len(good) // 3])
    (kb / "docx" / "empty.docx").write_bytes(b"")
    (kb / "archive").mkdir(parents=True, exist_ok=True)
    (kb / "archive" / "old-site.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    slugs = site_slugs(all_articles)
    site = build_site(slugs, all_articles)
    for slug in slugs:
        expected[slug] = site.article_paths[slug]  # a path: the caller prefixes the served base URL
    return MixedKB(kb, site, expected, dict(BAD_FILES))


def labelled_questions(expected: dict[str, str], base_url: str, out: Path, limit: int | None = None) -> int:
    """GNOME Help's labelled questions with the source that now holds each answer; returns the count.

    A question labelled with several articles (``a.md|b.md``: each answers it) gets every one's
    source, ``URL | file`` in the order labelled, which ``askdesk eval`` reads as "any of these".
    """
    rows = []
    with open(QUESTIONS, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            slugs = [s.strip().removesuffix(".md") for s in row["expected_source"].split("|") if s.strip()]
            if not slugs or slugs[0] not in expected:
                continue
            targets = [expected[s] for s in slugs if s in expected]
            rows.append({"question": row["question"],
                         "expected": " | ".join(f"{base_url}{t}" if t.startswith("/") else t for t in targets)})
    rows = rows[:limit] if limit else rows
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["question", "expected"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
