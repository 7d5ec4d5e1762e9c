"""``askdesk serve`` with both tokens: Slack (HTTP) and Telegram (polling) in one process, one
assistant and one database, /readyz and /metrics on the ops port, clean stop."""

from __future__ import annotations

import argparse
import asyncio

import aiohttp

from bots.runtime import serve_together
from tests.bots.telegram.conftest import free_port
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlack, event_callback, mention, sign
from tests.fakes.telegram_api import FakeTelegramAPI


async def test_both_platforms_in_one_process_share_one_runtime(settings, monkeypatch, tmp_path):
    slack_fake = await FakeSlack().start()
    async with FakeTelegramAPI() as telegram_fake:
        for name, value in {"SLACK_BOT_TOKEN": slack_fake.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                            "SLACK_API_BASE_URL": slack_fake.api_url, "TELEGRAM_BOT_TOKEN": telegram_fake.token,
                            "TELEGRAM_API_BASE_URL": telegram_fake.root_url}.items():
            monkeypatch.setenv(name, value)
        slack_port, ops_port = free_port(), free_port()
        run_settings = settings.model_copy(update={"db_path": tmp_path / "askdesk.db", "ops_port": ops_port,
                                                   "max_new_tokens": 12})
        args = argparse.Namespace(platform=None, http=True, port=slack_port, host="127.0.0.1", webhook_url=None,
                                  telegram_port=8443)
        stop = asyncio.Event()
        task = asyncio.create_task(serve_together(("slack", "telegram"), args, run_settings, stop=stop))
        ops = f"http://127.0.0.1:{ops_port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                assert not task.done(), task.exception()
                try:
                    async with session.get(ops + "/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            await telegram_fake.wait_for(lambda: telegram_fake.calls_to("getUpdates"), what="polling")
            body = __import__("json").dumps(event_callback(mention("How do I return an item?", ts="1700000301.000100")))
            async with session.post(f"http://127.0.0.1:{slack_port}/slack/events", data=body,
                                    headers={"Content-Type": "application/json", **sign(SIGNING_SECRET, body)}) as resp:
                assert resp.status == 200
            await telegram_fake.enqueue(telegram_fake.message_update("How do I return an item?", chat_id=501))
            await slack_fake.wait_for(lambda: slack_fake.calls_to("reactions.remove"), what="the Slack answer")
            await telegram_fake.wait_for(
                lambda: any("Sources" in m["visible"] for (c, _), m in telegram_fake.messages.items() if c == 501),
                what="the Telegram answer")
            async with session.get(ops + "/metrics") as resp:
                text = await resp.text()
        stop.set()
        assert await asyncio.wait_for(task, timeout=60) == 0
    await slack_fake.close()
    assert 'askdesk_questions_total{platform="slack"} 1.0' in text
    assert 'askdesk_questions_total{platform="telegram"} 1.0' in text
