"""Ingest of a mixed help centre: a crawled website, PDFs, Word files and a Notion export.

    python -m benchmarks.ingest [--rate R] [--concurrency N] [--k 3] [--details]

Protocol
- Knowledge base: :func:`benchmarks.kb_fixtures.build_mixed_kb` in a temporary folder — GNOME
  Help (CC BY-SA 3.0) as a website served on 127.0.0.1 (sitemap, robots.txt ``Disallow``, a
  redirect, 404 links, a printer-friendly duplicate, ETag / Last-Modified), three PDFs, two
  Word files and a Notion export, each article in exactly one of them, plus broken files (a
  scanned PDF, a password-protected PDF, a truncated PDF, an empty .docx, a .zip).
- Ingest: the path ``askdesk index build KB --url URL`` takes — the CLI's own argument parser,
  :func:`core.retrieval.crawl.crawl_for_build` (crawl into ``KB/web/<host>``, state beside the
  index), then :func:`core.retrieval.build.build_index` over the whole folder with the
  configured embedder. Then a second crawl and build (incremental: conditional requests
  answered 304, nothing re-embedded). A crash is any exception out of a stage; every skipped
  URL and file is listed with its reason, and each broken file is checked for its expected one.
- Retrieval: the ``askdesk eval`` logic (:func:`core.retrieval.evaluation.evaluate` over a
  :class:`~core.retrieval.retriever.Retriever` of that index) on GNOME Help's labelled in-scope
  questions, each mapped to the source (page URL or file) that holds its article in the mixed
  KB. A question labelled with several articles counts as right when any of them ranks first;
  recall@1 against the first-listed article alone is reported beside it.

Targets (issue "Ingest real help centres"): 0 crashes, every skipped file reported with its
reason, recall@1 >= 0.9. Tables on stdout; numbers in ``benchmarks/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import console, save, table
from benchmarks.kb_fixtures import MixedKB, build_mixed_kb, labelled_questions, serve_site

CLI_RATE = 8.0  # `askdesk index build --url` defaults
CLI_CONCURRENCY = 4


@dataclass(slots=True)
class IngestResult:
    """What the crawl and the two builds did; :func:`ingest` fills it, tests read it."""

    kb: MixedKB
    index_dir: Path
    base_url: str = ""
    crashes: list[str] = field(default_factory=list)  # "stage: ExceptionType: message"
    pages: int = 0  # pages in the crawl folder after the first crawl
    requests: int = 0
    crawl_seconds: float = 0.0
    skipped_urls: list[tuple[str, str]] = field(default_factory=list)
    files: int = 0  # files the build read (crawled pages included)
    loaded_files: int = 0  # files that gave passages
    passages: int = 0
    build_seconds: float = 0.0
    skipped_files: dict[str, str] = field(default_factory=dict)  # kb-relative path → reason
    recrawl_not_modified: int = 0  # 304 answers to the second crawl
    recrawl_unchanged: int = 0
    recrawl_requests: int = 0
    recrawl_seconds: float = 0.0
    rebuild_new: int = 0  # passages embedded again by the second build
    rebuild_up_to_date: bool = False
    log: str = ""  # what the CLI path printed (skipped lines, summaries, warnings)

    @property
    def missing_reasons(self) -> dict[str, str]:
        """Broken files of the fixture not reported, or reported without their expected reason."""
        return {path: reason for path, reason in self.kb.bad_files.items()
                if reason.casefold() not in self.skipped_files.get(path, "").casefold()}


def _short(result: IngestResult, text: str) -> str:
    """``text`` without the served address: ``http://127.0.0.1:PORT/x`` → ``/x``, ``web/127.0.0.1_PORT/`` → ``web/…/``."""
    if not result.base_url:
        return text
    folder = "web/" + result.base_url.split("://", 1)[1].replace(":", "_") + "/"
    return text.replace(result.base_url, "").replace(folder, "web/…/")


def _crash(result: IngestResult, stage: str, exc: BaseException) -> None:
    result.crashes.append(f"{stage}: {type(exc).__name__}: {exc}")


