"""The ``askdesk`` command line: chat, ask, index build, eval, serve.

Errors of the askdesk hierarchy are printed as one readable line (``--debug`` adds the
traceback); heavy imports happen inside the sub-commands so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from core.config import Settings, get_settings
from core.errors import AskdeskError
from core.redaction import Redactor, configure_logging, secrets_from_env


def settings_error(exc: ValidationError) -> str:
    """One line naming the environment variable(s) at fault, e.g. ``ASKDESK_TOP_K: must be ≤ 20 (got '99')``."""
    prefix = {"Settings": "ASKDESK_", "SlackSettings": "SLACK_", "TelegramSettings": "TELEGRAM_"}.get(exc.title, "")
    problems = []
    for error in exc.errors():
        name = prefix + "_".join(str(part) for part in error["loc"]).upper()
        problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
    # A mistyped URL or token must not end up on the terminal or in a log: passwords in URLs and token shapes are masked.
    return Redactor(secrets_from_env())(
        "invalid setting " + "; ".join(problems) + ". Fix the environment variable or .env.")


def _version() -> str:
    """The installed package's version (package metadata), or 'unknown' when run from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("askdesk")
    except PackageNotFoundError:
        return "unknown"


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in ("transformers", "sentence_transformers", "httpx", "faiss", "bm25s", "jieba"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _assistant(settings: Settings):
    from core.assistant import Assistant

    return Assistant(settings, store=_store(settings))


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bots.terminal.chat import chat

    assistant = _assistant(settings)
    assistant.warm_up()
    return chat(assistant, new=getattr(args, "new", False))


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bots.terminal.chat import ask_once

    return ask_once(_assistant(settings), " ".join(args.question), as_json=args.json, conversation_id=args.conversation)


def _store(settings: Settings):
    from core.store import open_store

    return open_store(settings)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """``askdesk db upgrade|current``: the database's schema (PostgreSQL via Alembic; SQLite migrates itself)."""
    if settings.database_url is None:
        store = _store(settings)  # SQLite: opening it migrates it
        print(f"SQLite database {settings.db_path}: schema version {store.schema_version} (migrated when opened).")
        store.close()
        return 0
    from core.store_postgres import HEAD_REVISION, current_revision, describe, migrate

    url = settings.database_url.get_secret_value()
    where = describe(url)
    try:
        if args.action == "upgrade":
            print(f"PostgreSQL {where}: schema at revision {migrate(url)} (head {HEAD_REVISION}).")
        else:
            print(f"PostgreSQL {where}: schema at revision {current_revision(url) or 'none'} (head {HEAD_REVISION}).")
    except Exception as exc:  # noqa: BLE001 - unreachable server, bad credentials: one line for the operator
        import psycopg

        from core.store_postgres import connection_error

        if isinstance(exc, psycopg.OperationalError):
            raise connection_error(url, exc) from exc
        raise
    return 0


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    """Delete everything stored about one person (a data-subject request)."""
    counts = _store(settings).forget_user(args.platform, args.user)
    print(f"Forgot {args.platform} user {args.user}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Apply ASKDESK_RETENTION_DAYS now (a serving bot also does this every few hours)."""
    from core.retention import purge_expired

    if settings.retention_days is None:
        print("ASKDESK_RETENTION_DAYS is not set: nothing is purged (data is kept until deleted).")
        return 0
    counts = purge_expired(_store(settings), settings)
    print(f"Purged data older than {settings.retention_days:g} days: "
          + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


def cmd_kb_add_qa(args: argparse.Namespace, settings: Settings) -> int:
    from core.learning import teach

    from core.scopes import load_scopes

    scope = load_scopes(settings).config.get(args.scope).name if args.scope else None  # a name that exists
    entry = teach(_store(settings), args.question, args.answer, author=args.author, source="cli", scope=scope)
    where = f" in scope {scope}" if scope else ""
    print(f"Saved as pending #{entry.id}{where}. Approve it with `askdesk kb review --approve {entry.id}`.")
    return 0


def cmd_kb_list(args: argparse.Namespace, settings: Settings) -> int:
    """The index's sources with passage counts, its build time, and every skipped file with its reason."""
    import json

    from rich.console import Console
    from rich.table import Table

    from core.retrieval.inventory import read_inventory

    inventory = read_inventory(Path(args.index_dir or settings.index_dir))
    if args.json:
        print(json.dumps(inventory.to_dict(), ensure_ascii=False, indent=2))
        return 0
    console = Console()
    table = Table(title=f"{inventory.passages} passages from {len(inventory.sources)} sources, "
                        f"built {inventory.built_at or 'at an unknown time'} from {inventory.kb_dir or '?'}")
    for column in ("source", "kind", "passages", "link"):
        table.add_column(column, justify="right" if column == "passages" else "left")
    for row in inventory.sources:
        table.add_row(row.source, row.kind, str(row.passages), row.url or "")
    console.print(table)
    for crawl in inventory.crawls:
        console.print(f"crawl of {crawl.start_url}: {crawl.pages} pages, last {crawl.crawled_at}, "
                      f"{len(crawl.skipped)} URLs skipped")
    skipped = [(s["path"], s["reason"]) for s in inventory.skipped]
    skipped += [(s["url"], s["reason"]) for crawl in inventory.crawls for s in crawl.skipped]
    if skipped:
        t = Table(title=f"skipped ({len(skipped)})")
        t.add_column("file or URL")
        t.add_column("reason")
        for where, reason in skipped:
            t.add_row(where, reason)
        console.print(t)
    else:
        console.print("No file was skipped.")
    return 0


def cmd_kb_review(args: argparse.Namespace, settings: Settings) -> int:
    """Approve/reject pending learned Q&A: by id with flags, else one by one at the prompt.

    Each entry is approved into the knowledge base of the scope it was learned in (``--scope``
    overrides it for the entries approved by this command); only those scopes' indexes are rebuilt.
    """
    from core.learning import approve, rebuild_all, reject, target_scope
    from core.scopes import load_scopes

    store = _store(settings)
    scopes = load_scopes(settings)
    if args.scope:
        scopes.config.get(args.scope)  # a name that exists, before anything is approved

    def scope_label(entry) -> str:  # type: ignore[no-untyped-def]
        if entry.scope is not None:
            return entry.scope
        return f"{scopes.config.default} (the default)" if scopes.config.default else "none (approve with --scope NAME)"

    decisions = [(i, "approve") for i in args.approve] + [(i, "reject") for i in args.reject]
    pending = store.learned_qas("pending")
    if not decisions:
        if not pending:
            print("No pending Q&A to review.")
            return 0
        for entry in pending:
            print(f"\n#{entry.id} ({entry.source}, by {entry.author or 'unknown'}, scope {scope_label(entry)})\n"
                  f"Q: {entry.question}\nA: {entry.answer}")
        if not sys.stdin.isatty():
            print("\nApprove or reject with --approve ID / --reject ID.")
            return 0
        for entry in pending:
            choice = input(f"#{entry.id}: [a]pprove, [r]eject, [s]kip? ").strip().lower()[:1]
            if choice in ("a", "r"):
                decisions.append((entry.id, "approve" if choice == "a" else "reject"))
    approved: list[str] = []  # the scopes whose knowledge base changed
    for qa_id, decision in decisions:
        try:
            if decision == "approve":
                approve(store, settings, qa_id, rebuild=False, scopes=scopes, scope=args.scope)
                entry = store.learned_qa(qa_id)
                scope = target_scope(scopes, args.scope or (entry.scope if entry else None), qa_id)
                approved.append(scope.name)
                print(f"#{qa_id} approved" + ("" if scopes.implicit else f" into scope {scope.name}"))
                continue
            reject(store, qa_id)
        except ValueError as exc:
            raise AskdeskError(str(exc)) from None
        print(f"#{qa_id} {decision}d")
    for name, report in rebuild_all(settings, approved, scopes):
        print(("" if scopes.implicit else f"scope {name}: ") + report.summary())
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from datetime import datetime, timezone

    from core.stats import compute_stats

    since = 0.0
    if args.since:
        try:
            moment = datetime.fromisoformat(args.since)
        except ValueError:
            raise AskdeskError(f"--since {args.since!r} is not a date; use YYYY-MM-DD or an ISO time.") from None
        since = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    embed = None
    if not args.no_grouping:
        from core.devices import resolve_device
        from core.retrieval.embedder import get_embedder

        embedder = get_embedder(settings.embedding_model, resolve_device(settings.device))
        embed = embedder.embed_queries
    stats = compute_stats(_store(settings), since, embed)
    if args.json:
        print(json.dumps(stats.to_dict(), ensure_ascii=False, indent=2))
        return 0
    rate = f"{stats.satisfaction:.0%}" if stats.satisfaction is not None else "n/a"
    latency = f"{stats.median_latency_s:.2f} s" if stats.median_latency_s is not None else "n/a"
    print(f"questions      {stats.questions}")
    print(f"answered       {stats.answered}")
    print(f"refused        {stats.refused}")
    print(f"escalated      {stats.escalated}")
    print(f"feedback       👍 {stats.thumbs_up}  👎 {stats.thumbs_down}  ({rate} positive)")
    print(f"median latency {latency}")
    if stats.top_unanswered:
        print("top unanswered questions (knowledge gaps):")
        for question, count in stats.top_unanswered:
            print(f"  {count:>4} × {question}")
    return 0


def cmd_index_build(args: argparse.Namespace, settings: Settings) -> int:
    from core.retrieval.build import run_build

    if getattr(args, "url", None):  # crawl the site into the KB folder first; the build below indexes it
        from core.retrieval.crawl import crawl_for_build

        crawl_for_build(args, Path(args.kb_dir or settings.kb_dir), Path(args.index_dir or settings.index_dir),
                        progress=not args.quiet)
    return run_build(args, settings)


def _eval_index(settings: Settings, kb_dir: Path) -> Path:
    """An index for ``kb_dir`` in the cache folder (one per KB and embedder, updated incrementally)."""
    import hashlib

    from core.retrieval.build import build_index
    from core.retrieval.embedder import embedding_identity

    key = hashlib.sha256(f"{kb_dir.absolute()}|{embedding_identity(settings)}".encode()).hexdigest()[:16]
    index_dir = Path(settings.cache_dir) / "eval-index" / key / "index"
    report = build_index(settings, kb_dir, index_dir)
    for problem in report.problems:
        print(f"skipped {problem}", file=sys.stderr)
    return index_dir


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Recall@1/@k and MRR of a labelled question set; with --out-of-scope, the gate's rates."""
    import json

    from core.retrieval.evaluation import evaluate, read_out_of_scope, read_questions
    from core.retrieval.retriever import Retriever

    questions = read_questions(args.questions)
    out_of_scope = read_out_of_scope(args.out_of_scope) if args.out_of_scope else []
    if args.kb:
        settings = settings.model_copy(update={"kb_dir": args.kb, "index_dir": _eval_index(settings, args.kb)})
    report = evaluate(Retriever(settings), questions, k=args.k, out_of_scope=out_of_scope,
                      threshold=args.threshold, mode=args.mode)
    if args.json:
        print(json.dumps(report.to_dict(details=args.details), ensure_ascii=False, indent=2))
    else:
        _print_eval(report, args.details)
    return 0


def _print_eval(report, details: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Retrieval: {report.questions} questions")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("recall@1", f"{report.recall_at_1:.3f}")
    table.add_row(f"recall@{report.k}", f"{report.recall_at_k:.3f}")
    table.add_row("MRR", f"{report.mrr:.3f}")
    table.add_row(f"answered at threshold {report.threshold:.2f}", f"{report.answer_rate:.3f}")
    if report.refusal_rate is not None:
        table.add_row(f"refused out-of-scope ({report.out_of_scope}) at {report.threshold:.2f}", f"{report.refusal_rate:.3f}")
        b = report.balanced
        table.add_row(
            "balanced threshold", f"{b['threshold']:.3f} (answer {b['answer_rate']:.3f}, refuse {b['refusal_rate']:.3f})"
        )
    console.print(table)
    if report.unresolved:
        console.print(f"[yellow]expected values that match no document:[/] {', '.join(report.unresolved)}")
    misses = [o for o in report.outcomes if o.rank != 1]
    if details or misses:
        rows = report.outcomes if details else misses
        t = Table(title="per question" if details else "not ranked first")
        for column in ("question", "expected", "rank", "confidence", "ranked first"):
            t.add_column(column)
        for o in rows:
            t.add_row(o.question, o.expected, str(o.rank or "-"), f"{o.confidence:.3f}", o.top or "-")
        console.print(t)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """What ``make run`` starts: every platform bot whose token is set, else the terminal chat."""
    from bots.runtime import configured_platforms

    if configured_platforms():
        return cmd_serve(build_parser().parse_args(["serve"]), settings)
    return cmd_chat(args, settings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """``askdesk serve [slack|telegram]``: the named platform, or every configured one in this process."""
    import asyncio

    from bots.runtime import configured_platforms, serve_together

    if args.platform:
        platforms: tuple[str, ...] = (args.platform,)
    else:
        platforms = configured_platforms()
        if not platforms:
            raise AskdeskError("No platform is configured: set SLACK_BOT_TOKEN and/or TELEGRAM_BOT_TOKEN "
                               "(environment or .env), or name one: `askdesk serve slack|telegram`.")
    if platforms == ("slack",):
        from bots.slack.serve import serve

        return serve(args, settings)
    return asyncio.run(serve_together(platforms, args, settings))


def build_parser() -> argparse.ArgumentParser:
    from core.retrieval.build import add_build_arguments

    parser = argparse.ArgumentParser(prog="askdesk", description="Grounded, cited answers from your knowledge base.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"askdesk {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("chat", help="interactive terminal chat (continues your last conversation)")
    p.add_argument("--new", action="store_true", help="start a fresh conversation")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("ask", help="answer one question and exit")
    p.add_argument("question", nargs="+")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")
    p.add_argument("--conversation", metavar="ID", help="continue the stored conversation ID (follow-ups)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("kb", help="grow the knowledge base from taught and agent-written Q&A")
    ksub = p.add_subparsers(dest="kb_command", required=True)
    k = ksub.add_parser("add-qa", help="teach a question and its answer (pending review)")
    k.add_argument("question")
    k.add_argument("answer")
    k.add_argument("--author", default=None)
    k.add_argument("--scope", metavar="NAME", help="the scope of ASKDESK_SCOPES_FILE it belongs to (default: the default scope)")
    k.set_defaults(func=cmd_kb_add_qa)
    k = ksub.add_parser("review", help="approve or reject pending Q&A; approved ones are indexed")
    k.add_argument("--approve", type=int, nargs="*", default=[], metavar="ID")
    k.add_argument("--reject", type=int, nargs="*", default=[], metavar="ID")
    k.add_argument("--scope", metavar="NAME",
                   help="approve into this scope instead of the one each entry was learned in")
    k.set_defaults(func=cmd_kb_review)
    k = ksub.add_parser("list", help="sources in the index, passage counts, last build, skipped files")
    k.add_argument("--index", dest="index_dir", type=Path, help="index folder (default: ASKDESK_INDEX_DIR)")
    k.add_argument("--json", action="store_true", help="print the inventory as JSON")
    k.set_defaults(func=cmd_kb_list)

    p = sub.add_parser("stats", help="questions, refusals, escalations, feedback, knowledge gaps")
    p.add_argument("--since", help="only events since this date (YYYY-MM-DD)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-grouping", action="store_true", help="group unanswered questions by text, not meaning")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("forget", help="delete one person's questions, feedback, profile and escalations")
    p.add_argument("--platform", required=True, choices=("slack", "telegram", "terminal"))
    p.add_argument("--user", required=True, help="the platform's user id (Slack U…, Telegram numeric id)")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("purge", help="delete data older than ASKDESK_RETENTION_DAYS now")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("db", help="the database schema: apply migrations (upgrade) or show the revision (current)")
    p.add_argument("action", choices=("upgrade", "current"))
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("run", help="serve Slack/Telegram when tokens are set, else chat in the terminal")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("index", help="manage the search index")
    isub = p.add_subparsers(dest="index_command", required=True)
    b = isub.add_parser("build", help="build or update the index (incremental, atomic)")
    add_build_arguments(b)
    b.add_argument("--url", help="crawl this help centre first (its host and path prefix) into KB_DIR/web/<host>")
    b.add_argument("--max-pages", type=int, default=2000, help="crawl at most this many pages (default 2000)")
    b.add_argument("--concurrency", type=int, default=4, help="parallel requests while crawling (default 4)")
    b.add_argument("--rate", type=float, default=8.0, help="requests per second at most while crawling (default 8)")
    b.set_defaults(func=cmd_index_build)

    p = sub.add_parser("eval", help="measure retrieval on a labelled question set")
    p.add_argument("questions", type=Path, help="CSV with question,expected (doc id, passage id, title or URL)")
    p.add_argument("--kb", type=Path, help="evaluate this knowledge base (indexed in the cache) instead of the configured index")
    p.add_argument("--k", type=int, default=5, help="report recall@K (default 5)")
    p.add_argument("--out-of-scope", type=Path, help="CSV of questions the KB cannot answer: report refusal rates")
    p.add_argument("--threshold", type=float, help="gate threshold (default: ASKDESK_THRESHOLD)")
    p.add_argument("--mode", choices=["hybrid", "dense", "lexical"], help="retrieval mode (default: ASKDESK_RETRIEVAL_MODE)")
    p.add_argument("--details", action="store_true", help="list every question, not only the misses")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="run every configured platform bot in one process, or the one named")
    p.add_argument("--http", action="store_true", help="Slack: Events API over HTTP at /slack/events")
    p.add_argument("--port", type=int, default=3000, help="Slack HTTP port (default 3000)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--webhook-url", help="Telegram: public HTTPS URL Telegram should post updates to")
    p.add_argument("--telegram-port", type=int, default=8443, help="Telegram webhook port (default 8443)")
    p.set_defaults(func=cmd_serve, platform=None)
    psub = p.add_subparsers(dest="platform", required=False)
    s = psub.add_parser("slack", help="Slack: Socket Mode when SLACK_APP_TOKEN is set, else --http")
    s.add_argument("--http", action="store_true", help="Events API over HTTP at /slack/events")
    s.add_argument("--port", type=int, default=3000)
    s.add_argument("--host", default="0.0.0.0")
    s.set_defaults(func=cmd_serve)
    t = psub.add_parser("telegram", help="Telegram: long polling, or a webhook with --webhook-url")
    t.add_argument("--webhook-url", help="public HTTPS URL Telegram should post updates to")
    t.add_argument("--port", type=int, default=8443)
    t.add_argument("--host", default="0.0.0.0")
    t.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        settings = get_settings()
    except ValidationError as exc:
        if args.debug:
            raise
        print(f"error: {settings_error(exc)}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.debug else getattr(logging, settings.log_level.upper(), logging.WARNING)
    configure_logging(level, message_text=settings.log_message_text)
    os.umask(0o077)  # the index, database and caches hold the knowledge base and people's questions
    if not args.debug:
        _quiet_libraries()
    try:
        if args.func in (cmd_chat, cmd_ask, cmd_run, cmd_serve):
            from core.devices import reserve_cores_for_decoding

            reserve_cores_for_decoding()  # before any model loads; see its docstring
        return int(args.func(args, settings) or 0)
    except AskdeskError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # SLACK_* / TELEGRAM_* settings read when a bot starts
        if args.debug:
            raise
        print(f"error: {settings_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
