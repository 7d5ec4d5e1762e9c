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
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from telegram.error import Conflict, InvalidToken, TelegramError
from telegram.ext import Application

from bots.telegram.app import ALLOWED_UPDATES, BotOptions, SupportOptions, build_application
from bots.telegram.config import TelegramSettings
from core.config import Settings
from core.errors import AskdeskError, ConfigError

log = logging.getLogger(__name__)


class AnotherInstanceError(AskdeskError):
    """Telegram answered ``getUpdates`` with 409 Conflict: the token is in use elsewhere."""


ANOTHER_INSTANCE = (
    "Telegram says another instance of this bot is running (getUpdates: {detail}). Only one process "
    "may receive updates for a bot token: stop the other askdesk (or whatever else uses this token, "
    "or remove its webhook), then start again."
)
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


async def run_bot(
    application: Application,
    *,
    webhook: Webhook | None = None,
    warm_up: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
    poll_timeout: float = 10.0,
) -> int:
    """Serve until ``stop`` is set; 0 on a requested stop. Raises :class:`ConfigError` for a bad
    token and :class:`AnotherInstanceError` when another poller holds the token."""
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

    try:
        await application.initialize()
    except InvalidToken:
        await application.bot.shutdown()  # close the HTTP pool initialize() opened
        raise ConfigError(BAD_TOKEN) from None
    try:
        if warm_up is not None:
            log.info("loading models…")
            await asyncio.to_thread(warm_up)
        await application.start()
        updater = application.updater
        if updater is None:  # pragma: no cover - build_application always has one
            raise ConfigError("the Telegram application was built without an updater")
        if webhook is not None:
            await updater.start_webhook(
                listen=webhook.host, port=webhook.port, url_path=webhook.path, webhook_url=webhook.url,
                secret_token=webhook.secret, allowed_updates=ALLOWED_UPDATES,
            )
            log.warning("askdesk Telegram bot @%s ready (webhook on %s:%s)", application.bot.username,
                        webhook.host, webhook.port)
        else:
            await updater.start_polling(
                timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES, error_callback=on_poll_error
            )
            log.warning("askdesk Telegram bot @%s ready (long polling)", application.bot.username)
        await stop.wait()
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
        log.info("askdesk Telegram bot stopped")
    if conflict:
        raise AnotherInstanceError(ANOTHER_INSTANCE.format(detail=conflict[0].message))
    return 0


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point for ``askdesk serve telegram`` (see ``bots/cli.py``)."""
    from core.assistant import Assistant
    from core.store import Store

    telegram = TelegramSettings()
    token = telegram.token()
    webhook = None
    if getattr(args, "webhook_url", None):
        if not urlparse(args.webhook_url).scheme == "https":
            log.warning("Telegram only delivers webhooks to https URLs; %s will not receive updates", args.webhook_url)
        webhook = Webhook(url=args.webhook_url, secret=telegram.webhook_secret_token(), host=args.host, port=args.port)
    support = SupportOptions(support_chat_id=telegram.support_chat(), admin_user_ids=telegram.admins())
    if support.support_chat_id is None:
        log.warning("TELEGRAM_SUPPORT_CHAT_ID is not set: users who ask for a person are told none is available")
    store = Store(settings.db_path)
    assistant = Assistant(settings, store=store)  # one database: turns, feedback, escalations, update ids
    application = build_application(token, assistant, store, api_urls=telegram.api_urls(), options=BotOptions(),
                                    support=support)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Only possible in the main thread; elsewhere (tests) the caller stops us.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        return await run_bot(application, webhook=webhook, warm_up=assistant.warm_up, stop=stop)

    try:
        return asyncio.run(main())
    finally:
        store.close()
