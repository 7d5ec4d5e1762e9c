"""Fixtures for the Telegram adapter: the fake Bot API, and the real bot running against it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from bots.telegram.app import BotOptions, SupportOptions, build_application
from bots.telegram.serve import Webhook, run_bot
from core.store import Store
from tests.fakes.telegram_api import FakeTelegramAPI

# Short pacing so tests see several edits without waiting; behaviour is otherwise production's.
FAST = BotOptions(edit_interval=0.2, group_edit_interval=0.2, typing_interval=0.5, max_retries=3)


@pytest.fixture()
async def fake() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as api:
        yield api


@pytest.fixture()
def store(tmp_path) -> Store:
    s = Store(tmp_path / "askdesk.db")
    yield s
    s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningBot:
    """A started bot: its Application, the task running it, and how to stop it."""

    def __init__(self, application, task: asyncio.Task, stop: asyncio.Event) -> None:
        self.application = application
        self.task = task
        self.stop = stop

    async def shutdown(self) -> int:
        self.stop.set()
        return await asyncio.wait_for(self.task, timeout=30)


@contextlib.asynccontextmanager
async def running_bot(fake: FakeTelegramAPI, assistant, store: Store, *, webhook: Webhook | None = None,
                      options: BotOptions = FAST, support: SupportOptions | None = None) -> AsyncIterator[RunningBot]:
    """Run the real Application (polling, or webhook) against ``fake`` until the block exits."""
    application = build_application(fake.token, assistant, store, api_urls=fake.api_urls, options=options,
                                    support=support)
    stop = asyncio.Event()
    task = asyncio.create_task(run_bot(application, webhook=webhook, stop=stop, poll_timeout=2))
    # Started when polling has begun (a getUpdates arrived) or the webhook was registered.
    ready_method = "setWebhook" if webhook else "getUpdates"
    waiter = asyncio.create_task(fake.wait_for(lambda: bool(fake.calls_to(ready_method, ok_only=False)),
                                               timeout=30, what=ready_method))
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises the start-up error
    if webhook:
        # setWebhook is sent before the HTTP server listens; wait until it accepts connections.
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", webhook.port)
                writer.close()
                await writer.wait_closed()
                break
            await asyncio.sleep(0.05)
    bot = RunningBot(application, task, stop)
    try:
        yield bot
    finally:
        if not task.done():
            await bot.shutdown()
