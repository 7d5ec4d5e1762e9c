"""Socket Mode: the real slack_sdk websocket client against the fake's ``apps.connections.open`` + websocket."""

from __future__ import annotations

import argparse
import asyncio

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bots.slack.app import SlackBot
from bots.slack.serve import check_bot_token, make_client, run
from core.store import Store
from tests.bots.slack.conftest import slack_settings
from tests.fakes.slack_api import BOT_ID, FakeSlack, event_callback, mention, slash_command


def answer_ts(fake: FakeSlack, channel: str = "C0GENERAL") -> str:
    """The bot's answer message (posted with the first streamed words, or whole at the end)."""
    return next(ts for (ch, ts), m in fake.messages.items() if ch == channel and m.get("bot_id") == BOT_ID)


def answered(fake: FakeSlack, ts: str):
    return [c for c in fake.calls_to("reactions.remove") if c.args.get("timestamp") == ts]


def acked(fake: FakeSlack, envelope_id: str):
    return [a for a in fake.socket_acks if a["envelope_id"] == envelope_id]


async def connected_bot(fake: FakeSlack, assistant, tmp_path):
    slack = slack_settings(fake, signing_secret=None, app_token=fake.app_token)
    client = make_client(slack)
    store = Store(tmp_path / "askdesk.db")
    bot = SlackBot(assistant, store, slack, client, await check_bot_token(client))
    handler = AsyncSocketModeHandler(bot.build_app(), app_token=fake.app_token)
    await handler.connect_async()
    return bot, handler, store


async def test_envelope_is_acked_and_answered_and_a_redelivery_is_not(fake, recording, tmp_path):
    bot, handler, store = await connected_bot(fake, recording, tmp_path)
    try:
        payload = event_callback(mention("Do gift cards have an expiry date?", ts="1700000101.000100"))
        first = await fake.send_envelope(payload)
        await fake.wait_for(lambda: acked(fake, first), timeout=5, what="the ack")
        retry = await fake.send_envelope(payload, retry_attempt=1)  # Slack redelivers the same event
        await fake.wait_for(lambda: acked(fake, retry), timeout=5, what="the redelivery's ack")
        await fake.wait_for(lambda: answered(fake, "1700000101.000100"), what="the answer")
        assert await bot.drain(timeout=30)
    finally:
        await handler.close_async()
        bot.close()
        store.close()
    assert len(fake.calls_to("apps.connections.open")) == 1
    (post,) = fake.calls_to("chat.postMessage")
    assert post.args["thread_ts"] == "1700000101.000100"
    assert "*Sources*" in fake.messages[("C0GENERAL", answer_ts(fake))]["text"]
    assert len(recording.seen) == 1


async def test_slash_command_over_socket_mode(fake, recording, tmp_path):
    bot, handler, store = await connected_bot(fake, recording, tmp_path)
    try:
        envelope = await fake.send_envelope(slash_command("Can I pay with PayPal?", fake.response_url("s1")),
                                            kind="slash_commands")
        (ack,) = await fake.wait_for(lambda: acked(fake, envelope), timeout=5, what="the ack")
        assert "Can I pay with PayPal?" in ack["payload"]["text"]
        (response,) = await fake.wait_for(lambda: fake.responses, what="the answer")
        assert "*Sources*" in response.args["text"]
        assert await bot.drain(timeout=30)
    finally:
        await handler.close_async()
        bot.close()
        store.close()


async def test_serve_runs_socket_mode_end_to_end(fake, settings, tmp_path):
    """``run()`` as `askdesk serve slack` does: token checks, model warm-up, connect, answer, clean stop."""
    slack = slack_settings(fake, signing_secret=None, app_token=fake.app_token)
    app_settings = settings.model_copy(update={"db_path": tmp_path / "askdesk.db", "max_new_tokens": 8})
    stop = asyncio.Event()
    args = argparse.Namespace(http=False, host="127.0.0.1", port=0)
    server = asyncio.ensure_future(run(args, app_settings, slack, stop=stop))
    try:
        envelope = await fake.send_envelope(event_callback(mention("Which countries do you ship to?", ts="1700000102.000100")))
        await fake.wait_for(lambda: acked(fake, envelope), timeout=10, what="the ack")
        await fake.wait_for(lambda: answered(fake, "1700000102.000100"), what="the answer")
    finally:
        stop.set()
        assert await asyncio.wait_for(server, timeout=60) == 0
    # Checked before connecting: auth.test for the bot token, apps.connections.open for the app token.
    assert [c.method for c in fake.calls[:2]] == ["auth.test", "apps.connections.open"]
    assert "<https://help.northwindgoods.example/shipping/" in fake.messages[
        ("C0GENERAL", answer_ts(fake))]["text"]
