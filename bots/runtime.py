"""What every serving mode shares in one process: one store, one assistant (one set of models),
one metrics registry and the operations endpoints; plus running several platforms together.

``askdesk serve`` with Slack and Telegram both configured runs both adapters on one event
loop against the same :class:`Runtime`, so the models are loaded once and every answer,
feedback and escalation lands in the same database. Start-up order for all platforms:
check each platform's tokens (nothing loaded yet), then load the models once, then receive.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from bots.ops_http import OpsState, start_ops_server
from core.config import Settings
from core.metrics import Metrics, instrument_assistant, instrument_store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The parts all adapters of one process share."""

    assistant: Any
    store: Any
    ops: OpsState
    ops_port: int | None = None

    async def warm_up(self) -> None:
        """Load the index and models once (in a worker thread); ``/readyz`` turns 200 afterwards."""
        started = time.perf_counter()
        log.info("loading models")
        await asyncio.to_thread(self.assistant.warm_up)
        self.ops.ready = True
        log.info("models ready in %.1fs", time.perf_counter() - started)


@asynccontextmanager
async def open_runtime(settings: Settings, platforms: tuple[str, ...], assistant: Any = None,
                       store: Any = None) -> AsyncIterator[Runtime]:
    """Open the store, make the assistant, instrument both and serve ``ASKDESK_OPS_PORT`` if set."""
    from core.assistant import Assistant
    from core.store import open_store

    own_store = store is None
    store = store if store is not None else open_store(settings)
    ops_runner = None
    try:
        assistant = assistant if assistant is not None else Assistant(settings, store=store)
        ops = OpsState(metrics=Metrics(), platforms=platforms)
        instrument_assistant(assistant, ops.metrics)
        instrument_store(store, ops.metrics)
        runtime = Runtime(assistant, store, ops)
        if settings.ops_port is not None:
            ops_runner, runtime.ops_port = await start_ops_server(ops, settings.ops_host, settings.ops_port)
        yield runtime
    finally:
        if ops_runner is not None:
            await ops_runner.cleanup()
        if own_store:
            store.close()


def configured_platforms() -> tuple[str, ...]:
    """The platforms whose bot token is set (environment or ``.env``), in a fixed order."""
    from bots.slack.config import SlackSettings
    from bots.telegram.config import TelegramSettings

    found = []
    if SlackSettings().bot_token is not None:
        found.append("slack")
    if TelegramSettings().bot_token is not None:
        found.append("telegram")
    return tuple(found)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (only in the main thread; elsewhere the caller sets it)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_together(platforms: tuple[str, ...], args: Any, settings: Settings,
                         stop: asyncio.Event | None = None) -> int:
    """Serve every platform in ``platforms`` in this process, sharing one runtime, until stopped.

    If one platform stops with an error the others are stopped too (drained, not cut off) and
    the error is raised, so a process manager sees the failure and restarts the whole bot.
    """
    from bots.slack import serve as slack_serve
    from bots.slack.config import SlackSettings
    from bots.telegram import serve as telegram_serve
    from core.retention import purge_periodically

    stop = stop or stop_on_signals()
    slack_settings = SlackSettings() if "slack" in platforms else None
    slack_start = await slack_serve.check_start(args, slack_settings) if slack_settings else None
    async with open_runtime(settings, platforms) as runtime:
        telegram_start = telegram_serve.prepare(args, runtime) if "telegram" in platforms else None
        if telegram_start is not None:
            await telegram_start.initialize()  # getMe: a bad token stops here, before the models load
        runtime.store.forget_events_before(time.time() - slack_serve.EVENT_ID_RETENTION_S)
        try:
            await runtime.warm_up()
        except BaseException:
            if telegram_start is not None:
                await telegram_start.application.shutdown()
            raise
        # ASKDESK_RETENTION_DAYS: purge now and every few hours while serving (a no-op when unset).
        purging = asyncio.ensure_future(purge_periodically(runtime.store, settings, stop))
        tasks = []
        if slack_start is not None:
            tasks.append(asyncio.ensure_future(
                slack_serve.serve_started(slack_start, args, settings, slack_settings, runtime, stop)))
        if telegram_start is not None:
            tasks.append(asyncio.ensure_future(telegram_start.serve(stop)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await purging
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return 0


__all__ = ["Runtime", "configured_platforms", "open_runtime", "serve_together", "stop_on_signals"]
