"""Fuzz both HTTP endpoints (Slack Events API, Telegram webhook) with generated requests.

Runs the real Slack bot (HTTP mode) and the real Telegram Application (our webhook server)
against the fake platform APIs on 127.0.0.1, with the real assistant and bundled models, and
sends hypothesis-generated bodies, half of them signed (Slack signature / Telegram secret).
Prints and saves: requests sent, 5xx responses, posts to the platform caused by unsigned
requests, status counts, and the RSS growth of the process over the run.

    python -m benchmarks.ops_fuzz --requests 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import ROOT, save, table  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _strategies():
    from hypothesis import strategies as st

    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=25,
    )
    slack_like = st.fixed_dictionaries(
        {"type": st.sampled_from(["event_callback", "url_verification"]) | values},
        optional={"event": values | st.fixed_dictionaries(
            {"type": st.sampled_from(["app_mention", "message", "team_join"]) | values},
            optional={"text": values, "user": values, "channel": values, "ts": values, "channel_type": values}),
            "event_id": st.text(max_size=12) | values, "challenge": values, "authorizations": values},
    )
    telegram_like = st.fixed_dictionaries(
        {"update_id": st.integers(min_value=-5, max_value=2**40) | values},
        optional={"message": values | st.fixed_dictionaries(
            {"message_id": st.integers(0, 10**6) | values, "date": st.integers(0, 2**31) | values,
             "chat": values | st.fixed_dictionaries({"id": st.integers(-10**12, 10**12), "type": st.sampled_from(
                 ["private", "group", "supergroup"]) | values}),
             }, optional={"text": values, "from": values}),
            "callback_query": values},
    )
    body = st.one_of(st.binary(max_size=300), values.map(lambda v: json.dumps(v).encode()))
    return (st.one_of(body, slack_like.map(lambda v: json.dumps(v).encode())),
            st.one_of(body, telegram_like.map(lambda v: json.dumps(v).encode())), st)


async def _run(total: int) -> dict:
    import hashlib
    import hmac

    import aiohttp
    from hypothesis import HealthCheck, given, settings as hsettings

    from bots.slack.app import SlackBot
    from bots.slack.config import SlackSettings
    from bots.slack.serve import EVENTS_PATH, check_bot_token, make_client, start_http
    from bots.telegram.app import BotOptions, build_application
    from bots.telegram.serve import Webhook, start_webhook_server
    from core.assistant import Assistant
    from core.config import Settings
    from core.retrieval.build import build_index
    from core.store import Store
    from tests.fakes.slack_api import SIGNING_SECRET, FakeSlack
    from tests.fakes.telegram_api import FakeTelegramAPI

    folder = Path(tempfile.mkdtemp(prefix="askdesk-fuzz-"))
    settings = Settings(_env_file=None, kb_dir=ROOT / "sample_kb", index_dir=folder / "index",
                        db_path=folder / "askdesk.db", cache_dir=ROOT / ".askdesk" / "cache", max_new_tokens=12)
    build_index(settings, settings.kb_dir, settings.index_dir)
    store = Store(settings.db_path)
    assistant = Assistant(settings, store=store)
    assistant.warm_up()

    fake_slack = await FakeSlack().start()
    slack = SlackSettings(_env_file=None, bot_token=fake_slack.bot_token, signing_secret=SIGNING_SECRET,
                          api_base_url=fake_slack.api_url, stream_interval=0.2)
    client = make_client(slack)
    bot = SlackBot(assistant, store, slack, client, await check_bot_token(client))
    slack_runner, slack_port = await start_http(bot.build_app(), SIGNING_SECRET, "127.0.0.1", 0, spawn=bot.spawn)
    slack_url = f"http://127.0.0.1:{slack_port}{EVENTS_PATH}"

    secret = "fuzz_secret-token"
    telegram_api = FakeTelegramAPI()
    await telegram_api.__aenter__()
    application = build_application(telegram_api.token, assistant, store, api_urls=telegram_api.api_urls,
                                    options=BotOptions())
    await application.initialize()
    await application.start()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tg_port = s.getsockname()[1]
    webhook = Webhook(url=f"http://127.0.0.1:{tg_port}/telegram", secret=secret, host="127.0.0.1", port=tg_port)
    tg_runner = await start_webhook_server(application, webhook)

    slack_bodies, telegram_bodies, st = _strategies()
    statuses: Counter[str] = Counter()
    server_errors: list[str] = []
    unsigned_posts = 0
    session = aiohttp.ClientSession()
    slack_posting = lambda: len(fake_slack.posting_calls)  # noqa: E731
    telegram_posting = lambda: len([c for c in telegram_api.calls if c.method in (  # noqa: E731
        "sendMessage", "editMessageText", "sendChatAction")])
    requests: list[tuple[str, bytes, bool, bool]] = []

    @hsettings(max_examples=total, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(which=st.sampled_from(["slack", "telegram"]), slack_body=slack_bodies, telegram_body=telegram_bodies,
           signed=st.booleans(), form=st.booleans())
    def collect(which, slack_body, telegram_body, signed, form):
        requests.append((which, slack_body if which == "slack" else telegram_body, signed, form))

    await asyncio.to_thread(collect)  # hypothesis generates; the requests are sent below
    rss_start = rss_mib()
    started = time.perf_counter()
    # Unsigned requests first, then signed ones: posts counted after the unsigned phase can only
    # come from unsigned input (the signed ones' answers are posted later, in the background).
    requests.sort(key=lambda r: r[2])
    unsigned_done = False
    for which, body, signed, form in requests:
        if signed and not unsigned_done:
            unsigned_done = True
            await bot.drain(timeout=60)
            await asyncio.sleep(1)
            unsigned_posts = slack_posting() + telegram_posting()
        if which == "slack":
            headers = {"Content-Type": "application/x-www-form-urlencoded" if form else "application/json"}
            if signed:
                ts = str(int(time.time()))
                digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
                headers.update({"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"})
            url = slack_url
        else:
            headers = {"Content-Type": "application/json"}
            if signed:
                headers["X-Telegram-Bot-Api-Secret-Token"] = secret
            url = webhook.url
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            status = resp.status
        statuses[f"{which} {'signed' if signed else 'unsigned'} {status}"] += 1
        if status >= 500:
            server_errors.append(f"{which} {signed} {body[:80]!r}")
    elapsed = time.perf_counter() - started
    if not unsigned_done:
        await asyncio.sleep(1)
        unsigned_posts = slack_posting() + telegram_posting()
    await bot.drain(timeout=120)
    await asyncio.sleep(1)
    rss_end = rss_mib()
    await session.close()
    await tg_runner.cleanup()
    await application.stop()
    await application.shutdown()
    await slack_runner.cleanup()
    bot.close()
    await fake_slack.close()
    await telegram_api.__aexit__(None, None, None)
    store.close()
    return {
        "requests": len(requests), "seconds": round(elapsed, 1), "server_errors_5xx": len(server_errors),
        "examples_5xx": server_errors[:10], "posts_for_unsigned": unsigned_posts,
        "rss_start_mib": round(rss_start, 1), "rss_end_mib": round(rss_end, 1),
        "rss_growth_mib": round(rss_end - rss_start, 1), "statuses": dict(sorted(statuses.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="generated requests (default 10000)")
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args.requests))
    table("Fuzzing the Slack and Telegram HTTP endpoints", ["measure", "value"], [
        ["requests", result["requests"]], ["seconds", result["seconds"]],
        ["5xx responses", result["server_errors_5xx"]], ["posts for unsigned input", result["posts_for_unsigned"]],
        ["RSS at start / end (MiB)", f"{result['rss_start_mib']} / {result['rss_end_mib']}"],
        ["RSS growth (MiB)", result["rss_growth_mib"]],
    ])
    table("Responses", ["endpoint, auth, status", "count"], [[k, v] for k, v in result["statuses"].items()])
    print(f"saved {save('ops_fuzz', result)}")
    return 1 if result["server_errors_5xx"] or result["posts_for_unsigned"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
