"""Crash suite: kill the real bot (SIGKILL or SIGTERM) while questions are in flight, restart it,
and count questions lost, questions answered twice and database damage.

Each round starts ``askdesk serve`` as a separate process against a fake platform on
loopback (the fake Slack Web API + signed Events API posts, or the fake Telegram Bot API with
long polling), sends 10 different questions, kills the process at a random moment, starts it
again and lets the platform do what it does: Slack retries events that got no 200 (and, now
and then, ones that did); Telegram serves again whatever ``getUpdates`` offset was not
confirmed. A question is *lost* when no answer reaches its thread or chat, *answered twice*
when more than one answer message does.

    python -m benchmarks.crash_suite --rounds 20            # both adapters, both signals
    python -m benchmarks.crash_suite --adapter telegram --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.bot_process import bot_env, free_port, sample_index, start_bot, stop_bot
from benchmarks.common import ROOT

QUESTIONS = [
    "How long do refunds take?", "How do I reset my password?", "What does shipping to Canada cost?",
    "Can I change my delivery address?", "How many gift cards can I use on one order?",
    "How do I cancel my order?", "What are your phone hours?", "Do you ship internationally?",
    "How long is the password reset link valid?", "How do I return an item?",
]
START_TIMEOUT_S = 180.0
ANSWER_TIMEOUT_S = 120.0


@dataclass
class RoundResult:
    adapter: str
    signal: str
    killed_after_s: float
    lost: int = 0
    duplicates: int = 0
    integrity_ok: bool = True
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _env(workdir: Path, index_dir: Path, kb_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """Composed answers (no generator to load) and a short drain, so each round restarts quickly."""
    return bot_env(workdir, index_dir, kb_dir, {"ASKDESK_DRAIN_SECONDS": "2", "ASKDESK_ANSWER_MODE": "compose", **extra})


async def _wait_ready_http(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    from benchmarks.common import wait_ready

    await wait_ready(session, url, proc, log, timeout_s=START_TIMEOUT_S, what="bot", poll_s=0.2)


def _integrity(db: Path) -> bool:
    from core.store import Store

    store = Store(db)
    try:
        return store.integrity_ok()
    finally:
        store.close()


def _pending(db: Path) -> int:
    from core.store import Store

    store = Store(db)
    try:
        return store.inbox_pending()
    finally:
        store.close()


# ---- Slack -----------------------------------------------------------------------------------
async def slack_round(workdir: Path, index_dir: Path, kb_dir: Path, sig: signal.Signals, rng: random.Random) -> RoundResult:
    from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack, event_callback, mention, sign

    started = time.monotonic()
    fake = await FakeSlack().start()
    port = free_port()
    env = _env(workdir, index_dir, kb_dir, {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": fake.api_url, "SLACK_STREAM_INTERVAL": "0.2",
    })
    args = ["serve", "slack", "--http", "--host", "127.0.0.1", "--port", str(port)]
    log = workdir / "slack.log"
    events_url, health_url = f"http://127.0.0.1:{port}/slack/events", f"http://127.0.0.1:{port}/healthz"
    result = RoundResult("slack", sig.name, 0.0)
    payloads = [event_callback(mention(q, ts=f"{1_800_000_000 + i}.000100", channel=f"CQ{i:02d}"))
                for i, q in enumerate(QUESTIONS)]
    acked: set[str] = set()
    async with aiohttp.ClientSession() as session:

        async def deliver(payload: dict, retry: int | None = None) -> None:
            body = json.dumps(payload)
            headers = {"Content-Type": "application/json", **sign(SIGNING_SECRET, body)}
            if retry:
                headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
            try:
                async with session.post(events_url, data=body.encode(), headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=3)) as response:
                    if response.status == 200:
                        acked.add(payload["event_id"])
            except (aiohttp.ClientError, TimeoutError):
                pass  # the process died under the request: Slack will retry

        proc = start_bot(args, env, log)
        try:
            await _wait_ready_http(session, health_url, proc, log)
            sends = [asyncio.ensure_future(deliver(p)) for p in payloads]
            result.killed_after_s = rng.uniform(0.0, 2.0)
            await asyncio.sleep(result.killed_after_s)
            await asyncio.to_thread(stop_bot, proc, sig)  # off the loop: the fake platform keeps serving
            await asyncio.gather(*sends)
            proc = start_bot(args, env, log)
            await _wait_ready_http(session, health_url, proc, log)
            # Slack retries what got no 200; now and then it also retries what did.
            extra = set(rng.sample([p["event_id"] for p in payloads], 3))
            for payload in payloads:
                if payload["event_id"] not in acked or payload["event_id"] in extra:
                    await deliver(payload, retry=1)
            deadline = time.monotonic() + ANSWER_TIMEOUT_S
            while time.monotonic() < deadline:
                answered = {c.args.get("channel") for c in fake.calls_to("chat.postMessage")}
                if len(answered) >= len(payloads) and _pending(workdir / "askdesk.db") == 0:
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(1.0)  # anything still to come would be a duplicate
        finally:
            await asyncio.to_thread(stop_bot, proc, signal.SIGTERM)
            await fake.close()
    for payload in payloads:
        event = payload["event"]
        posts = [c for c in fake.calls_to("chat.postMessage")
                 if c.args.get("channel") == event["channel"] and c.args.get("thread_ts") == event["ts"]]
        _tally(result, event["channel"], [str(c.args.get("text")) for c in posts])
    result.integrity_ok = _integrity(workdir / "askdesk.db")
    result.seconds = time.monotonic() - started
    return result


def _tally(result: RoundResult, where: str, texts: list[str]) -> None:
    """Count one question's answers: none is lost, more than one answered twice."""
    if not texts:
        result.lost += 1
    elif len(texts) > 1:
        result.duplicates += 1
        result.notes.append(f"{where}: {len(texts)} messages: " + " | ".join(t[:60] for t in texts))