def ingest(root: Path, settings: Any, rate: float = CLI_RATE, concurrency: int = CLI_CONCURRENCY) -> IngestResult:
    """Build the mixed KB under ``root``, crawl its site and build the index twice (see the protocol)."""
    from bots.cli import build_parser
    from core.retrieval.build import build_index
    from core.retrieval.crawl import crawl_for_build

    kb = build_mixed_kb(root)
    index_dir = root / "index"
    result = IngestResult(kb, index_dir)
    settings = settings.model_copy(update={"kb_dir": kb.kb_dir, "index_dir": index_dir})
    with serve_site(kb.site) as base:
        result.base_url = base
        args = build_parser().parse_args(["index", "build", str(kb.kb_dir), "--index", str(index_dir), "--url", f"{base}/",
                                          "--rate", str(rate), "--concurrency", str(concurrency), "--quiet"])
        quiet = io.StringIO()  # crawl_for_build prints what the CLI prints; the tables below say it all
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                crawl = crawl_for_build(args, kb.kb_dir, index_dir, progress=False)
            result.pages, result.requests, result.crawl_seconds = crawl.pages, crawl.requests, crawl.seconds
            result.skipped_urls = [(s.url.removeprefix(base), s.reason) for s in crawl.skipped]
        except Exception as exc:  # noqa: BLE001 - a crash is a measured outcome here
            _crash(result, "crawl", exc)
        try:
            with contextlib.redirect_stderr(quiet):  # its warnings repeat the skipped files listed below
                build = build_index(settings, kb.kb_dir, index_dir)
            result.files, result.passages, result.build_seconds = build.files, build.passages, build.seconds
            result.skipped_files = {p.path: p.reason for p in build.problems}
            result.loaded_files = build.files - sum(1 for p in build.problems if not p.reason.startswith("unsupported"))
        except Exception as exc:  # noqa: BLE001
            _crash(result, "build", exc)
        before = kb.site.not_modified
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                again = crawl_for_build(args, kb.kb_dir, index_dir, progress=False)
            result.recrawl_not_modified = kb.site.not_modified - before
            result.recrawl_unchanged, result.recrawl_requests = again.unchanged, again.requests
            result.recrawl_seconds = again.seconds
            with contextlib.redirect_stderr(quiet):
                rebuild = build_index(settings, kb.kb_dir, index_dir)
            result.rebuild_new, result.rebuild_up_to_date = rebuild.new, rebuild.up_to_date
        except Exception as exc:  # noqa: BLE001
            _crash(result, "incremental crawl and build", exc)
    result.log = quiet.getvalue()
    return result


def evaluate_kb(result: IngestResult, settings: Any, k: int) -> dict[str, Any]:
    """The ``askdesk eval`` metrics over the built index; also against the first-listed source alone."""
    from core.retrieval.evaluation import LabelledQuestion, evaluate, read_questions
    from core.retrieval.retriever import Retriever

    path = result.index_dir.parent / "questions.csv"
    labelled_questions(result.kb.expected, result.base_url, path)
    questions = read_questions(path)
    retriever = Retriever(settings.model_copy(update={"kb_dir": result.kb.kb_dir, "index_dir": result.index_dir}))
    report = evaluate(retriever, questions, k=k)
    first_only = evaluate(retriever, [LabelledQuestion(q.question, q.expected.split(" | ")[0]) for q in questions], k=k)
    def short(text: str) -> str:
        return _short(result, text)

    return {
        "questions": report.questions,
        "several_right_sources": sum(" | " in q.expected for q in questions),
        "recall@1": report.recall_at_1, f"recall@{k}": report.recall_at_k, "mrr": report.mrr,
        "recall@1_first_listed_source": first_only.recall_at_1,
        "unresolved_expected": report.unresolved,
        "not_first": [{"question": o.question, "expected": short(o.expected), "rank": o.rank,
                       "ranked_first": short(o.top or "-")} for o in report.outcomes if o.rank != 1],
        "per_question": [{"question": o.question, "expected": short(o.expected), "rank": o.rank,
                          "confidence": o.confidence} for o in report.outcomes],
    }


