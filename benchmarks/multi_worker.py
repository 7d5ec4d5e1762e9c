"""Several Slack HTTP workers on one PostgreSQL database: every event answered exactly once.

Starts N worker processes, each the real Slack HTTP server (``serve_started``: signature check,
inbox before the 200, Bolt, the inbox's lease loop, graceful stop) against one PostgreSQL
database, in front of the fake Slack Web API on loopback. The workers answer with a scripted
assistant (no index, no model; it records the turn and profile like the real one), so what is
measured is delivery: claims, the inbox and the acknowledgement, not generation.

Then it sends signed ``app_mention`` events round-robin across the workers, the way Slack
retries: each event goes to worker ``n % N`` and, at the same moment, as ``X-Slack-Retry-Num: 1``
to the next worker (two workers racing for one event); every third event comes a third time, a
little later, to the third worker (a late retry). It counts ``chat.postMessage`` calls per
event at the fake Slack: *duplicates* are answers beyond the first, *lost* are events with none.
Acknowledgement latency is measured per worker, from sending the request to reading its 200.

    python -m benchmarks.multi_worker                          # 3 workers, 300 events
    python -m benchmarks.multi_worker --workers 3 --events 60 --rate 100
    python -m benchmarks.multi_worker --database-url postgresql://user@host/db

The database is ``--database-url`` (or ``ASKDESK_DATABASE_URL``, else the local test server
``postgresql://postgres@127.0.0.1:5432/test``); the run gets its own schema there, dropped at
the end. Numbers go to ``benchmarks/results/multi_worker.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
START_TIMEOUT_S = 120.0
ANSWER_TIMEOUT_S = 120.0
USERS = 100  # distinct askers, so per-user fairness limits never turn an event away


# ---- the worker process ----------------------------------------------------------------------------
def _answer_text(question: str) -> str:
    return f"Scripted answer to: {question}"


def _scripted_assistant(settings: Any, store: Any) -> Any:
    """The real Assistant (settings, scopes, store, hand-off) whose pipeline is replaced by a script."""
    from core.assistant import Assistant
    from core.messages import Answer

    class _NoRetriever:
        """Never searched: the answer is scripted."""

        def retrieve(self, *args: Any, **kwargs: Any) -> list[Any]:
            return []

    class ScriptedAssistant(Assistant):
        def __init__(self) -> None:
            super().__init__(settings, retriever=_NoRetriever(), store=store)

        def warm_up(self) -> None:  # nothing to load
            return None

        def _record(self, message: Any) -> Answer:
            text = _answer_text(message.text)
            conv = self.store.conversation(message.platform, message.conversation_id, message.thread_id)
            turn = self.store.record_turn(conv, message.user_id, message.text, text, [], 1.0, False, "extractive",
                                          "en", 0.0)
            if message.user_id:
                self.store.touch_profile(message.platform, message.user_id, message.user_name, "en")
            return Answer(text=text, confidence=1.0, mode="extractive", turn_id=turn)

        async def stream(self, message: Any):  # type: ignore[override]
            yield await asyncio.to_thread(self._record, message)

    return ScriptedAssistant()


def _time_acks(record: Path) -> None:
    """Time each Events API delivery inside the worker (from the handler's start to its response),
    written to ``record`` at exit: the acknowledgement without the load generator's own delays."""
    import atexit

    from aiohttp import web

    from bots.slack import serve

    spent: list[float] = []
    atexit.register(lambda: record.write_text(json.dumps(spent), encoding="utf-8"))
    make = serve.make_web_app

    @web.middleware
    async def timed(request: web.Request, handler: Any) -> web.StreamResponse:
        t0 = time.perf_counter()
        try:
            return await handler(request)
        finally:
            if request.path == serve.EVENTS_PATH and request.content_type == "application/json":
                spent.append(time.perf_counter() - t0)

    def make_timed(*args: Any, **kwargs: Any) -> web.Application:
        app = make(*args, **kwargs)
        app.middlewares.insert(0, timed)
        return app

    serve.make_web_app = make_timed  # start_http builds the app through this name


async def _serve_worker(port: int, api_url: str, record: Path | None) -> int:
    from bots.runtime import open_runtime, stop_on_signals
    from bots.slack.config import SlackSettings
    from bots.slack.serve import check_start, serve_started
    from core.config import Settings
    from core.store import open_store
    from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET

    if record is not None:
        _time_acks(record)
    settings = Settings()
    slack = SlackSettings(_env_file=None, bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_base_url=api_url,
                          stream_interval=0.2)
    args = argparse.Namespace(http=True, host="127.0.0.1", port=port)
    start = await check_start(args, slack)
    stop = stop_on_signals()
    store = open_store(settings)
    try:
        async with open_runtime(settings, ("slack",), assistant=_scripted_assistant(settings, store),
                                store=store) as runtime:
            await runtime.warm_up()
            return await serve_started(start, args, settings, slack, runtime, stop)
    finally:
        store.close()


# ---- the database ------------------------------------------------------------------------------------
def _with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def _create_schema(url: str) -> tuple[str, str]:
    import psycopg

    name = f"askdesk_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return name, _with_search_path(url, name)


def _drop_schema(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '20s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# ---- the driver ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _worker_env(database_url: str | None, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "ASKDESK_"))}
    if database_url:
        env["ASKDESK_DATABASE_URL"] = database_url
    env.update({
        "ASKDESK_DB_PATH": str(workdir / "askdesk.db"),  # only without a URL (the SQLite baseline)
        "ASKDESK_KB_DIR": str(ROOT / "sample_kb"), "ASKDESK_INDEX_DIR": str(workdir / "index"),
        "ASKDESK_CACHE_DIR": str(workdir / "cache"), "ASKDESK_DRAIN_SECONDS": "10",
        "ASKDESK_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    })
    return env


async def _wait_ready(session: Any, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    from benchmarks.common import wait_ready

    await wait_ready(session, url, proc, log, timeout_s=START_TIMEOUT_S, what="worker", poll_s=0.1)


async def run(database_url: str | None, *, workers: int = 3, events: int = 300, rate: float = 100.0,
              seed: int = 7, workdir: Path | None = None, feedback: bool = True) -> dict[str, Any]:
    """Serve ``events`` events with retries across ``workers`` processes on ``database_url`` (its schema
    must be empty or askdesk's own; None: one SQLite file in ``workdir``, the single-host baseline);
    returns the counts and latencies."""
    import aiohttp

    from bots.slack.blocks import ACTION_UP
    from core.store import Store
    from core.store_postgres import PostgresStore
    from tests.fakes.slack_api import (SIGNING_SECRET, FakeSlack, block_action, event_callback, interaction_body,
                                       mention, sign)

    rng = random.Random(seed)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="askdesk-workers-"))
    fake = await FakeSlack().start()
    env = _worker_env(database_url, workdir)
    ports = [_free_port() for _ in range(workers)]
    logs = [workdir / f"worker{w}.log" for w in range(workers)]
    records = [workdir / f"worker{w}-acks.json" for w in range(workers)]
    procs: list[subprocess.Popen[bytes]] = []
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    acks: list[list[float]] = [[] for _ in range(workers)]  # Events API deliveries
    click_acks: list[list[float]] = [[] for _ in range(workers)]  # interactivity (answered after Bolt ran)
    statuses: Counter[int] = Counter()
    exit_codes: list[int | None] = []
    started = time.perf_counter()
    try:
        for w, port in enumerate(ports):
            with logs[w].open("ab") as handle:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.multi_worker", "--serve-worker", "--port", str(port),
                     "--api-url", fake.api_url, "--record", str(records[w])],
                    cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True))
        for w, port in enumerate(ports):
            await _wait_ready(session, f"http://127.0.0.1:{port}/readyz", procs[w], logs[w])
        ready_s = time.perf_counter() - started

        urls = [f"http://127.0.0.1:{port}/slack/events" for port in ports]
        payloads = [event_callback(mention(f"question number {n}", ts=f"1700{n:06d}.000100",
                                           user=f"U{n % USERS:04d}"), event_id=f"EvMW{n:06d}")
                    for n in range(events)]

        async def deliver(worker: int, body: str, retry: int | None, content_type: str = "application/json") -> None:
            headers = {"Content-Type": content_type, **sign(SIGNING_SECRET, body)}
            if retry is not None:
                headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
            t0 = time.perf_counter()
            async with session.post(urls[worker], data=body.encode(), headers=headers) as response:
                await response.read()
                (acks if content_type == "application/json" else click_acks)[worker].append(time.perf_counter() - t0)
                statuses[response.status] += 1

        async def send(n: int) -> None:
            body = json.dumps(payloads[n])
            first, second, third = n % workers, (n + 1) % workers, (n + 2) % workers
            await asyncio.gather(deliver(first, body, None), deliver(second, body, 1))  # a race for one event
            if n % 3 == 0:
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                await deliver(third, body, 2)  # a late retry, usually after the answer

        sending = time.perf_counter()
        tasks = []
        for n in range(events):
            tasks.append(asyncio.ensure_future(send(n)))
            await asyncio.sleep(1.0 / rate)
        await asyncio.gather(*tasks)
        sent_s = time.perf_counter() - sending

        threads = {p["event"]["ts"]: n for n, p in enumerate(payloads)}

        def posts() -> Counter[int]:
            return Counter(threads[c.args.get("thread_ts")] for c in fake.calls_to("chat.postMessage")
                           if c.args.get("thread_ts") in threads)

        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while len(posts()) < events and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        all_answered_s = time.perf_counter() - sending
        await asyncio.sleep(1.5)  # anything posted twice would show by now
        counts = posts()
        answers = {n: [(ts, m) for (channel, ts), m in fake.messages.items()
                       if m.get("thread_ts") == payloads[n]["event"]["ts"]] for n in range(events)}
        wrong = sum(1 for n in range(events)
                    if answers[n] and _answer_text(f"question number {n}") not in answers[n][0][1]["text"])

        # Feedback: every asker clicks 👍 under their answer; the click reaches one worker and, as
        # Slack's retry of the same delivery (same trigger_id), another one at the same moment.
        clicks = 0
        if feedback:
            async def click(n: int) -> None:
                if not answers[n]:
                    return
                ts, _ = answers[n][0]
                payload = block_action(fake, "C0GENERAL", ts, ACTION_UP, user=payloads[n]["event"]["user"])
                body = interaction_body(payload)
                await asyncio.gather(deliver((n + 1) % workers, body, None, "application/x-www-form-urlencoded"),
                                     deliver((n + 2) % workers, body, 1, "application/x-www-form-urlencoded"))

            click_tasks = []
            for n in range(events):
                click_tasks.append(asyncio.ensure_future(click(n)))
                clicks += bool(answers[n])
                await asyncio.sleep(1.0 / rate)
            await asyncio.gather(*click_tasks)
            deadline = time.monotonic() + ANSWER_TIMEOUT_S
            while len(fake.ephemerals) < clicks and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
        thanks = Counter((e["user"], e["thread_ts"]) for e in fake.ephemerals)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:  # the fake Slack keeps serving while they drain
            try:
                exit_codes.append(await asyncio.to_thread(proc.wait, 60))
            except subprocess.TimeoutExpired:
                proc.kill()
                exit_codes.append(await asyncio.to_thread(proc.wait))
        await session.close()
        await fake.close()

    store = PostgresStore(database_url) if database_url else Store(workdir / "askdesk.db")
    try:
        turns = len(store.turns_since())
        pending = store.inbox_pending("slack")
        answered_rows = sum(1 for n in range(events)
                            if (item := store.inbox_item("slack", payloads[n]["event_id"])) and item.status == "answered")
        integrity = store.integrity_ok()
        votes = store.feedback_since()
    finally:
        store.close()

    inside = [json.loads(r.read_text()) if r.exists() else [] for r in records]

    def ms(values: list[float], q: float) -> float:
        return round(_percentile(values, q) * 1000, 2)

    per_worker = [{
        "worker": w, "deliveries": len(acks[w]),
        "ack_p50_ms": ms(acks[w], 50), "ack_p99_ms": ms(acks[w], 99), "ack_max_ms": ms(acks[w], 100),
        "server_ack_p50_ms": ms(inside[w], 50), "server_ack_p99_ms": ms(inside[w], 99),
        "server_ack_max_ms": ms(inside[w], 100),
        "clicks": len(click_acks[w]), "click_ack_p50_ms": ms(click_acks[w], 50),
        "click_ack_p99_ms": ms(click_acks[w], 99),
    } for w in range(workers)]
    return {
        "backend": "postgresql" if database_url else "sqlite", "workers": workers, "events": events, "deliveries": sum(len(a) for a in acks),
        "click_deliveries": sum(len(a) for a in click_acks), "rate_events_per_s": rate,
        "answered": len(counts), "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "lost": events - len(counts), "wrong_text": wrong, "statuses": dict(statuses),
        "clicks": clicks, "feedback_recorded": len(votes), "feedback_thanks_sent": sum(thanks.values()),
        "feedback_thanked_twice": sum(c - 1 for c in thanks.values() if c > 1),
        "turns_recorded": turns, "inbox_answered": answered_rows, "inbox_pending": pending, "integrity_ok": integrity,
        "exit_codes": exit_codes, "per_worker": per_worker,
        "ack_p50_ms": round(_percentile([x for a in acks for x in a], 50) * 1000, 2),
        "ack_p99_ms": round(_percentile([x for a in acks for x in a], 99) * 1000, 2),
        "workers_ready_s": round(ready_s, 2), "send_s": round(sent_s, 2), "all_answered_s": round(all_answered_s, 2),
        "cpu_cores": os.cpu_count(), "logs": str(workdir),
    }


