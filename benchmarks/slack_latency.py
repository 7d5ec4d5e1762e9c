"""Slack adapter latency: signed event → HTTP ack, and → final answer, for n concurrent events.

Runs the real adapter (HTTP mode, signature checks, SQLite idempotency) and the real
pipeline with short generation. Slack's side — the fake Slack Web API on 127.0.0.1 and the
load generator that fires the n signed events at once — runs in a child process, as Slack
does in its own data centre, so the bot's process spends its time only on what it does in
production. The ack time is what Slack's 3-second limit applies to, measured while the
other questions are being answered; the answer time includes queueing behind the other
questions.

    python -m benchmarks.slack_latency [--n 50] [--max-new-tokens 8]

Prints a table and writes ``benchmarks/results/slack_latency.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, percentile, sample_questions, save


def _questions() -> list[str]:
    return [question for question, _ in sample_questions()]


def _slack_side(conn: Connection, n: int) -> None:
    """Child process: the fake Slack API plus the burst of signed events; reports raw timings."""
    asyncio.run(_slack_side_async(conn, n))


async def _slack_side_async(conn: Connection, n: int) -> None:
    import aiohttp

    from tests.fakes.slack_api import SIGNING_SECRET, FakeSlack, event_callback, mention, sign

    fake = await FakeSlack().start()
    conn.send((fake.api_url, fake.bot_token))
    url = await asyncio.to_thread(conn.recv)
    questions = _questions()

    async def deliver(session: aiohttp.ClientSession, i: int) -> tuple[str, float, float, int]:
        ts = f"1700009000.{i:06d}"
        body = json.dumps(event_callback(mention(questions[i % len(questions)], ts=ts)))
        headers = {"Content-Type": "application/json", **sign(SIGNING_SECRET, body)}
        sent = time.monotonic()
        async with session.post(url, data=body.encode(), headers=headers) as resp:
            await resp.read()
            status = resp.status
        return ts, sent, time.monotonic(), status

    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await deliver(session, n)  # warm the HTTP path and auth.test cache; not measured
            await fake.wait_for(lambda: fake.calls_to("reactions.remove"), timeout=120, what="the warm-up answer")
            fake.calls.clear()
            started = time.monotonic()
            sent = await asyncio.gather(*(deliver(session, i) for i in range(n)))
        done = {ts for ts, *_ in sent}

        def all_answered() -> bool:
            return done <= {c.args.get("timestamp") for c in fake.calls_to("reactions.remove")}

        await fake.wait_for(all_answered, timeout=60 + 30 * n, what=f"{n} answers")
        conn.send({
            "sent": sent,
            "wall": time.monotonic() - started,
            "answered_at": {c.args["timestamp"]: c.at for c in fake.calls_to("reactions.remove")},
            "answers_per_event": {ts: sum(1 for c in fake.calls_to("reactions.remove") if c.args.get("timestamp") == ts) for ts in done},
            "chat_post_message": len(fake.calls_to("chat.postMessage")),
            "chat_update": len(fake.calls_to("chat.update")),
        })
        await asyncio.to_thread(conn.recv)  # the bot has drained; now the API may go away
    except BaseException as exc:  # noqa: BLE001 - report to the parent instead of hanging it
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await fake.close()


async def _measure(n: int, max_new_tokens: int, workdir: Path) -> dict[str, Any]:
    from bots.slack.app import SlackBot
    from bots.slack.config import SlackSettings
    from bots.slack.serve import EVENTS_PATH, check_bot_token, make_client, start_http
    from core.assistant import Assistant
    from core.config import Settings
    from core.retrieval.build import build_index
    from core.store import Store
    from core.devices import reserve_cores_for_decoding
    from tests.fakes.slack_api import SIGNING_SECRET

    reserve_cores_for_decoding()  # as `askdesk serve slack` does
    settings = Settings(
        _env_file=None, kb_dir=ROOT / "sample_kb", index_dir=workdir / "index", db_path=workdir / "askdesk.db",
        cache_dir=ROOT / ".askdesk" / "cache", max_new_tokens=max_new_tokens,
    )
    build_index(settings, settings.kb_dir, settings.index_dir)
    assistant = Assistant(settings)
    await asyncio.to_thread(assistant.warm_up)

    conn, child_conn = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(target=_slack_side, args=(child_conn, n), daemon=True)
    child.start()
    api_url, bot_token = await asyncio.to_thread(conn.recv)
    slack = SlackSettings(_env_file=None, bot_token=bot_token, signing_secret=SIGNING_SECRET, api_base_url=api_url)
    client = make_client(slack)
    store = Store(settings.db_path)
    bot = SlackBot(assistant, store, slack, client, await check_bot_token(client))
    runner, port = await start_http(bot.build_app(), SIGNING_SECRET, "127.0.0.1", 0, spawn=bot.spawn, accept=bot.accept)
    try:
        conn.send(f"http://127.0.0.1:{port}{EVENTS_PATH}")
        report = await asyncio.to_thread(conn.recv)
        if "error" in report:
            raise RuntimeError(f"Slack side of the benchmark failed: {report['error']}")
    finally:
        await bot.drain(timeout=120)
        conn.send("done")
        await runner.cleanup()
        bot.close()
        store.close()
        await asyncio.to_thread(child.join, 30)

    sent, answered_at = report["sent"], report["answered_at"]
    ack = [(acked - t0) * 1000 for _, t0, acked, _ in sent]
    answer = [answered_at[ts] - t0 for ts, t0, _, _ in sent]
    return {
        "n": n,
        "max_new_tokens": max_new_tokens,
        "non_200": sum(1 for *_, status in sent if status != 200),
        "not_exactly_once": sum(1 for count in report["answers_per_event"].values() if count != 1),
        "ack_ms": {"p50": round(percentile(ack, 50), 1), "p99": round(percentile(ack, 99), 1), "max": round(max(ack), 1)},
        "answer_s": {"p50": round(percentile(answer, 50), 2), "p95": round(percentile(answer, 95), 2),
                     "p99": round(percentile(answer, 99), 2), "max": round(max(answer), 2)},
        "wall_s": round(report["wall"], 2),
        "answers_per_s": round(n / report["wall"], 2),
        "chat_post_message": report["chat_post_message"],
        "chat_update": report["chat_update"],
        "cpu_count": os.cpu_count(),
    }


def run(n: int = 50, max_new_tokens: int = 8) -> dict[str, Any]:
    """Measure ack and answer latency for ``n`` concurrent signed events; returns the numbers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="askdesk-bench-") as tmp:
        return asyncio.run(_measure(n, max_new_tokens, Path(tmp)))


def table(result: dict[str, Any]) -> str:
    ack, answer = result["ack_ms"], result["answer_s"]
    lines = [
        f"Slack adapter latency: {result['n']} concurrent events, max_new_tokens={result['max_new_tokens']}, "
        f"{result['cpu_count']} CPUs",
        f"{'':22} {'p50':>10} {'p95':>10} {'p99':>10} {'max':>10}",
        f"{'event → HTTP ack':22} {ack['p50']:>7.1f} ms {'':>10} {ack['p99']:>7.1f} ms {ack['max']:>7.1f} ms",
        f"{'event → final answer':22} {answer['p50']:>8.2f} s {answer['p95']:>8.2f} s {answer['p99']:>8.2f} s {answer['max']:>8.2f} s",
        f"all answered in {result['wall_s']:.1f} s ({result['answers_per_s']:.2f}/s); non-200 acks: {result['non_200']}; "
        f"events not answered exactly once: {result['not_exactly_once']}; "
        f"chat.postMessage {result['chat_post_message']}, chat.update {result['chat_update']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    args = parser.parse_args(argv)
    result = run(args.n, args.max_new_tokens)
    print(table(result))
    save("slack_latency", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
