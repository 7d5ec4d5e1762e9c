"""Fixtures for the Slack adapter: a fake Slack on 127.0.0.1 and the real bot (HTTP mode) in front of it."""

from __future__ import annotations

import asyncio

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bots.slack.app import SlackBot
from bots.slack.config import SlackSettings
from bots.slack.serve import EVENTS_PATH, check_bot_token, make_client, start_http
from core.assistant import Assistant
from core.messages import IncomingMessage
from core.store import Store
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlack, event_callback, form_body, interaction_body, sign


class RecordingAssistant(Assistant):
    """The real assistant, remembering which messages reached it (to check history, or that it was not called)."""

    def __init__(self, base: Assistant, store: Store | None = None) -> None:
        # ``store``: the test's own database (shared with the bot, as in ``serve``), so conversations of
        # different tests never mix; without it the session's database is used.
        super().__init__(base.settings, retriever=base.retriever, generator=base.generator, store=store)
        self.seen: list[IncomingMessage] = []
        # Answers wait here while a test holds it closed (``gate.clear()``): which questions are
        # running or waiting then depends on their order, not on how fast answers are.
        self.gate = asyncio.Event()
        self.gate.set()

    async def stream(self, message: IncomingMessage):  # type: ignore[override]
        self.seen.append(message)
        await self.gate.wait()
        async for event in super().stream(message):
            yield event


def slack_settings(fake: FakeSlack, **overrides: Any) -> SlackSettings:
    values: dict[str, Any] = {
        "bot_token": fake.bot_token,
        "signing_secret": SIGNING_SECRET,
        "api_base_url": fake.api_url,
        "stream_interval": 0.2,
        "support_agent_ids": "UAGENT",  # the fake's support agent; others' replies are not relayed
    }
    values.update(overrides)
    return SlackSettings(_env_file=None, **values)


@dataclass
class RunningBot:
    """The bot served over HTTP on a random port, plus helpers to deliver events to it."""

    fake: FakeSlack
    bot: SlackBot
    store: Store
    url: str
    runner: Any
    session: aiohttp.ClientSession
    latencies: list[float] = field(default_factory=list)

    async def post(self, body: str, headers: dict[str, str], content_type: str = "application/json") -> tuple[int, str, float]:
        started = time.perf_counter()
        async with self.session.post(self.url, data=body.encode(), headers={"Content-Type": content_type, **headers}) as resp:
            text = await resp.text()
        elapsed = time.perf_counter() - started
        self.latencies.append(elapsed)
        return resp.status, text, elapsed

    async def deliver(self, payload: dict[str, Any], retry: int | None = None, secret: str = SIGNING_SECRET) -> tuple[int, str, float]:
        """Send an Events API payload signed like Slack does (optionally as retry number ``retry``)."""
        body = json.dumps(payload)
        headers = sign(secret, body)
        if retry is not None:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
        return await self.post(body, headers)

    async def event(self, event: dict[str, Any], **kwargs: Any) -> tuple[int, str, float]:
        return await self.deliver(event_callback(event), **kwargs)

    async def command(self, fields: dict[str, str]) -> tuple[int, str, float]:
        body = form_body(fields)
        return await self.post(body, sign(SIGNING_SECRET, body), "application/x-www-form-urlencoded")

    async def click(self, payload: dict[str, Any]) -> tuple[int, str, float]:
        """Deliver a ``block_actions`` payload (a button click), form-encoded and signed like Slack."""
        body = interaction_body(payload)
        return await self.post(body, sign(SIGNING_SECRET, body), "application/x-www-form-urlencoded")

    async def stop(self) -> None:
        assert await self.bot.drain(timeout=120), "answers still running at shutdown"
        await self.session.close()
        await self.runner.cleanup()
        self.bot.close()
        self.store.close()


async def start_bot(fake: FakeSlack, assistant: Assistant, db_path: Path, *, store: Store | None = None,
                    **overrides: Any) -> RunningBot:
    """The bot on its own database at ``db_path`` (or on ``store``, which it then closes when stopped)."""
    slack = slack_settings(fake, **overrides)
    client = make_client(slack)
    identity = await check_bot_token(client)
    store = store if store is not None else Store(db_path)
    bot = SlackBot(assistant, store, slack, client, identity)
    runner, port = await start_http(bot.build_app(), SIGNING_SECRET, "127.0.0.1", 0, spawn=bot.spawn, accept=bot.accept)
    return RunningBot(fake, bot, store, f"http://127.0.0.1:{port}{EVENTS_PATH}", runner, aiohttp.ClientSession())


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    yield server
    await server.close()


@pytest.fixture
def recording(quick_assistant, tmp_path) -> Iterator[RecordingAssistant]:
    store = Store(tmp_path / "askdesk.db")  # the database the `running` bot uses
    yield RecordingAssistant(quick_assistant, store=store)
    store.close()


@pytest.fixture
async def running(fake, recording, tmp_path) -> AsyncIterator[RunningBot]:
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db")
    yield bot
    await bot.stop()
