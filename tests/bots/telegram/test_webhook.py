"""Webhook mode: Telegram's secret token header is required; redelivered updates answered once."""

from __future__ import annotations

import aiohttp

from bots.telegram.serve import Webhook
from tests.bots.telegram.conftest import free_port, running_bot

SECRET = "s3cret_Token-for-tests"


async def _post(url: str, update: dict, secret: str | None) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=update, headers=headers) as response:
            return response.status


async def test_webhook_checks_the_secret_and_answers(fake, quick_assistant, store):
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/updates"
    webhook = Webhook(url=url, secret=SECRET, host="127.0.0.1", port=port)
    async with running_bot(fake, quick_assistant, store, webhook=webhook):
        registered = fake.calls_to("setWebhook")[-1].params
        assert registered["url"] == url and registered["secret_token"] == SECRET
        assert not fake.calls_to("getUpdates"), "no polling in webhook mode"

        assert await _post(url, fake.message_update("How do I return an item?", chat_id=81), "wrong") == 403
        assert await _post(url, fake.message_update("How do I return an item?", chat_id=82), None) == 403
        good = fake.message_update("How do I return an item?", chat_id=83)
        assert await _post(url, good, SECRET) == 200
        await fake.wait_for(lambda: any("Sources" in m["visible"] for (c, _), m in fake.messages.items() if c == 83),
                            what="the answer to the authentic update")
        # Telegram retries a webhook it thinks failed: the same update_id must not be answered again.
        assert await _post(url, good, SECRET) == 200
        assert await _post(url, fake.message_update("/help", chat_id=83), SECRET) == 200
        await fake.wait_for(lambda: len([k for k in fake.messages if k[0] == 83]) >= 2, what="/help")

    touched = {c.params.get("chat_id") for c in fake.calls if c.method in ("sendMessage", "sendChatAction",
                                                                           "editMessageText")}
    assert 81 not in touched and 82 not in touched, "forged updates were not acted on"
    assert len([c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == 83]) == 2  # answer + /help
