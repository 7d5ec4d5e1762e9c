"""``askdesk kb list``: sources, passage counts, last build, skipped files and crawl results.

The index is built once for the module by the real build (loaders, BM25, manifest), with a
small deterministic fake embedder in place of the sentence-transformers model, so no model is
loaded: ``kb list`` reads only the manifest, ``passages.jsonl`` and the crawl state files.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from bots.cli import main
from core.config import get_settings
from core.retrieval.crawl import state_file
from tests.conftest import make_settings
from tests.core.retrieval.test_loaders import make_pdf

SITE = "https://help.acme.test"


class FakeEmbedder:
    """Unit vectors from a hash of the text: stable, distinct, instant."""

    dimension = 16

    def embed_passages(self, texts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows) if rows else np.zeros((0, self.dimension), dtype=np.float32)

    embed_queries = embed_passages


def write_kb(kb: Path) -> None:
    kb.mkdir(parents=True)
    (kb / "returns.md").write_text(
        "---\ntitle: Returns\nurl: https://help.acme.test/returns\n---\n# Returns\n\n"
        "You can return an item within 30 days of delivery.\n\n## Refunds\n\nRefunds reach your card within 5 days.\n",
        encoding="utf-8")
    (kb / "faq.csv").write_text(
        "question,answer\nDo you ship abroad?,We ship to 30 countries.\nCan I pay by invoice?,Yes for business accounts.\n"
        "How do I cancel?,Cancel in Settings > Plan.\n", encoding="utf-8")
    (kb / "manual.pdf").write_bytes(make_pdf([["Router manual", "", "Plug the router in."], ["Reset", "", "Hold reset for ten seconds."]]))
    (kb / "scan.pdf").write_bytes(make_pdf([None]))
    (kb / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    page = kb / "web" / "help.acme.test" / "help" / "shipping.html"
    page.parent.mkdir(parents=True)
    page.write_text(
        f'<html><head><title>Shipping | Acme</title><link rel="canonical" href="{SITE}/help/shipping"></head>'
        "<body><nav><a href='/'>Home</a></nav><main><h1>Shipping</h1>"
        "<p>We ship to every country in the European Union within five working days.</p></main></body></html>",
        encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build for the module: (index folder, build report, knowledge-base folder)."""
    import core.retrieval.build as build

    root = tmp_path_factory.mktemp("kblist")
    kb, index_dir = root / "kb", root / "index"
    write_kb(kb)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "embedder_for", lambda settings, device: FakeEmbedder())
        report = build.build_index(make_settings(kb_dir=kb, index_dir=index_dir), kb, index_dir)
    # what `index build --url` leaves beside the index: the crawl state with its skipped URLs
    state_file(index_dir, SITE).write_text(json.dumps({
        "version": 1, "start_url": f"{SITE}/help/", "crawled_at": "2024-05-01T08:00:00+00:00",
        "pages": {f"{SITE}/help/shipping": {"file": "help/shipping.html", "hash": "x"}},
        "skipped": [{"url": f"{SITE}/help/private", "reason": "disallowed by robots.txt"}],
    }), encoding="utf-8")
    return index_dir, report, kb


@pytest.fixture
def cli(monkeypatch):
    """The CLI with wide output (no wrapped table cells) and settings that ignore the developer's own."""
    for name in [n for n in __import__("os").environ if n.startswith("ASKDESK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "240")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def rows(out: str) -> dict[str, list[str]]:
    """Table rows of rich's box drawing as cells, keyed by the first cell."""
    found = {}
    for line in out.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            found[cells[0]] = cells[1:]
    return found


def test_build_reports_the_skipped_files(built):
    _, report, _ = built
    assert {p.path: p.reason for p in report.problems} == {
        "logo.png": "unsupported file type .png; an attachment, not indexed as text",
        "scan.pdf": "no text layer (1 page(s) of images: a scanned PDF?); run OCR on it first",
    }
    assert report.passages == 8


def test_kb_list_shows_sources_counts_build_and_skipped_files(built, cli, capsys):
    index_dir, _, kb = built
    assert main(["kb", "list", "--index", str(index_dir)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))

    title = re.search(r"(\d+) passages from (\d+) sources, built (\S+) from (\S+)", " ".join(out.split()))
    assert title is not None, out
    assert title.groups() == ("8", "4", manifest["built_at"], str(kb.absolute()))
    table = rows(out)
    assert table["faq.csv"] == ["CSV FAQ", "3", ""]
    assert table["manual.pdf"] == ["PDF", "2", ""]
    assert table["returns.md"] == ["Markdown", "2", ""]
    assert table["web/help.acme.test/help/shipping.html"] == ["crawled page", "1", f"{SITE}/help/shipping"]
    assert f"crawl of {SITE}/help/: 1 pages, last 2024-05-01T08:00:00+00:00, 1 URLs skipped" in out
    assert "skipped (3)" in out
    assert table["scan.pdf"] == ["no text layer (1 page(s) of images: a scanned PDF?); run OCR on it first"]
    assert table["logo.png"] == ["unsupported file type .png; an attachment, not indexed as text"]
    assert table[f"{SITE}/help/private"] == ["disallowed by robots.txt"]
    assert "No file was skipped" not in out


def test_kb_list_json(built, cli, capsys):
    index_dir, _, kb = built
    assert main(["kb", "list", "--index", str(index_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passages"] == 8
    assert data["kb_dir"] == str(kb.absolute())
    assert data["built_at"]
    assert data["sources"] == [
        {"source": "faq.csv", "kind": "CSV FAQ", "passages": 3, "url": None},
        {"source": "manual.pdf", "kind": "PDF", "passages": 2, "url": None},
        {"source": "returns.md", "kind": "Markdown", "passages": 2, "url": None},
        {"source": "web/help.acme.test/help/shipping.html", "kind": "crawled page", "passages": 1,
         "url": f"{SITE}/help/shipping"},
    ]
    assert data["skipped"] == [
        {"path": "logo.png", "reason": "unsupported file type .png; an attachment, not indexed as text"},
        {"path": "scan.pdf", "reason": "no text layer (1 page(s) of images: a scanned PDF?); run OCR on it first"},
    ]
    assert data["crawls"] == [{"start_url": f"{SITE}/help/", "pages": 1, "crawled_at": "2024-05-01T08:00:00+00:00",
                               "skipped": [{"url": f"{SITE}/help/private", "reason": "disallowed by robots.txt"}]}]


def test_kb_list_without_an_index_says_how_to_build_one(cli, tmp_path, capsys):
    assert main(["kb", "list", "--index", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip() == f"error: No index at {tmp_path / 'none'}. Build it first: `askdesk index build`."


def test_kb_list_shows_a_file_that_broke_after_the_last_change(tmp_path, cli, capsys, monkeypatch):
    import core.retrieval.build as build

    monkeypatch.setattr(build, "embedder_for", lambda settings, device: FakeEmbedder())
    kb, index_dir = tmp_path / "kb", tmp_path / "index"
    kb.mkdir()
    (kb / "returns.md").write_text("# Returns\nYou can return an item within 30 days.", encoding="utf-8")
    settings = make_settings(kb_dir=kb, index_dir=index_dir)
    build.build_index(settings, kb, index_dir)
    (kb / "scan.pdf").write_bytes(make_pdf([None]))
    report = build.build_index(settings, kb, index_dir)
    assert [p.path for p in report.problems] == ["scan.pdf"]  # the build itself reports it

    assert main(["kb", "list", "--index", str(index_dir)]) == 0
    assert "scan.pdf" in rows(capsys.readouterr().out)
