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
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bots.ops_http import OpsState, add_ops_routes
from bots.runtime import Runtime, open_runtime, stop_on_signals
from bots.slack.app import ACCEPTED, SlackBot
from bots.slack.http_input import BadRequest, check_body, decode, timestamp_is_numeric
from bots.slack.config import SlackSettings
from bots.slack.events import BotIdentity
from core.config import Settings
from core.errors import ConfigError
from core.inbox import Acceptance
from core.support.claims import EVENT_ID_RETENTION_S  # the one rule for how long handled ids are kept

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"

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
    bolt_app: AsyncApp,
    signing_secret: str,
    spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
    *,
    ops: OpsState | None = None,
    max_body: int = 1024 * 1024,
    accept: Callable[[dict[str, Any]], Awaitable[Acceptance | None]] | None = None,
) -> web.Application:
    """aiohttp app serving the Events API at ``/slack/events`` (plus ``/healthz``, ``/readyz``, ``/metrics``).

    A request is bounded before it is read (413 above ``max_body``), its signature is checked
    on the raw bytes before anything is parsed (401), and a signed body that is not the shape
    Slack sends is a 400 with the reason (see :mod:`bots.slack.http_input`), never a 500.

    A signed ``event_callback`` is acknowledged as soon as its signature checks out and is
    handed to Bolt in the background (``spawn``, so that shutdown drains it): Slack only
    needs the 200, and nothing Bolt does for an event changes the response. Keeping Bolt's
    middleware chain and the idempotency claim out of the ack keeps acks fast while the
    process is busy generating (Slack retries after 3 s). The claim still decides whether
    the event is answered, so a redelivery is acknowledged and never answered twice.
    Everything whose response carries content (``url_verification``, slash commands,
    interactive actions) goes through Bolt before responding.

    ``accept`` (normally :meth:`SlackBot.accept`) stores a question in the inbox *before* the
    200: a crash after the acknowledgement can no longer lose it. When the database cannot take
    it, the answer is a 503 and Slack retries.
    """
    verifier = SignatureVerifier(signing_secret)
    pending: set[asyncio.Task[None]] = set()
    state = ops or OpsState()

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

    def refuse(status: int, reason: str, message: str) -> web.Response:
        state.metrics.rejected.labels("slack", reason).inc()
        return web.json_response({"error": message}, status=status)

    async def events(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > max_body:
            return refuse(413, "too_large", f"body larger than {max_body} bytes")
        raw = await request.content.read(max_body + 1)
        if len(raw) > max_body:
            return refuse(413, "too_large", f"body larger than {max_body} bytes")
        if not timestamp_is_numeric(request.headers):
            return refuse(400, "bad_timestamp", "X-Slack-Request-Timestamp is not a number")
        try:
            text = decode(raw)  # Slack signs UTF-8 text; the verifier itself would fail on other bytes
        except BadRequest as exc:
            return refuse(400, "malformed", f"malformed body: {exc}")
        if not verifier.is_valid_request(text, dict(request.headers)):
            return refuse(401, "bad_signature", "invalid signature")
        try:
            check_body(text, request.headers.get("Content-Type", ""))
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=request.headers)  # type: ignore[arg-type]
        except (BadRequest, ValueError, TypeError, AttributeError) as exc:
            return refuse(400, "malformed", f"malformed body: {exc}")
        body = bolt_request.body
        if body.get("type") == "event_callback":
            if accept is not None:
                try:
                    acceptance = await accept(body)
                except Exception:  # noqa: BLE001 - not stored means not acknowledged: Slack retries
                    log.exception("slack: could not store event %s; asking Slack to retry", body.get("event_id"))
                    return refuse(503, "store_unavailable", "could not store the event; retry later")
                if acceptance is not None:
                    if not acceptance.answer_now:
                        log.info("slack: %s already %s; redelivery acknowledged", body.get("event_id"),
                                 acceptance.outcome.replace("_", " "))
                        return web.Response(status=200)
                    bolt_request.context[ACCEPTED] = acceptance
            background(dispatch_later(bolt_request))
            return web.Response(status=200)
        bolt_response = await bolt_app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    app = web.Application(client_max_size=max_body)
    app.add_routes([web.post(EVENTS_PATH, events)])
    add_ops_routes(app, state)
    return app