# ---- Telegram ------------------------------------------------------------------------------
async def telegram_round(workdir: Path, index_dir: Path, kb_dir: Path, sig: signal.Signals,
                         rng: random.Random) -> RoundResult:
    from tests.fakes.telegram_api import TOKEN, FakeTelegramAPI

    started = time.monotonic()
    fake = await FakeTelegramAPI().start()
    ops_port = free_port()
    env = _env(workdir, index_dir, kb_dir, {
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": fake.root_url,
        "ASKDESK_OPS_HOST": "127.0.0.1", "ASKDESK_OPS_PORT": str(ops_port),
    })
    log = workdir / "telegram.log"
    result = RoundResult("telegram", sig.name, 0.0)
    chats = [1000 + i for i in range(len(QUESTIONS))]
    async with aiohttp.ClientSession() as session:
        proc = start_bot(["serve", "telegram"], env, log)
        try:
            await _wait_ready_http(session, f"http://127.0.0.1:{ops_port}/readyz", proc, log)
            for chat, question in zip(chats, QUESTIONS):
                await fake.enqueue(fake.message_update(question, chat_id=chat, user_id=chat))
            result.killed_after_s = rng.uniform(0.0, 2.0)
            await asyncio.sleep(result.killed_after_s)
            await asyncio.to_thread(stop_bot, proc, sig)  # off the loop: the fake platform keeps serving
            proc = start_bot(["serve", "telegram"], env, log)
            await _wait_ready_http(session, f"http://127.0.0.1:{ops_port}/readyz", proc, log)
            deadline = time.monotonic() + ANSWER_TIMEOUT_S
            while time.monotonic() < deadline:
                if all(fake.sent_to(chat) for chat in chats) and _pending(workdir / "askdesk.db") == 0:
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(1.0)
        finally:
            await asyncio.to_thread(stop_bot, proc, signal.SIGTERM)
            await fake.close()
    for chat in chats:
        sent = [c for c in fake.sent_to(chat) if c.method == "sendMessage"]
        _tally(result, f"chat {chat}", [str(c.params.get("text")) for c in sent])
    result.integrity_ok = _integrity(workdir / "askdesk.db")
    result.seconds = time.monotonic() - started
    return result


ROUNDS = {"slack": slack_round, "telegram": telegram_round}


def run(adapters: list[str], rounds: int, seed: int, workdir: Path, only: str | None = None) -> list[RoundResult]:
    rng = random.Random(seed)
    index_dir, kb_dir = sample_index(workdir)
    results = []
    for adapter in adapters:
        for number in range(rounds):
            sig = signal.Signals[only] if only else (signal.SIGKILL, signal.SIGTERM)[number % 2]
            round_dir = workdir / f"{adapter}-{number:02d}"
            round_dir.mkdir(parents=True, exist_ok=True)
            results.append(asyncio.run(ROUNDS[adapter](round_dir, index_dir, kb_dir, sig, rng)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", choices=sorted(ROUNDS), action="append")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--signal", choices=("SIGKILL", "SIGTERM"), help="only this signal (default: alternate)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/askdesk-crash-suite"))
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "crash_suite.json")
    args = parser.parse_args(argv)
    results = run(args.adapter or sorted(ROUNDS), args.rounds, args.seed, args.workdir, args.signal)
    print(f"{'adapter':<9} {'signal':<8} {'rounds':>6} {'lost':>5} {'twice':>6} {'integrity':>10} {'s/round':>8}")
    for adapter in sorted({r.adapter for r in results}):
        for sig in ("SIGKILL", "SIGTERM"):
            group = [r for r in results if r.adapter == adapter and r.signal == sig]
            if group:
                print(f"{adapter:<9} {sig:<8} {len(group):>6} {sum(r.lost for r in group):>5} "
                      f"{sum(r.duplicates for r in group):>6} {'ok' if all(r.integrity_ok for r in group) else 'BAD':>10} "
                      f"{sum(r.seconds for r in group) / len(group):>8.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0 if all(r.lost == 0 and r.duplicates == 0 and r.integrity_ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