def report(result: dict[str, Any]) -> None:
    from benchmarks.common import table

    table(f"{result['workers']} Slack HTTP workers on one {result['backend']} database: {result['events']} events, "
          f"{result['deliveries']} deliveries with retries; acknowledgement as the sender saw it and inside the worker",
          ["worker", "deliveries", "ack p50 ms", "ack p99 ms", "ack max ms", "in worker p50", "in worker p99"],
          [[w["worker"], w["deliveries"], w["ack_p50_ms"], w["ack_p99_ms"], w["ack_max_ms"], w["server_ack_p50_ms"],
            w["server_ack_p99_ms"]] for w in result["per_worker"]])
    table("delivery", ["events", "answered", "duplicates", "lost", "wrong text", "turns", "inbox pending", "integrity"],
          [[result["events"], result["answered"], result["duplicates"], result["lost"], result["wrong_text"],
            result["turns_recorded"], result["inbox_pending"], "ok" if result["integrity_ok"] else "BAD"]])
    table("feedback clicks (each delivered to two workers at once)", ["clicks", "stored", "thanked", "thanked twice"],
          [[result["clicks"], result["feedback_recorded"], result["feedback_thanks_sent"],
            result["feedback_thanked_twice"]]])
    table("click acknowledgements (after Bolt ran the claim)", ["worker", "clicks", "p50 ms", "p99 ms"],
          [[w["worker"], w["clicks"], w["click_ack_p50_ms"], w["click_ack_p99_ms"]] for w in result["per_worker"]])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multi_worker", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0, help="new events per second (retries come on top)")
    parser.add_argument("--database-url", default=os.environ.get("ASKDESK_DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--sqlite", action="store_true",
                        help="baseline: the workers share one SQLite file instead (one host only)")
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_worker:
        return asyncio.run(_serve_worker(args.port, args.api_url, args.record))

    from benchmarks.common import save

    if args.sqlite:
        result = asyncio.run(run(None, workers=args.workers, events=args.events, rate=args.rate))
        report(result)
        save("multi_worker_sqlite", result)
        return 0 if result["duplicates"] == 0 and result["lost"] == 0 else 1
    import psycopg

    try:
        schema, url = _create_schema(args.database_url)
    except psycopg.OperationalError as exc:
        from core.store_postgres import describe

        print(f"multi_worker: no PostgreSQL server answers at {describe(args.database_url)} "
              f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}); pass --database-url.",
              file=sys.stderr)
        return 2
    try:
        result = asyncio.run(run(url, workers=args.workers, events=args.events, rate=args.rate))
    finally:
        _drop_schema(args.database_url, schema)
    report(result)
    save("multi_worker", result)
    ok = (result["duplicates"] == 0 and result["lost"] == 0 and result["wrong_text"] == 0 and result["integrity_ok"]
          and result["feedback_recorded"] == result["clicks"] == result["feedback_thanks_sent"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
