"""Crawl a help-centre website into a folder of pages that the normal build then indexes.

``askdesk index build --url https://help.example.com`` runs :func:`crawl_site` first. The
crawl is:

* **scoped**: the sitemap (robots.txt ``Sitemap:`` lines, else ``/sitemap.xml``) first, then
  links found on pages, only on the start URL's host and under its path prefix;
* **polite**: robots.txt rules for our user agent (``urllib.robotparser``), a concurrency
  limit, a request-rate limit (raised to robots.txt's ``Crawl-delay`` when that is slower) and
  retries with backoff (tenacity) on connection errors, 429 and 5xx;
* **incremental**: conditional requests (``If-None-Match`` / ``If-Modified-Since`` from the last
  crawl's ETag / Last-Modified) and a content hash, kept in a small JSON state file beside the
  index; a page that did not change is not rewritten, so the build re-embeds nothing for it;
* **deduplicated**: a page whose content equals one already saved (the same article under two
  URLs) is skipped and reported, and so is a redirect to a page already crawled.

Each saved page carries ``<link rel="canonical">`` with the URL it was fetched from (unless it
declares its own), so the HTML loader cites the page URL. Every URL that gives no page is
reported with its reason (robots.txt, HTTP status, not HTML, outside the site, duplicate).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser
from xml.etree import ElementTree

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from core.errors import AskdeskError

log = logging.getLogger(__name__)

USER_AGENT = "askdesk-crawler/0.1 (+https://github.com/askdesk)"
STATE_VERSION = 1
PAGE_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPES = ("application/pdf",)
_SKIP_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .svg .webp .ico .css .js .json .xml .zip .gz .mp4 .mp3 .woff .woff2 .ttf".split()
)
_CANONICAL = re.compile(r"<link\b[^>]*\brel=[\"']?canonical", re.IGNORECASE)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


class CrawlError(AskdeskError):
    """The site cannot be crawled at all (bad start URL, start page unreachable)."""


@dataclass(slots=True)
class CrawlOptions:
    url: str
    out_dir: Path  # pages are written under here, one file per page
    state_path: Path  # ETag / Last-Modified / hash per URL, from the last crawl
    concurrency: int = 4
    rate: float = 8.0  # requests per second at most, over all workers
    max_pages: int = 2000
    retries: int = 3
    timeout: float = 20.0
    user_agent: str = USER_AGENT


@dataclass(slots=True)
class Skipped:
    url: str
    reason: str

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}"


@dataclass(slots=True)
class CrawlReport:
    start_url: str
    out_dir: Path
    pages: int = 0  # pages in the folder after the crawl
    new: int = 0
    updated: int = 0
    unchanged: int = 0  # 304 Not Modified, or the same content hash
    removed: int = 0
    requests: int = 0
    seconds: float = 0.0
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.pages / self.seconds if self.seconds else 0.0
        return (
            f"Crawled {self.start_url}: {self.pages} pages ({self.new} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed), {len(self.skipped)} skipped, "
            f"{self.requests} requests in {self.seconds:.1f}s ({rate:.1f} pages/s) → {self.out_dir}"
        )


class _Retryable(Exception):
    """A response worth asking again for (429, 5xx)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _RateLimit:
    """At most ``rate`` request starts per second across all workers."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


def normalise_url(url: str) -> str:
    """Without fragment, lower-case scheme and host, ``/`` for an empty path."""
    url, _ = urldefrag(url.strip())
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def site_scope(start_url: str) -> tuple[str, str]:
    """(origin, path prefix): ``https://h/docs/start`` → ``("https://h", "/docs/")``."""
    parts = urlsplit(start_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CrawlError(f"--url {start_url!r} is not an http(s) address; give e.g. https://help.example.com")
    path = parts.path or "/"
    prefix = path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"
    return f"{parts.scheme}://{parts.netloc}", prefix


def in_scope(url: str, origin: str, prefix: str) -> bool:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == origin and (parts.path or "/").startswith(prefix)


def file_for(url: str, suffix: str = ".html") -> str:
    """Where a page is saved, relative to the output folder: its path, made safe for a file system."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    path = re.sub(r"[^\w./-]", "_", path) or "index"
    if parts.path.endswith("/") and parts.path != "/":
        path += "/index"
    if path.lower().endswith((".html", ".htm", ".pdf")):
        path = path.rsplit(".", 1)[0]
    if parts.query:
        path += "_" + hashlib.sha256(parts.query.encode()).hexdigest()[:10]
    segments = [s for s in path.split("/") if s not in ("", ".", "..")]
    return "/".join(segments or ["index"]) + suffix


def page_links(html: str, base: str) -> list[str]:
    """Absolute link targets of ``<a href>`` in a page (``<base href>`` honoured)."""
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(html)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - lxml raises its own parser errors on junk
        return []
    base_el = tree.find(".//base[@href]")
    if base_el is not None:
        base = urljoin(base, base_el.get("href"))
    links = []
    for a in tree.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "tel:", "javascript:")):
            continue
        if (a.get("rel") or "").lower().find("nofollow") >= 0:
            continue
        links.append(normalise_url(urljoin(base, href)))
    return links


def sitemap_urls(xml: str) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap or sitemap index."""
    try:
        root = ElementTree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    except ElementTree.ParseError:
        return [], []
    pages, nested = [], []
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "loc" or not (el.text or "").strip():
            continue
        parent_is_sitemap = root.tag.rsplit("}", 1)[-1] == "sitemapindex"
        (nested if parent_is_sitemap else pages).append(el.text.strip())
    return pages, nested


def with_canonical(html: str, url: str) -> str:
    """The page with ``<link rel="canonical" href=url>`` added when it declares none."""
    if _CANONICAL.search(html):
        return html
    tag = f'<link rel="canonical" href="{url}">'
    head = _HEAD.search(html)
    return f"{html[: head.end()]}{tag}{html[head.end():]}" if head else f"{tag}\n{html}"


def _content_hash(body: bytes) -> str:
    return hashlib.sha256(b" ".join(body.split())).hexdigest()[:32]


def load_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"version": STATE_VERSION, "pages": {}}
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION or not isinstance(data.get("pages"), dict):
        return {"version": STATE_VERSION, "pages": {}}
    return data


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _Crawler:
    def __init__(self, options: CrawlOptions, progress: bool) -> None:
        self.options = options
        self.start = normalise_url(options.url)
        self.origin, self.prefix = site_scope(self.start)
        self.state = load_state(options.state_path)
        self.previous: dict[str, dict[str, Any]] = self.state["pages"]
        # Pages are kept under the address they were fetched from in the end; a URL that redirected
        # there last time finds its ETag / Last-Modified through this map (old address → final).
        self.previous_redirects: dict[str, str] = dict(self.state.get("redirects") or {})
        self.redirects: dict[str, str] = {}
        self.pages: dict[str, dict[str, Any]] = {}  # this crawl's pages, by final URL
        self.by_hash: dict[str, str] = {}
        # Which URL held each content last time: when a page and its copy are both crawled again,
        # the one kept before stays the one kept, whichever of the two answers first.
        self.previous_by_hash: dict[str, str] = {}
        for old_url, entry in self.previous.items():
            self.previous_by_hash.setdefault(entry.get("hash") or "", old_url)
        # Copies put aside for a page kept last time; saved after all if that page is gone or changed.
        self.deferred: list[tuple[str, str, str, dict[str, Any], httpx.Response, str, str]] = []
        self.seen: set[str] = set()
        self.gone: set[str] = set()  # 404/410 now: their old files go
        self.failed: set[str] = set()  # errors: their old files stay
        self.report = CrawlReport(self.start, options.out_dir)
        self.robots = RobotFileParser()
        self.limit = _RateLimit(options.rate)
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.progress = progress
        self._bar: Any = None

    # ---- requests

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(max(1, self.options.retries)),
            wait=wait_exponential(multiplier=0.2, max=5.0),
            retry=retry_if_exception(lambda e: isinstance(e, (httpx.TransportError, _Retryable))),
            reraise=True,
        )

    async def _get(self, client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async for attempt in self._retrying():
            with attempt:
                await self.limit.wait()
                self.report.requests += 1
                response = await client.get(url, headers=headers or {})
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Retryable(response)
                return response
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    async def _read_robots(self, client: httpx.AsyncClient) -> None:
        try:
            response = await self._get(client, f"{self.origin}/robots.txt")
        except (httpx.HTTPError, _Retryable) as exc:
            log.info("robots.txt not readable (%s); crawling as if it allowed everything", exc)
            self.robots.parse([])
            return
        if response.status_code in (401, 403):
            self.robots.disallow_all = True  # the standard reading: the site forbids crawling
        elif response.status_code >= 400:
            self.robots.parse([])
        else:
            self.robots.parse(response.text.splitlines())
        delay = self.robots.crawl_delay(self.options.user_agent)
        if delay:
            self.limit.interval = max(self.limit.interval, float(delay))

    async def _sitemap(self, client: httpx.AsyncClient) -> list[str]:
        todo = list(self.robots.site_maps() or []) or [f"{self.origin}/sitemap.xml"]
        found: list[str] = []
        done: set[str] = set()
        while todo and len(done) < 50:
            url = todo.pop(0)
            if url in done:
                continue
            done.add(url)
            try:
                response = await self._get(client, url)
            except (httpx.HTTPError, _Retryable) as exc:
                log.info("sitemap %s not readable (%s)", url, exc)
                continue
            if response.status_code != 200:
                continue
            pages, nested = sitemap_urls(response.text)
            found += [normalise_url(p) for p in pages]
            todo += nested
        return found

    # ---- the frontier

    def _enqueue(self, url: str, reason_source: str = "link") -> None:
        url = normalise_url(url)
        if url in self.seen:
            return
        if not in_scope(url, self.origin, self.prefix):
            return  # links out of the site are not the site's pages; not worth a report line each
        if Path(urlsplit(url).path).suffix.lower() in _SKIP_SUFFIXES:
            return
        self.seen.add(url)
        if not self.robots.can_fetch(self.options.user_agent, url):
            self.report.skipped.append(Skipped(url, "disallowed by robots.txt"))
            return
        if len(self.seen) > self.options.max_pages:
            self.failed.add(url)  # not crawled this time: an old copy stays
            self.report.skipped.append(Skipped(url, f"over the page limit ({self.options.max_pages}); raise --max-pages"))
            return
        self.queue.put_nowait(url)
        if self._bar is not None:
            self._bar.total = (self._bar.total or 0) + 1
            self._bar.refresh()

    async def _fetch(self, client: httpx.AsyncClient, url: str) -> None:
        old = self.previous.get(url) or self.previous.get(self.previous_redirects.get(url, "")) or {}
        headers = {}
        if old.get("etag"):
            headers["If-None-Match"] = old["etag"]
        if old.get("last_modified"):
            headers["If-Modified-Since"] = old["last_modified"]
        try:
            response = await self._get(client, url, headers)
        except _Retryable as exc:
            self.failed.add(url)
            self.report.skipped.append(Skipped(url, f"{exc} after {self.options.retries} tries; old copy kept"))
            return
        except httpx.HTTPError as exc:
            self.failed.add(url)
            self.report.skipped.append(Skipped(url, f"not reachable ({type(exc).__name__}); old copy kept"))
            return
        final = normalise_url(str(response.url))
        if final != url:
            if not in_scope(final, self.origin, self.prefix):
                self.report.skipped.append(Skipped(url, f"redirects outside the site to {final}"))
                return
            if final in self.seen:  # crawled, or queued to be crawled under its own address
                self.report.skipped.append(Skipped(url, f"redirects to {final}, crawled on its own"))
                return
            self.seen.add(final)
            self.redirects[url] = final
            if self.previous_redirects.get(url) != final:
                old = self.previous.get(final) or {}  # it redirects elsewhere now
        if response.status_code == 304 and old.get("file"):
            entry = dict(old)
            twin = self.by_hash.get(entry.get("hash", ""))
            if twin is not None and twin != final:
                # Its twin answered first this time (workers race); one copy is kept, this one's file goes.
                self.report.skipped.append(Skipped(url, f"duplicate of {twin}"))
                return
            self.pages[final] = entry
            self.by_hash.setdefault(entry.get("hash", ""), final)
            self.report.unchanged += 1
            path = self.options.out_dir / entry["file"]
            if path.suffix == ".html" and path.exists():
                for link in page_links(path.read_text(encoding="utf-8", errors="replace"), final):
                    self._enqueue(link)
            return
        if response.status_code in (404, 410):
            self.gone.add(url)
            self.report.skipped.append(Skipped(url, f"HTTP {response.status_code} (not found)"))
            return
        if response.status_code != 200:
            self.report.skipped.append(Skipped(url, f"HTTP {response.status_code}"))
            return
        kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind not in PAGE_TYPES + PDF_TYPES:
            self.report.skipped.append(Skipped(url, f"not a page ({kind or 'no content type'})"))
            return
        body = response.content
        digest = _content_hash(body)
        twin = self.by_hash.get(digest)
        if twin is not None and twin != final:
            self.report.skipped.append(Skipped(url, f"duplicate of {twin}"))
            return
        keeper = self.previous_by_hash.get(digest)
        if twin is None and keeper not in (None, final) and keeper in self.seen and keeper not in self.gone:
            # The page kept last time with this content is crawled too but has not answered yet.
            self.deferred.append((url, keeper, final, old, response, kind, digest))
            self.report.skipped.append(Skipped(url, f"duplicate of {keeper}"))
            return
        self._save(final, old, response, kind, digest)

    def _save(self, final: str, old: dict[str, Any], response: httpx.Response, kind: str, digest: str) -> None:
        """Keep a page (written unless its file already holds this content) and follow its links."""
        body = response.content
        self.by_hash[digest] = final
        suffix = ".pdf" if kind in PDF_TYPES else ".html"
        rel = file_for(final, suffix)
        entry = {"file": rel, "hash": digest, "etag": response.headers.get("etag"),
                 "last_modified": response.headers.get("last-modified")}
        self.pages[final] = entry
        path = self.options.out_dir / rel
        if old.get("hash") == digest and old.get("file") == rel and path.exists():
            self.report.unchanged += 1
        else:
            if suffix == ".html":
                text = response.text
                _write(path, with_canonical(text, final).encode("utf-8"))
            else:
                _write(path, body)
            if old:
                self.report.updated += 1
            else:
                self.report.new += 1
        if suffix == ".html":
            for link in page_links(response.text, final):
                self._enqueue(link)

    async def _worker(self, client: httpx.AsyncClient) -> None:
        while True:
            url = await self.queue.get()
            try:
                await self._fetch(client, url)
            except Exception as exc:  # noqa: BLE001 - one bad page must not end the crawl
                log.warning("crawl of %s failed", url, exc_info=True)
                self.failed.add(url)
                self.report.skipped.append(Skipped(url, f"failed ({type(exc).__name__}: {exc})"))
            finally:
                if self._bar is not None:
                    self._bar.update(1)
                self.queue.task_done()

    async def run(self) -> CrawlReport:
        started = time.perf_counter()
        limits = httpx.Limits(max_connections=self.options.concurrency)
        headers = {"User-Agent": self.options.user_agent}
        async with httpx.AsyncClient(follow_redirects=True, timeout=self.options.timeout, limits=limits,
                                     headers=headers) as client:
            await self._read_robots(client)
            if not self.robots.can_fetch(self.options.user_agent, self.start):
                raise CrawlError(f"robots.txt of {self.origin} does not allow crawling {self.start}.")
            from tqdm import tqdm

            self._bar = tqdm(total=0, unit="page", desc="crawl", disable=not self.progress, leave=False)
            try:
                self._enqueue(self.start)
                for url in await self._sitemap(client):
                    self._enqueue(url)
                workers = [asyncio.create_task(self._worker(client)) for _ in range(max(1, self.options.concurrency))]
                await self.queue.join()
                while self._resolve_deferred():
                    await self.queue.join()  # the links of a copy saved after all
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            finally:
                self._bar.close()
        if not self.pages and self.start in self.failed | self.gone:
            reason = next((s.reason for s in self.report.skipped if s.url == self.start), "no answer")
            raise CrawlError(f"Cannot crawl {self.start}: {reason}. Check the address and that the site is up.")
        self._finish()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _resolve_deferred(self) -> bool:
        """Copies put aside whose kept page did not come back with that content: saved now."""
        saved = False
        for url, keeper, final, old, response, kind, digest in self.deferred:
            if digest in self.by_hash or keeper in self.failed:
                continue  # the page kept last time is still there (or keeps its old copy): the copy stays skipped
            self.report.skipped = [s for s in self.report.skipped if s.url != url]
            self._save(final, old, response, kind, digest)
            saved = True
        self.deferred = []
        return saved

    def _finish(self) -> None:
        """Old pages the site no longer has are deleted; those that only failed this time stay."""
        kept = dict(self.pages)
        for url, entry in self.previous.items():
            if url in kept or url in self.failed:
                if url in self.failed and url not in kept:
                    kept[url] = entry
                continue
            path = self.options.out_dir / entry.get("file", "")
            if entry.get("file") and path.is_file() and entry["file"] not in {e["file"] for e in self.pages.values()}:
                path.unlink()
                self.report.removed += 1
        self.report.pages = len(kept)
        self.state = {
            "version": STATE_VERSION,
            "start_url": self.start,
            "out_dir": str(self.options.out_dir),
            "crawled_at": datetime.now(timezone.utc).isoformat(),
            "pages": kept,
            "redirects": {**{u: t for u, t in self.previous_redirects.items() if u in self.failed}, **self.redirects},
            "skipped": [asdict(s) for s in self.report.skipped],
        }
        _save_state(self.options.state_path, self.state)


def crawl_site(options: CrawlOptions, progress: bool = False) -> CrawlReport:
    """Crawl ``options.url`` into ``options.out_dir``; see the module docstring."""
    return asyncio.run(_Crawler(options, progress).run())


def crawl_folder(kb_dir: Path, url: str) -> Path:
    """The folder of the knowledge base that holds a site's pages: ``<kb>/web/<host>[/<prefix>]``."""
    parts = urlsplit(normalise_url(url))
    host = re.sub(r"[^\w.-]", "_", parts.netloc)
    return Path(kb_dir) / "web" / host


def state_file(index_dir: Path, url: str) -> Path:
    """The crawl state beside the index: ``<index>.crawl-<host>.json``."""
    index_dir = Path(index_dir).absolute()
    host = re.sub(r"[^\w.-]", "_", urlsplit(normalise_url(url)).netloc)
    return index_dir.with_name(f"{index_dir.name}.crawl-{host}.json")


def crawl_for_build(args: Any, kb_dir: Path, index_dir: Path, progress: bool = True) -> CrawlReport:
    """What ``index build --url`` does before building: crawl, print skipped URLs and the summary."""
    import sys

    options = CrawlOptions(
        url=args.url, out_dir=crawl_folder(kb_dir, args.url), state_path=state_file(index_dir, args.url),
        concurrency=args.concurrency, rate=args.rate, max_pages=args.max_pages,
    )
    report = crawl_site(options, progress=progress)
    for skipped in report.skipped:
        print(f"crawl skipped {skipped}", file=sys.stderr)
    print(report.summary())
    return report
