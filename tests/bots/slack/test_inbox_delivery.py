"""At-least-once answering through the real Bolt app and the fake Slack API.

A question is in the inbox before Slack gets its 200; one left by a process that stopped is
answered by the next; a second try continues in the message the first try posted; the fair
queue turns a flood away politely. (The whole-process version with SIGKILL/SIGTERM is
``benchmarks/crash_suite.py``.)
"""

from __future__ import annotations

import asyncio

from bots.slack.app import NOT_NOW
from core.inbox import Inbox
from core.language import phrase
from tests.bots.slack.conftest import start_bot
from tests.fakes.slack_api import BOT_USER, event_callback, mention


def _posts(fake, channel: str, thread_ts: str) -> list:
    """``chat.postMessage`` calls into one thread (a second answer would be a second call)."""
    return [c for c in fake.calls_to("chat.postMessage")
            if c.args.get("channel") == channel and c.args.get("thread_ts") == thread_ts]


def _texts(fake, channel: str, thread_ts: str) -> list[str]:
    """The bot's messages in a thread as they read now (after edits)."""
    return [m["text"] for (ch, _), m in sorted(fake.messages.items(), key=lambda kv: float(kv[0][1]))
            if ch == channel and m.get("user") == BOT_USER and m.get("thread_ts") == thread_ts]


async def _resume_once(bot) -> None:
    stop = asyncio.Event()
    loop = asyncio.ensure_future(bot.bot.inbox.run(bot.bot.resume, stop, spawn=bot.bot.spawn, interval=0.05))
    await asyncio.sleep(0.2)
    stop.set()
    await loop
    assert await bot.bot.drain(timeout=60)


async def test_the_question_is_stored_before_the_ack(fake, recording, tmp_path):
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db")
    try:
        payload = event_callback(mention("How long does a refund take?", ts="1700000401.000100"))
        status, _, _ = await bot.deliver(payload)
        assert status == 200
        item = bot.store.inbox_item("slack", payload["event_id"])
        assert item is not None  # stored by the time Slack has its 200
        await fake.wait_for(lambda: bot.store.inbox_item("slack", payload["event_id"]).status == "answered",
                            what="marked answered after the reply")
        assert len(_posts(fake, "C0GENERAL", "1700000401.000100")) == 1
        # Slack retries (e.g. its 3 s timeout fired): acknowledged, not answered again.
        status, _, _ = await bot.deliver(payload, retry=1)
        assert status == 200
        assert await bot.bot.drain(timeout=30)
        assert len(_posts(fake, "C0GENERAL", "1700000401.000100")) == 1
    finally:
        await bot.stop()


async def test_a_stopped_processs_question_is_answered_by_the_next(fake, recording, tmp_path):
    db = tmp_path / "askdesk.db"
    bot = await start_bot(fake, recording, db)
    try:
        payload = event_callback(mention("How do I reset my password?", ts="1700000402.000100"))
        Inbox(bot.store, "slack", lease_s=0.0).accept(payload["event_id"], payload, "UALICE")  # it died here
        await _resume_once(bot)
        assert len(_posts(fake, "C0GENERAL", "1700000402.000100")) == 1
        (text,) = _texts(fake, "C0GENERAL", "1700000402.000100")
        assert "password" in text.lower()
        assert bot.store.inbox_pending("slack") == 0
        status, _, _ = await bot.deliver(payload, retry=1)  # Slack's late retry of the same event
        assert status == 200 and await bot.bot.drain(timeout=30)
        assert len(_posts(fake, "C0GENERAL", "1700000402.000100")) == 1
    finally:
        await bot.stop()


async def test_a_second_try_edits_the_message_the_first_try_posted(fake, recording, tmp_path):
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db")
    try:
        root, first_try = "1700000403.000100", "1700000403.000200"
        fake.seed_message("C0GENERAL", first_try, "We refund", BOT_USER, thread_ts=root)  # posted, then killed
        payload = event_callback(mention("How long does a refund take?", ts=root))
        inbox = Inbox(bot.store, "slack", lease_s=0.0)
        inbox.accept(payload["event_id"], payload, "UALICE")
        inbox.replied(payload["event_id"], first_try)
        await _resume_once(bot)
        assert _posts(fake, "C0GENERAL", root) == []  # nothing new in the thread
        edits = [c for c in fake.calls_to("chat.update") if c.args.get("ts") == first_try]
        assert edits and _texts(fake, "C0GENERAL", root) == [fake.messages[("C0GENERAL", first_try)]["text"]]
        assert "refund" in _texts(fake, "C0GENERAL", root)[0].lower()
    finally:
        await bot.stop()


async def test_a_flood_from_one_user_is_turned_away_politely(fake, recording, tmp_path):
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db")
    try:
        limits = bot.bot.fair.limits
        flood = limits.per_user_active + limits.per_user_waiting + 3
        roots = [f"1700000404.{n:06d}" for n in range(flood)]
        recording.gate.clear()  # the first answers hold their places until every question is in
        for ts in roots:
            await bot.event(mention("How long does a refund take?", ts=ts, user="UBOB"))
        await bot.event(mention("How do I reset my password?", ts="1700000405.000100"))  # someone else
        def marked() -> list[str]:
            return [c.args["timestamp"] for c in fake.calls_to("reactions.add") if c.args["name"] == NOT_NOW]

        await fake.wait_for(lambda: len(marked()) >= 2, what="the questions beyond the user's limits turned away")
        recording.gate.set()
        assert await bot.bot.drain(timeout=120)
        texts = {ts: _texts(fake, "C0GENERAL", ts) for ts in roots}
        # The 3 beyond active + waiting: the first is told to ask again, the other two only marked,
        # so the asker gets one "please ask again", not one per message; every other one is answered.
        told = [ts for ts, replies in texts.items() if replies == [phrase("slow_down")]]
        assert len(told) == 1 and len(set(marked())) == 2 and not set(marked()) & set(told)
        assert all(texts[ts] == [] for ts in marked())
        assert all(len(replies) == 1 for ts, replies in texts.items() if ts not in marked())
        texts = [text for replies in texts.values() for text in replies]
        assert "refund" in texts[0].lower()  # the first ones are answered
        assert len(_posts(fake, "C0GENERAL", "1700000405.000100")) == 1
        assert bot.store.inbox_pending("slack") == 0
    finally:
        await bot.stop()
