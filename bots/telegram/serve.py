"""``askdesk serve telegram``: start-up checks, long polling or webhook, clean shutdown.

Order of start-up, and why:
1. read and check the Telegram settings (missing token → clear error, nothing started);
2. ``getMe`` (``Application.initialize``): a bad token stops here, before minutes of model loading;
3. load the models once, in a worker thread (readiness logged);
4. receive updates: long polling, or a webhook whose requests must carry our secret token.

A ``Conflict`` from ``getUpdates`` means another process polls with the same token; both would
answer at random, so this one stops with a message saying so and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlparse

from aiohttp import web
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import Application

from bots.ops_http import OpsState, add_ops_routes
from bots.runtime import Runtime
from bots.telegram.app import ALLOWED_UPDATES, BotOptions, SupportOptions, build_application
from bots.telegram.config import TelegramSettings
from bots.telegram.inbox import resume
from core.config import Settings
from core.errors import AskdeskError, ConfigError
from core.inbox import Inbox
from core.support.agents import AgentAllowlist, parse_ids

log = logging.getLogger(__name__)


class AnotherInstanceError(AskdeskError):
    """Telegram answered ``getUpdates`` with 409 Conflict: the token is in use elsewhere."""


ANOTHER_INSTANCE = (
    "Telegram says another instance of this bot is running (getUpdates: {detail}). Only one process "
    "may receive updates for a bot token: stop the other askdesk (or whatever else uses this token, "
    "or remove its webhook), then start again."
)
UNREACHABLE = (
    "Could not reach the Telegram Bot API at {url} to check TELEGRAM_BOT_TOKEN ({detail}). Check the network "
    "or a proxy, or TELEGRAM_API_BASE_URL if you use your own Bot API server."
)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
BAD_TOKEN = (
    "Telegram rejected TELEGRAM_BOT_TOKEN (getMe failed: unauthorized). Check the token with @BotFather "
    "(/mybots → API Token); if it was revoked, put the new one in TELEGRAM_BOT_TOKEN."
)


@dataclass(frozen=True)
class Webhook:
    """Where Telegram posts updates (public URL) and where we listen for them (behind a proxy)."""

    url: str
    secret: str
    host: str = "0.0.0.0"
    port: int = 8443

    @property
    def path(self) -> str:
        """Listen on the same path as the public URL, so a reverse proxy can pass it through."""
        return urlparse(self.url).path.lstrip("/")


async def start_webhook_server(application: Application, webhook: Webhook, *, max_body: int = 1024 * 1024,
                               ops: OpsState | None = None) -> web.AppRunner:
    """Our own webhook endpoint: the secret header is checked before one byte of the body is read.

    (PTB's built-in webhook server reads the whole body first.) A request without the secret is
    403, one over ``max_body`` is 413 without being read, a body that is not an update is 400;
    a good update goes to ``application.update_queue`` and PTB does the rest as in polling.
    """
    state = ops or OpsState()
    expected = webhook.secret.encode()

    def refuse(status: int, reason: str) -> web.Response:
        state.metrics.rejected.labels("telegram", reason).inc()
        return web.json_response({"error": reason}, status=status)

    async def updates(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return refuse(403, "bad_secret")
        if request.content_length is not None and request.content_length > max_body:
            return refuse(413, "too_large")
        raw = await request.content.read(max_body + 1)
        if len(raw) > max_body:
            return refuse(413, "too_large")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return refuse(400, "malformed")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return refuse(400, "malformed")
        try:
            update = Update.de_json(data, application.bot)
        except Exception:  # noqa: BLE001 - PTB raises many kinds for shapes it cannot read
            return refuse(400, "malformed")
        if update is None:
            return refuse(400, "malformed")
        await application.update_queue.put(update)
        return web.Response(status=200)

    app = web.Application(client_max_size=max_body)
    app.add_routes([web.post("/" + webhook.path, updates)])
    add_ops_routes(app, state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, webhook.host, webhook.port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"Cannot listen on {webhook.host}:{webhook.port} for the Telegram webhook "
                          f"({exc.strerror}); choose another --port.") from None
    return runner


async def initialize(application: Application) -> None:
    """``getMe``: a bad token or an unreachable Bot API stops start-up here, as one clear line."""
    try:
        await application.initialize()
    except InvalidToken:
        await application.bot.shutdown()  # close the HTTP pool initialize() opened
        raise ConfigError(BAD_TOKEN) from None
    except (NetworkError, TimedOut) as exc:
        with contextlib.suppress(Exception):
            await application.bot.shutdown()
        raise ConfigError(UNREACHABLE.format(url=application.bot.base_url.split("/bot")[0], detail=exc.message)) from None


async def run_bot(
    application: Application,
    *,
    webhook: Webhook | None = None,
    warm_up: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
    poll_timeout: float = 10.0,
    initialized: bool = False,
    max_body: int = 1024 * 1024,
    ops: OpsState | None = None,
    drain_s: float = 20.0,
) -> int:
    """Serve until ``stop`` is set; 0 on a requested stop. Raises :class:`ConfigError` for a bad
    token and :class:`AnotherInstanceError` when another poller holds the token.

    On stop, updates in progress get ``drain_s`` seconds; what is left stays in the inbox and the
    next start answers it (PTB's own stop would wait for them without a bound)."""
    stop = stop or asyncio.Event()
    conflict: list[Conflict] = []

    def on_poll_error(exc: TelegramError) -> None:
        # Called by PTB's polling loop for each failed getUpdates; it keeps retrying otherwise.
        if isinstance(exc, Conflict):
            if not conflict:
                log.error("getUpdates conflict: another instance is running; stopping")
            conflict.append(exc)
            stop.set()
        else:
            log.warning("getUpdates failed (%s); retrying", exc)

    if not initialized:
        await initialize(application)
    runner: web.AppRunner | None = None
    inbox: Inbox | None = getattr(application, "inbox", None)
    inbox_loop: asyncio.Future[None] | None = None
    try:
        if warm_up is not None:
            log.info("loading models…")
            await asyncio.to_thread(warm_up)
        await application.start()
        updater = application.updater
        if updater is None:  # pragma: no cover - build_application always has one
            raise ConfigError("the Telegram application was built without an updater")
        if webhook is not None:
            runner = await start_webhook_server(application, webhook, max_body=max_body, ops=ops)
            await application.bot.set_webhook(url=webhook.url, secret_token=webhook.secret,
                                              allowed_updates=ALLOWED_UPDATES)
            log.warning("askdesk Telegram bot @%s ready (webhook on %s:%s)", application.bot.username,
                        webhook.host, webhook.port)
        else:
            await updater.start_polling(
                timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES, error_callback=on_poll_error
            )
            log.warning("askdesk Telegram bot @%s ready (long polling)", application.bot.username)
        if inbox is not None:  # updates an earlier process accepted but did not answer
            inbox_loop = asyncio.ensure_future(inbox.run(partial(resume, application, inbox), stop))
        await stop.wait()
    finally:
        if inbox_loop is not None:
            inbox_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inbox_loop
        if runner is not None:
            await runner.cleanup()
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            try:
                await asyncio.wait_for(application.stop(), timeout=drain_s)
            except TimeoutError:
                log.warning("telegram: stopped after %.0fs with updates in progress; they are answered after "
                            "the restart", drain_s)
        if inbox is not None:
            await asyncio.to_thread(inbox.release)
        await application.shutdown()
        log.info("askdesk Telegram bot stopped")
    if conflict:
        raise AnotherInstanceError(ANOTHER_INSTANCE.format(detail=conflict[0].message))
    return 0


@dataclass
class TelegramStart:
    """The Telegram side of a process: its Application, built on the shared runtime."""

    application: Application
    webhook: Webhook | None
    max_body: int
    ops: OpsState
    drain_s: float = 20.0

    async def initialize(self) -> None:
        await initialize(self.application)

    async def serve(self, stop: asyncio.Event) -> int:
        return await run_bot(self.application, webhook=self.webhook, stop=stop, initialized=True,
                             max_body=self.max_body, ops=self.ops, drain_s=self.drain_s)


def prepare(args: argparse.Namespace, runtime: Runtime) -> TelegramStart:
    """Read the Telegram settings and build the Application on ``runtime`` (nothing contacted yet)."""
    telegram = TelegramSettings()
    token = telegram.token()
    webhook = None
    if getattr(args, "webhook_url", None):
        if not urlparse(args.webhook_url).scheme == "https":
            log.warning("Telegram only delivers webhooks to https URLs; %s will not receive updates", args.webhook_url)
        webhook = Webhook(url=args.webhook_url, secret=telegram.webhook_secret_token(),
                          host=getattr(args, "host", "0.0.0.0"), port=args.port if getattr(args, "platform", None) == "telegram" else args.telegram_port)
    agent_ids, any_member = parse_ids(telegram.support_agent_ids)
    agents = AgentAllowlist(agent_ids, any_member=any_member)
    support = SupportOptions(support_chat_id=telegram.support_chat(), admin_user_ids=telegram.admins(), agents=agents)
    if support.support_chat_id is not None:
        agents.warn_if_unset("telegram", "TELEGRAM_SUPPORT_AGENT_IDS")
    if support.support_chat_id is None:
        log.warning("TELEGRAM_SUPPORT_CHAT_ID is not set: users who ask for a person are told none is available")
    application = build_application(token, runtime.assistant, runtime.store, api_urls=telegram.api_urls(),
                                    options=BotOptions(), support=support)
    settings = runtime.assistant.settings
    return TelegramStart(application, webhook, settings.http_max_body_bytes, runtime.ops, settings.drain_seconds)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point for ``askdesk serve telegram`` (see ``bots/cli.py``)."""
    from bots.runtime import serve_together

    return asyncio.run(serve_together(("telegram",), args, settings))
