"""The help-centre crawler (core.retrieval.crawl) against a small site served on 127.0.0.1.

The site has what a real help centre shows a crawler: a robots.txt with a Disallow rule and a
Sitemap line, a sitemap.xml, pages inside a menu and a footer, a page found only through a link,
an old address that redirects, a redirect to a page crawled on its own, a broken link (404), a
printer-friendly duplicate, a JSON endpoint, a page that fails once (503), ETag on some pages and
Last-Modified on others. Every request is counted per path with its headers.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.retrieval.crawl import USER_AGENT, CrawlError, CrawlOptions, crawl_folder, crawl_site, load_state, state_file
from core.retrieval.loader import load_knowledge_base

LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)


def page(title: str, body: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} | Acme Help</title></head>
<body><div class="cookie-banner"><p>We use cookies on this site. Accept all cookies to continue.</p></div>
<header><a href="/help/">Acme Help Centre</a><nav><a href="/help/">Help home</a> <a href="/help/returns">Returns</a>
<a href="/help/shipping">Shipping</a> <a href="/about">About us</a> <a href="https://elsewhere.invalid/">Partner site</a></nav></header>
<main><article><h1>{title}</h1>{body}</article></main>
<footer><p>Copyright 2024 Acme Corporation. All rights reserved.</p><a href="/help/legal#terms">Terms</a></footer>
</body></html>"""


PAGES = {
    "/help/": page("Help centre", "<p>Find answers about orders, returns and shipping for your Acme account.</p>"),
    "/help/returns": page("Returns", "<p>You can return an item within 30 days of delivery for a full refund.</p>"
                                     '<p>Want another size? See <a href="/help/returns/exchange">exchanges</a>.</p>'),
    "/help/returns/exchange": page("Exchanges", "<p>An exchange for another size ships within two working days.</p>"),
    "/help/shipping": page("Shipping", "<p>We ship to every country in the European Union within five working days.</p>"),
    "/help/new-location": page("Gift cards", "<p>Gift cards never expire and can be used for any order.</p>"),
    "/help/legal": page("Legal", "<p>These terms apply to every order placed in the Acme shop.</p>"),
    "/help/flaky": page("Invoices", "<p>Every invoice is sent by email as a PDF on the day of shipping.</p>"),
    "/help/private/secret": page("Internal", "<p>Staff-only notes that must never be crawled.</p>"),
}
PAGES["/help/print/shipping"] = PAGES["/help/shipping"]  # the same bytes at a second address
SITEMAP = ["/help/", "/help/returns", "/help/shipping", "/help/print/shipping", "/help/private/secret",
           "/help/missing", "/help/moved", "/help/old-shipping", "/help/data", "/help/flaky", "/help/legal"]
REDIRECTS = {"/help/moved": "/help/new-location", "/help/old-shipping": "/help/shipping"}
LAST_MODIFIED_ONLY = {"/help/returns"}  # validated by date; every other page by ETag


@dataclass
class Site:
    pages: dict[str, str] = field(default_factory=lambda: dict(PAGES))
    hits: Counter = field(default_factory=Counter)
    requests: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    fail_once: set[str] = field(default_factory=lambda: {"/help/flaky"})
    # path → the path whose answer it waits for: the printer-friendly copy answers only after the
    # original, so which of the two a crawl keeps does not depend on thread timing.
    after: dict[str, str] = field(default_factory=lambda: {"/help/print/shipping": "/help/shipping"})
    served: set[str] = field(default_factory=set)
    lock: threading.Condition = field(default_factory=threading.Condition)
    base: str = ""

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [h for _, p, h in self.requests if p == path]

    def reset_counts(self) -> None:
        with self.lock:
            self.hits.clear()
            self.requests.clear()
            self.served.clear()


