"""Slack adapter latency: signed event → HTTP ack, and → final answer, for n concurrent events.

Runs the real adapter (HTTP mode, signature checks, SQLite idempotency) and the real
pipeline with short generation against the fake Slack API on 127.0.0.1. The ack time is
what Slack's 3-second limit applies to; the answer time includes queueing behind the
other questions (generation is serialised per process).

    python -m benchmarks.slack_latency [--n 50] [--max-new-tokens 8]

Prints a table and writes ``benchmarks/results/slack_latency.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, percentile, sample_questions, save


def _questions() -> list[str]:
    return [question for question, _ in sample_questions()]


async def _measure(n: int, max_new_tokens: int, workdir: Path) -> dict[str, Any]:
    import aiohttp

    from bots.slack.app import SlackBot
    from bots.slack.config import SlackSettings
    from bots.slack.serve import EVENTS_PATH, check_bot_token, make_client, start_http
    from core.assistant import Assistant
    from core.config import Settings
    from core.retrieval.build import build_index
    from core.store import Store
    from tests.fakes.slack_api import SIGNING_SECRET, FakeSlack, event_callback, mention, sign

    settings = Settings(
        _env_file=None, kb_dir=ROOT / "sample_kb", index_dir=workdir / "index", db_path=workdir / "askdesk.db",
        cache_dir=ROOT / ".askdesk" / "cache", max_new_tokens=max_new_tokens,
    )
    build_index(settings, settings.kb_dir, settings.index_dir)
    assistant = Assistant(settings)
    await asyncio.to_thread(assistant.warm_up)

    fake = await FakeSlack().start()
    slack = SlackSettings(_env_file=None, bot_token=fake.bot_token, signing_secret=SIGNING_SECRET, api_base_url=fake.api_url)
    client = make_client(slack)
    store = Store(settings.db_path)
    bot = SlackBot(assistant, store, slack, client, await check_bot_token(client))
    runner, port = await start_http(bot.build_app(), SIGNING_SECRET, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
    questions = _questions()

    async def deliver(session: aiohttp.ClientSession, i: int) -> tuple[str, float, float, int]:
        ts = f"1700009000.{i:06d}"
        body = json.dumps(event_callback(mention(questions[i % len(questions)], ts=ts)))
        sent = time.monotonic()
        async with session.post(url, data=body.encode(), headers={"Content-Type": "application/json", **sign(SIGNING_SECRET, body)}) as resp:
            await resp.read()
            status = resp.status
        return ts, sent, time.monotonic(), status

    try:
        async with aiohttp.ClientSession() as session:
            await deliver(session, n)  # warm the HTTP path and auth.test cache; not measured
            await fake.wait_for(lambda: fake.calls_to("reactions.remove"), timeout=120, what="the warm-up answer")
            fake.calls.clear()
            started = time.monotonic()
            sent = await asyncio.gather(*(deliver(session, i) for i in range(n)))
        done = {ts for ts, *_ in sent}

        def all_answered() -> bool:
            return done <= {c.args.get("timestamp") for c in fake.calls_to("reactions.remove")}

        await fake.wait_for(all_answered, timeout=60 + 30 * n, what=f"{n} answers")
        wall = time.monotonic() - started
        answered_at = {c.args["timestamp"]: c.at for c in fake.calls_to("reactions.remove")}
    finally:
        await bot.drain(timeout=120)
        await runner.cleanup()
        bot.close()
        store.close()
        await fake.close()

    ack = [(acked - t0) * 1000 for _, t0, acked, _ in sent]
    answer = [answered_at[ts] - t0 for ts, t0, _, _ in sent]
    return {
        "n": n,
        "max_new_tokens": max_new_tokens,
        "non_200": sum(1 for *_, status in sent if status != 200),
        "ack_ms": {"p50": round(percentile(ack, 50), 1), "p99": round(percentile(ack, 99), 1), "max": round(max(ack), 1)},
        "answer_s": {"p50": round(percentile(answer, 50), 2), "p99": round(percentile(answer, 99), 2), "max": round(max(answer), 2)},
        "wall_s": round(wall, 2),
        "answers_per_s": round(n / wall, 2),
        "chat_post_message": len(fake.calls_to("chat.postMessage")),
        "chat_update": len(fake.calls_to("chat.update")),
        "cpu_count": os.cpu_count(),
    }


def run(n: int = 50, max_new_tokens: int = 8) -> dict[str, Any]:
    """Measure ack and answer latency for ``n`` concurrent signed events; returns the numbers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="askdesk-bench-") as tmp:
        return asyncio.run(_measure(n, max_new_tokens, Path(tmp)))


def table(result: dict[str, Any]) -> str:
    rows = [
        ("event → HTTP ack", f"{result['ack_ms']['p50']:.1f} ms", f"{result['ack_ms']['p99']:.1f} ms", f"{result['ack_ms']['max']:.1f} ms"),
        ("event → final answer", f"{result['answer_s']['p50']:.2f} s", f"{result['answer_s']['p99']:.2f} s", f"{result['answer_s']['max']:.2f} s"),
    ]
    lines = [
        f"Slack adapter latency: {result['n']} concurrent events, max_new_tokens={result['max_new_tokens']}, "
        f"{result['cpu_count']} CPUs",
        f"{'':22} {'p50':>10} {'p99':>10} {'max':>10}",
    ]
    lines += [f"{name:22} {p50:>10} {p99:>10} {mx:>10}" for name, p50, p99, mx in rows]
    lines.append(
        f"all answered in {result['wall_s']:.1f} s ({result['answers_per_s']:.2f}/s); non-200 acks: {result['non_200']}; "
        f"chat.postMessage {result['chat_post_message']}, chat.update {result['chat_update']}"
    )
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