async def start_http(
    bolt_app: AsyncApp,
    signing_secret: str,
    host: str,
    port: int,
    spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
    *,
    ops: OpsState | None = None,
    max_body: int = 1024 * 1024,
    accept: Callable[[dict[str, Any]], Awaitable[Acceptance | None]] | None = None,
) -> tuple[web.AppRunner, int]:
    """Start the Events API server; returns the runner (``cleanup()`` stops it) and the bound port.

    ``spawn`` (normally :meth:`SlackBot.spawn`) owns the background work of acknowledged
    events, so :meth:`SlackBot.drain` waits for it too.
    """
    runner = web.AppRunner(make_web_app(bolt_app, signing_secret, spawn, ops=ops, max_body=max_body, accept=accept), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port.") from None
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port  # noqa: SLF001
    return runner, int(bound)


@dataclass
class SlackStart:
    """What the start-up checks established, before any model loads."""

    client: AsyncWebClient
    identity: BotIdentity
    http: bool
    secret: str
    app_token: str | None


async def check_start(args: argparse.Namespace, slack: SlackSettings) -> SlackStart:
    """Check the settings and tokens against Slack; a :class:`ConfigError` naming the variable at fault."""
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
    return SlackStart(client, identity, http, secret, app_token)


async def serve_started(
    start: SlackStart,
    args: argparse.Namespace,
    settings: Settings,
    slack: SlackSettings,
    runtime: Runtime,
    stop: asyncio.Event,
) -> int:
    """Receive events until ``stop`` is set, with the shared assistant and store of ``runtime``."""
    bot = SlackBot(runtime.assistant, runtime.store, slack, start.client, start.identity)
    if slack.support_channel_id:
        log.info("slack: hand-offs go to support channel %s (the bot must be a member)", slack.support_channel_id)
    else:
        log.info("slack: SLACK_SUPPORT_CHANNEL not set; people asking for a person are told no one is available")
    bolt_app = bot.build_app()
    # Questions an earlier process accepted but did not answer, then leases kept while answering.
    inbox_loop = asyncio.ensure_future(bot.inbox.run(bot.resume, stop, spawn=bot.spawn))
    try:
        if start.http:
            runner, port = await start_http(bolt_app, start.secret, args.host, args.port, spawn=bot.spawn,
                                            ops=runtime.ops, max_body=settings.http_max_body_bytes,
                                            accept=bot.accept)
            _ready(f"HTTP mode, listening on http://{args.host}:{port}{EVENTS_PATH}", start.identity)
            try:
                await stop.wait()
            finally:
                await runner.cleanup()
        else:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(bolt_app, app_token=start.app_token)
            await handler.connect_async()
            _ready("Socket Mode, connected", start.identity)
            try:
                await stop.wait()
            finally:
                await handler.close_async()
    finally:
        inbox_loop.cancel()
        with suppress(asyncio.CancelledError):
            await inbox_loop
        if not await bot.stop_answering(settings.drain_seconds):
            log.warning("slack: stopped after %.0fs with answers in progress; they are answered after the restart",
                        settings.drain_seconds)
        bot.close()
    return 0


async def run(
    args: argparse.Namespace, settings: Settings, slack: SlackSettings, stop: asyncio.Event | None = None
) -> int:
    """The whole life of the Slack bot alone, on one event loop, until SIGINT/SIGTERM (or ``stop`` is set)."""
    start = await check_start(args, slack)
    stop = stop or stop_on_signals()
    async with open_runtime(settings, ("slack",)) as runtime:
        await runtime.warm_up()  # old handled event ids go with the first delivery (core.support.EventClaims)
        return await serve_started(start, args, settings, slack, runtime, stop)


def _ready(how: str, identity: BotIdentity) -> None:
    log.info("slack: ready (%s) as bot user %s", how, identity.user_id)
    print(f"askdesk Slack bot ready: {how} (bot user {identity.user_id}). Ctrl-C stops it.", file=sys.stderr, flush=True)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point used by ``askdesk serve slack`` (see :mod:`bots.cli`)."""
    slack = SlackSettings()
    return asyncio.run(run(args, settings, slack))


__all__ = ["EVENTS_PATH", "EVENT_ID_RETENTION_S", "SlackStart", "check_app_token", "check_start", "serve_started", "check_bot_token", "make_client", "make_web_app", "run", "serve", "start_http"]