def make_handler(site: Site):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path
            with site.lock:
                site.hits[path] += 1
                site.requests.append((time.monotonic(), path, dict(self.headers)))
                failing = path in site.fail_once
                site.fail_once.discard(path)
            if path in site.after:
                with site.lock:
                    site.lock.wait_for(lambda: site.after[path] in site.served, timeout=3.0)
                time.sleep(0.05)  # and the crawler has read that answer
            try:
                self.answer(path, failing)
            finally:
                with site.lock:
                    site.served.add(path)
                    site.lock.notify_all()

        def answer(self, path: str, failing: bool) -> None:
            if path == "/robots.txt":
                return self.send("text/plain", f"User-agent: *\nDisallow: /help/private/\n\nSitemap: {site.base}/sitemap.xml\n")
            if path == "/sitemap.xml":
                urls = "".join(f"<url><loc>{site.base}{p}</loc></url>" for p in SITEMAP)
                return self.send("application/xml",
                                 f'<?xml version="1.0" encoding="UTF-8"?>'
                                 f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>')
            if path in REDIRECTS:
                self.send_response(301)
                self.send_header("Location", REDIRECTS[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if path == "/help/data":
                return self.send("application/json", '{"status": "ok"}')
            if failing:
                return self.send("text/plain", "busy", status=503)
            if path not in site.pages:
                return self.send("text/html", "<html><body><h1>Page not found</h1></body></html>", status=404)
            body = site.pages[path].encode("utf-8")
            if path in LAST_MODIFIED_ONLY:
                validator = {"Last-Modified": LAST_MODIFIED}
                fresh = self.headers.get("If-Modified-Since") == LAST_MODIFIED
            else:
                validator = {"ETag": '"' + hashlib.sha256(body).hexdigest()[:16] + '"'}
                fresh = self.headers.get("If-None-Match") == validator["ETag"]
            if fresh:
                self.send_response(304)
                for key, value in validator.items():
                    self.send_header(key, value)
                self.end_headers()
                return None
            return self.send("text/html; charset=utf-8", body, headers=validator)

        def send(self, kind: str, body: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
            data = body.encode("utf-8") if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def site():
    state = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def options(site: Site, tmp_path: Path, **overrides) -> CrawlOptions:
    url = f"{site.base}/help/"
    values = dict(url=url, out_dir=crawl_folder(tmp_path / "kb", url), state_path=state_file(tmp_path / "index", url),
                  rate=1000.0, concurrency=4, timeout=5.0, retries=3)
    values.update(overrides)
    return CrawlOptions(**values)


def saved_files(opts: CrawlOptions) -> list[str]:
    return sorted(p.relative_to(opts.out_dir).as_posix() for p in opts.out_dir.rglob("*") if p.is_file())


EXPECTED_FILES = ["help/flaky.html", "help/index.html", "help/legal.html", "help/new-location.html",
                  "help/returns.html", "help/returns/exchange.html", "help/shipping.html"]


def test_first_crawl_follows_sitemap_links_robots_and_reports_every_skip(site, tmp_path):
    opts = options(site, tmp_path)
    report = crawl_site(opts)
    b = site.base

    assert saved_files(opts) == EXPECTED_FILES
    assert (report.pages, report.new, report.updated, report.unchanged, report.removed) == (7, 7, 0, 0, 0)
    assert sorted((s.url, s.reason) for s in report.skipped) == sorted([
        (f"{b}/help/private/secret", "disallowed by robots.txt"),
        (f"{b}/help/missing", "HTTP 404 (not found)"),
        (f"{b}/help/old-shipping", f"redirects to {b}/help/shipping, crawled on its own"),
        (f"{b}/help/data", "not a page (application/json)"),
        (f"{b}/help/print/shipping", f"duplicate of {b}/help/shipping"),
    ])
    # robots.txt and the sitemap once each; the disallowed page never; nothing outside /help/ or the host
    assert site.hits["/robots.txt"] == 1 and site.hits["/sitemap.xml"] == 1
    assert site.hits["/help/private/secret"] == 0
    assert site.hits["/about"] == 0 and not any(p.startswith("/about") for p in site.hits)
    # the page known only from a link was crawled; a fragment link is the page itself
    assert site.hits["/help/returns/exchange"] == 1 and site.hits["/help/legal"] == 1
    # the redirect was followed once, and its page saved under the address it ended at
    assert site.hits["/help/moved"] == 1 and site.hits["/help/new-location"] == 1
    assert load_state(opts.state_path)["redirects"] == {f"{b}/help/moved": f"{b}/help/new-location"}
    # a 503 is asked again, and then saved
    assert site.hits["/help/flaky"] == 2
    # every request says who we are; nothing conditional on a first crawl
    assert {h.get("User-Agent") for _, _, h in site.requests} == {USER_AGENT}
    assert not any("If-None-Match" in h or "If-Modified-Since" in h for _, _, h in site.requests)
    # the report counts requests, a redirect and its hop as one
    assert report.requests == sum(site.hits.values()) - site.hits["/help/moved"] - site.hits["/help/old-shipping"]


def test_crawled_pages_cite_their_url_and_lose_the_site_chrome(site, tmp_path):
    opts = options(site, tmp_path)
    crawl_site(opts)
    kb = tmp_path / "kb"
    folder = opts.out_dir.relative_to(kb).as_posix()
    assert folder == "web/127.0.0.1_" + site.base.rsplit(":", 1)[1]

    result = load_knowledge_base(kb)
    assert result.problems == []
    by_url = {p.url: p for p in result.passages}
    b = site.base
    assert sorted(by_url) == sorted(f"{b}{p}" for p in ("/help/", "/help/flaky", "/help/legal", "/help/new-location",
                                                        "/help/returns", "/help/returns/exchange", "/help/shipping"))
    returns = by_url[f"{b}/help/returns"]
    assert (returns.source, returns.title) == (f"{folder}/help/returns.html", "Returns")
    assert returns.text == ("You can return an item within 30 days of delivery for a full refund.\n\n"
                            "Want another size? See exchanges.")
    gift = by_url[f"{b}/help/new-location"]  # redirected: cited at the address it ended at
    assert (gift.source, gift.title) == (f"{folder}/help/new-location.html", "Gift cards")
    everything = "\n".join(p.embed_text for p in result.passages)
    for chrome in ("cookies", "Acme Help Centre", "Help home", "About us", "Partner site", "Copyright"):
        assert chrome not in everything, chrome
    # the duplicate is stored once
    assert sum("European Union" in p.text for p in result.passages) == 1


def test_second_crawl_asks_conditionally_and_rewrites_nothing(site, tmp_path):
    opts = options(site, tmp_path)
    crawl_site(opts)
    mtimes = {p: (opts.out_dir / p).stat().st_mtime_ns for p in saved_files(opts)}
    first_state = load_state(opts.state_path)
    site.reset_counts()

    report = crawl_site(opts)

    assert (report.pages, report.new, report.updated, report.unchanged, report.removed) == (7, 0, 0, 7, 0)
    assert saved_files(opts) == EXPECTED_FILES
    assert {p: (opts.out_dir / p).stat().st_mtime_ns for p in saved_files(opts)} == mtimes
    etag = {url: entry["etag"] for url, entry in first_state["pages"].items()}
    etag_pages = ["/help/", "/help/returns/exchange", "/help/legal", "/help/flaky"]
    for path in etag_pages:
        (headers,) = site.headers_of(path)
        assert headers["If-None-Match"] == etag[f"{site.base}{path}"], path
        assert "If-Modified-Since" not in headers
    # /help/shipping: asked conditionally itself, and once more behind the /help/old-shipping redirect
    assert [h.get("If-None-Match") for h in site.headers_of("/help/shipping")] in (
        [etag[f"{site.base}/help/shipping"], None], [None, etag[f"{site.base}/help/shipping"]])
    (headers,) = site.headers_of("/help/returns")
    assert headers["If-Modified-Since"] == LAST_MODIFIED and "If-None-Match" not in headers
    # the redirected address gets the validator of the page it redirected to, and the page answers 304
    assert site.headers_of("/help/moved")[0]["If-None-Match"] == etag[f"{site.base}/help/new-location"]
    assert site.headers_of("/help/new-location")[0]["If-None-Match"] == etag[f"{site.base}/help/new-location"]
    # one request per page again (links of unchanged pages come from the saved copies), no retry needed
    for path in (*etag_pages, "/help/returns", "/help/new-location"):
        assert site.hits[path] == 1, path
    assert site.hits["/help/private/secret"] == 0
    assert sorted(s.reason for s in report.skipped) == sorted([
        "disallowed by robots.txt", "HTTP 404 (not found)", f"redirects to {site.base}/help/shipping, crawled on its own",
        "not a page (application/json)", f"duplicate of {site.base}/help/shipping"])


def test_changed_page_is_updated_and_deleted_page_removed(site, tmp_path):
    opts = options(site, tmp_path)
    crawl_site(opts)
    site.pages["/help/legal"] = page("Legal", "<p>New terms apply to every order placed after 1 May.</p>")
    del site.pages["/help/returns/exchange"]

    report = crawl_site(opts)

    assert (report.new, report.updated, report.unchanged, report.removed) == (0, 1, 5, 1)
    assert "help/returns/exchange.html" not in saved_files(opts)
    assert "New terms apply" in (opts.out_dir / "help/legal.html").read_text(encoding="utf-8")
    assert f"{site.base}/help/returns/exchange" not in load_state(opts.state_path)["pages"]


def test_duplicate_is_stored_once_even_when_the_copy_answers_first(site, tmp_path):
    """On a re-crawl the original's 304 may arrive after the copy's 200 (parallel workers)."""
    opts = options(site, tmp_path)
    crawl_site(opts)
    site.reset_counts()
    site.after = {"/help/shipping": "/help/print/shipping"}
    report = crawl_site(opts)
    # the page kept last time stays the one kept: nothing new, nothing removed, no file rewritten
    assert [f for f in saved_files(opts) if "shipping" in f] == ["help/shipping.html"]
    assert (report.pages, report.new, report.unchanged, report.removed) == (7, 0, 7, 0)
    assert (f"{site.base}/help/print/shipping", f"duplicate of {site.base}/help/shipping") in [
        (s.url, s.reason) for s in report.skipped]
    result = load_knowledge_base(tmp_path / "kb")
    assert sum("European Union" in p.text for p in result.passages) == 1


def test_requests_keep_to_the_rate_limit(site, tmp_path):
    opts = options(site, tmp_path, rate=20.0, concurrency=4)
    crawl_site(opts)
    # A redirect and its hop are one request to the rate limit.
    starts = sorted(t for t, path, _ in site.requests if path not in REDIRECTS.values() or path == "/help/shipping")
    slots = len(starts) - site.hits["/help/old-shipping"]
    assert slots >= 12
    # 1/20 s between request starts over all workers: without the limit this takes a few milliseconds
    assert starts[-1] - starts[0] >= 0.9 * (slots - 1) / 20.0


def test_start_page_disallowed_or_missing_is_a_clear_error(site, tmp_path):
    with pytest.raises(CrawlError, match="robots.txt of .* does not allow crawling .*/help/private/"):
        crawl_site(options(site, tmp_path, url=f"{site.base}/help/private/"))
    with pytest.raises(CrawlError, match=r"Cannot crawl .*/nothing/: HTTP 404 \(not found\)"):
        crawl_site(options(site, tmp_path, url=f"{site.base}/nothing/"))
    with pytest.raises(CrawlError, match="is not an http"):
        crawl_site(options(site, tmp_path, url="ftp://127.0.0.1/help/"))