def run(rate: float, concurrency: int, k: int, details: bool) -> dict[str, Any]:
    from core.config import get_settings

    settings = get_settings()
    root = Path(tempfile.mkdtemp(prefix="askdesk-ingest-"))
    try:
        started = time.perf_counter()
        result = ingest(root, settings, rate, concurrency)
        ingest_seconds = time.perf_counter() - started
        retrieval: dict[str, Any] = {}
        if not any(c.startswith("build") for c in result.crashes):
            try:
                retrieval = evaluate_kb(result, settings, k)
            except Exception as exc:  # noqa: BLE001
                _crash(result, "eval", exc)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    crawl_rate = result.pages / result.crawl_seconds if result.crawl_seconds else 0.0
    build_docs = result.files / result.build_seconds if result.build_seconds else 0.0
    build_passages = result.passages / result.build_seconds if result.build_seconds else 0.0
    missing = result.missing_reasons
    bad = result.kb.bad_files
    table("Ingest of a mixed help centre (website + PDF + Word + Notion, GNOME Help)", ["measure", "value"], [
        ["crashes", len(result.crashes)],
        [f"pages crawled (requests; rate limit {rate:g}/s, {concurrency} parallel)", f"{result.pages} ({result.requests})"],
        ["URLs skipped by the crawl", len(result.skipped_urls)],
        ["crawl time s", result.crawl_seconds],
        ["crawl pages/s", crawl_rate],
        ["files read by the build (crawled pages included)", result.files],
        ["files loaded (gave passages)", result.loaded_files],
        ["files skipped with a reason", len(result.skipped_files)],
        ["broken fixture files reported with their expected reason", f"{len(bad) - len(missing)}/{len(bad)}"],
        ["passages", result.passages],
        ["build time s (load, chunk, embed, BM25, classifier)", result.build_seconds],
        ["build pages/s (files read per second)", build_docs],
        ["build passages/s", build_passages],
        ["second crawl: 304 Not Modified", f"{result.recrawl_not_modified} of {result.recrawl_requests} requests"],
        ["second crawl: pages unchanged", result.recrawl_unchanged],
        ["second build: passages re-embedded", f"{result.rebuild_new} (up to date: {result.rebuild_up_to_date})"],
    ])
    skipped = [[f"URL {url}", _short(result, reason)] for url, reason in result.skipped_urls]
    skipped += [[f"file {_short(result, path)}", reason] for path, reason in sorted(result.skipped_files.items())]
    table(f"Skipped, with reasons ({len(skipped)})", ["URL or file", "reason"], skipped)
    for line in result.crashes:
        console.print(f"[red]crash[/red] {line}")
    if result.crashes:
        console.print(result.log, markup=False, highlight=False)
    for path, reason in missing.items():
        console.print(f"[red]not reported as expected[/red] {path}: want {reason!r}, "
                      f"got {result.skipped_files.get(path, 'nothing')!r}")
    if retrieval:
        table(f"Retrieval on the mixed KB (`askdesk eval` logic, {retrieval['questions']} labelled questions, "
              f"{retrieval['several_right_sources']} with several right articles)", ["metric", "value"], [
            ["recall@1", retrieval["recall@1"]],
            [f"recall@{k}", retrieval[f"recall@{k}"]],
            ["MRR", retrieval["mrr"]],
            ["recall@1, first-listed article only", retrieval["recall@1_first_listed_source"]],
        ])
        if retrieval["unresolved_expected"]:
            console.print(f"[yellow]expected sources that match no document:[/] {', '.join(retrieval['unresolved_expected'])}")
        rows = retrieval["per_question"] if details else retrieval["not_first"]
        if rows:
            table("per question" if details else "not ranked first", list(rows[0]), [list(r.values()) for r in rows])

    data = {
        "rate_limit": rate, "concurrency": concurrency, "embedding_model": settings.embedding_model,
        "crashes": result.crashes,
        "crawl": {"pages": result.pages, "requests": result.requests, "seconds": round(result.crawl_seconds, 3),
                  "pages_per_s": round(crawl_rate, 2),
                  "skipped": [{"url": u, "reason": r} for u, r in result.skipped_urls]},
        "build": {"files": result.files, "loaded_files": result.loaded_files, "passages": result.passages,
                  "seconds": round(result.build_seconds, 3), "pages_per_s": round(build_docs, 2),
                  "passages_per_s": round(build_passages, 2),
                  "skipped": [{"path": p, "reason": r} for p, r in sorted(result.skipped_files.items())],
                  "broken_files_not_reported_as_expected": missing},
        "incremental": {"not_modified": result.recrawl_not_modified, "requests": result.recrawl_requests,
                        "unchanged": result.recrawl_unchanged, "seconds": round(result.recrawl_seconds, 3),
                        "rebuild_new_passages": result.rebuild_new, "rebuild_up_to_date": result.rebuild_up_to_date},
        "ingest_seconds": round(ingest_seconds, 3),
        "retrieval": {key: value for key, value in retrieval.items() if key != "per_question" or details},
    }
    save("ingest", data)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=CLI_RATE,
                        help=f"crawl requests per second at most (default {CLI_RATE:g}, as `index build --url`)")
    parser.add_argument("--concurrency", type=int, default=CLI_CONCURRENCY, help="parallel crawl requests")
    parser.add_argument("--k", type=int, default=3, help="report recall@K (default 3)")
    parser.add_argument("--details", action="store_true", help="print every question's rank")
    args = parser.parse_args(argv)
    data = run(args.rate, args.concurrency, args.k, args.details)
    return 1 if data["crashes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
