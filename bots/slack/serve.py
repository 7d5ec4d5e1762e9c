"""``askdesk serve slack``: check the tokens, load the models once, then serve events.

Socket Mode when ``SLACK_APP_TOKEN`` is set (no public URL needed); ``--http`` serves the
Events API at ``/slack/events`` and verifies every request with ``SLACK_SIGNING_SECRET``.
Start-up fails fast, before the models load, with a :class:`ConfigError` that names the
token at fault.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.app import SlackBot
from bots.slack.config import SlackSettings
from bots.slack.events import BotIdentity
from core.config import Settings
from core.errors import ConfigError
from core.store import Store

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
#: Slack stops retrying after a few hours; a week of event ids is plenty and keeps the table small.
EVENT_ID_RETENTION_S = 7 * 24 * 3600

_TOKEN_HINTS = {
    "invalid_auth": "the token is wrong or was regenerated; copy the current Bot User OAuth Token (xoxb-…) "
    "from 'OAuth & Permissions'",
    "not_authed": "no token reached Slack; check that SLACK_BOT_TOKEN is set",
    "token_revoked": "the token was revoked; reinstall the app to your workspace and copy the new token",
    "token_expired": "the token expired (token rotation is on); turn rotation off or provide a fresh token",
    "account_inactive": "the app was uninstalled or its user deactivated; reinstall the app",
}


def make_client(slack: SlackSettings) -> AsyncWebClient:
    """The one Web API client: bot token, optional base URL, retries on connection errors and ``ratelimited``."""
    kwargs = {}
    if slack.api_base_url:
        kwargs["base_url"] = slack.api_base_url.rstrip("/") + "/"
    return AsyncWebClient(
        token=slack.require_bot_token(),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            # Honours Retry-After on HTTP 429, so a rate-limited call is delayed, not lost.
            AsyncRateLimitErrorRetryHandler(max_retry_count=slack.rate_limit_retries),
        ],
        **kwargs,
    )


async def check_bot_token(client: AsyncWebClient) -> BotIdentity:
    """``auth.test`` the bot token; who the bot is, or a ConfigError saying what is wrong with SLACK_BOT_TOKEN."""
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc.response.status_code)
        hint = _TOKEN_HINTS.get(error, "check the token and the app's installation")
        raise ConfigError(f"Slack rejected SLACK_BOT_TOKEN: auth.test answered '{error}' ({hint}).") from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise ConfigError(
            f"Could not reach the Slack Web API at {client.base_url} to check SLACK_BOT_TOKEN "
            f"({type(exc).__name__}: {exc}). Check the network, a proxy, or SLACK_API_BASE_URL."
        ) from None
    if not response.get("bot_id"):
        raise ConfigError("SLACK_BOT_TOKEN belongs to a user, not a bot; use the Bot User OAuth Token (xoxb-…).")
    return BotIdentity(user_id=str(response["user_id"]), bot_id=response.get("bot_id"), team_id=response.get("team_id"))


async def check_app_token(client: AsyncWebClient, app_token: str) -> None:
    """Ask for a Socket Mode URL once, so a bad SLACK_APP_TOKEN stops start-up before models load."""
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = exc.response.get("error") or exc.response.status_code
        raise ConfigError(
            f"Slack rejected SLACK_APP_TOKEN: apps.connections.open answered '{error}'. Create an app-level token "
            "with the connections:write scope under 'Basic Information → App-Level Tokens', and turn on Socket Mode."
        ) from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise ConfigError(f"Could not reach Slack to check SLACK_APP_TOKEN ({type(exc).__name__}: {exc}).") from None


def make_web_app(
    bolt_app: AsyncApp, signing_secret: str, spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None
) -> web.Application:
    """aiohttp app serving the Events API at ``/slack/events`` (and ``/healthz`` for load balancers).

    A signed ``event_callback`` is acknowledged as soon as its signature checks out and is
    handed to Bolt in the background (``spawn``, so that shutdown drains it): Slack only
    needs the 200, and nothing Bolt does for an event changes the response. Keeping Bolt's
    middleware chain and the idempotency claim out of the ack keeps acks fast while the
    process is busy generating (Slack retries after 3 s). The claim still decides whether
    the event is answered, so a redelivery is acknowledged and never answered twice.
    Everything whose response carries content (``url_verification``, slash commands,
    interactive actions) goes through Bolt before responding. A body that cannot be parsed
    is a 400 (or 401 when it is not signed either), not a 500.
    """
    verifier = SignatureVerifier(signing_secret)
    pending: set[asyncio.Task[None]] = set()

    def background(work: Coroutine[Any, Any, None]) -> None:
        if spawn is not None:
            spawn(work)
            return
        task = asyncio.ensure_future(work)
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def dispatch_later(bolt_request: AsyncBoltRequest) -> None:
        response = await bolt_app.async_dispatch(bolt_request)
        if response.status >= 400:
            log.warning("slack: event acknowledged, but Bolt answered %s: %s", response.status, response.body[:200])

    async def events(request: web.Request) -> web.Response:
        try:
            bolt_request = await to_bolt_request(request)
        except ValueError:  # malformed JSON or payload
            body = await request.text()
            signed = verifier.is_valid_request(body, dict(request.headers))
            return web.json_response({"error": "malformed body" if signed else "invalid signature"}, status=400 if signed else 401)
        body = bolt_request.body
        if body.get("type") == "event_callback" and verifier.is_valid_request(bolt_request.raw_body, dict(request.headers)):
            background(dispatch_later(bolt_request))
            return web.Response(status=200)
        bolt_response = await bolt_app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes([web.post(EVENTS_PATH, events), web.get("/healthz", health)])
    return app


async def start_http(
    bolt_app: AsyncApp,
    signing_secret: str,
    host: str,
    port: int,
    spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
) -> tuple[web.AppRunner, int]:
    """Start the Events API server; returns the runner (``cleanup()`` stops it) and the bound port.

    ``spawn`` (normally :meth:`SlackBot.spawn`) owns the background work of acknowledged
    events, so :meth:`SlackBot.drain` waits for it too.
    """
    runner = web.AppRunner(make_web_app(bolt_app, signing_secret, spawn), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port.") from None
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port  # noqa: SLF001
    return runner, int(bound)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run(
    args: argparse.Namespace, settings: Settings, slack: SlackSettings, stop: asyncio.Event | None = None
) -> int:
    """The whole life of the Slack bot, on one event loop, until SIGINT/SIGTERM (or ``stop`` is set)."""
    from core.assistant import Assistant

    slack.require_bot_token()
    http = bool(getattr(args, "http", False))
    app_token = None if http else slack.app_token_value()
    if http:
        secret = slack.require_signing_secret()
    elif app_token is None:
        raise ConfigError(
            "Choose how Slack reaches askdesk: set SLACK_APP_TOKEN (xapp-…) for Socket Mode, or run "
            "`askdesk serve slack --http` with SLACK_SIGNING_SECRET set and a public URL for /slack/events."
        )
    else:
        secret = ""

    client = make_client(slack)
    identity = await check_bot_token(client)
    if app_token:
        await check_app_token(client, app_token)

    store = Store(settings.db_path)
    store.forget_events_before(time.time() - EVENT_ID_RETENTION_S)
    assistant = Assistant(settings, store=store)  # one database: turns, feedback, escalations
    started = time.perf_counter()
    log.info("slack: loading models")
    await asyncio.to_thread(assistant.warm_up)  # models load once, before the first event
    log.info("slack: models ready in %.1fs", time.perf_counter() - started)

    bot = SlackBot(assistant, store, slack, client, identity)
    if slack.support_channel_id:
        log.info("slack: hand-offs go to support channel %s (the bot must be a member)", slack.support_channel_id)
    else:
        log.info("slack: SLACK_SUPPORT_CHANNEL not set; people asking for a person are told no one is available")
    bolt_app = bot.build_app()
    stop = stop or _stop_event()
    try:
        if http:
            runner, port = await start_http(bolt_app, secret, args.host, args.port, spawn=bot.spawn)
            _ready(f"HTTP mode, listening on http://{args.host}:{port}{EVENTS_PATH}", identity)
            try:
                await stop.wait()
            finally:
                await runner.cleanup()
        else:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(bolt_app, app_token=app_token)
            await handler.connect_async()
            _ready("Socket Mode, connected", identity)
            try:
                await stop.wait()
            finally:
                await handler.close_async()
    finally:
        if not await bot.drain(timeout=30):
            log.warning("slack: stopped with answers still in progress")
        bot.close()
        store.close()
    return 0


def _ready(how: str, identity: BotIdentity) -> None:
    log.info("slack: ready (%s) as bot user %s", how, identity.user_id)
    print(f"askdesk Slack bot ready: {how} (bot user {identity.user_id}). Ctrl-C stops it.", file=sys.stderr, flush=True)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point used by ``askdesk serve slack`` (see :mod:`bots.cli`)."""
    slack = SlackSettings()
    return asyncio.run(run(args, settings, slack))


__all__ = ["EVENTS_PATH", "check_app_token", "check_bot_token", "make_client", "make_web_app", "run", "serve", "start_http"]
