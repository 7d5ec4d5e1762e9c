"""A small fake of Slack on 127.0.0.1: the Web API methods askdesk uses, response_urls, Socket Mode.

The real ``slack_sdk`` / ``slack_bolt`` clients talk to it (``AsyncWebClient(base_url=fake.api_url)``),
so tests exercise the real request building, retries and Socket Mode protocol. Every call is
recorded; a method can be told to fail once (e.g. ``ratelimited`` with 429 + Retry-After).
Also holds helpers to build and sign Events API requests and interactivity payloads
(``block_actions`` button clicks) like Slack does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

T = TypeVar("T")

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
SIGNING_SECRET = "fake-signing-secret"
BOT_USER = "UASKDESK"
BOT_ID = "BASKDESK"
TEAM = "T0FAKE"
#: users.info answers for these ids (display names); others are ``user_not_found``.
USER_NAMES = {"UALICE": "Alice", "UBOB": "Bob", "UAGENT": "Sam from Support", "UADMIN": "Ada"}


@dataclass
class Call:
    """One request the fake received."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    ok: bool = True
    error: str | None = None


@dataclass
class Failure:
    error: str
    status: int = 200
    retry_after: int | None = None


@dataclass
class FakeSlack:
    """Slack's Web API, response_urls and a Socket Mode websocket, recording everything."""

    bot_token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    bot_user: str = BOT_USER
    bot_id: str = BOT_ID
    team: str = TEAM
    calls: list[Call] = field(default_factory=list)
    responses: list[Call] = field(default_factory=list)  # POSTs to response_urls
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)  # chat.postEphemeral, in order
    user_names: dict[str, str] = field(default_factory=lambda: dict(USER_NAMES))
    usergroups: dict[str, list[str]] = field(default_factory=dict)  # user group id -> member ids

    def __post_init__(self) -> None:
        self._failures: dict[str, list[Failure]] = {}
        self._holds: list[tuple[str, asyncio.Event, Callable[[dict[str, Any]], bool] | None]] = []
        self.held: list[Call] = []  # calls that waited (or are waiting) at a hold
        self._ts = itertools.count(1)
        self._changed = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> FakeSlack:
        app = web.Application()
        app.add_routes(
            [
                web.route("*", "/api/{method}", self._api),
                web.post("/response/{name}", self._response_url),
                web.get("/socket", self._socket),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "cmd") -> str:
        return f"{self.url}/response/{name}"

    # ---- test controls ---------------------------------------------------------------------
    def fail_next(self, method: str, error: str = "ratelimited", retry_after: int = 1) -> None:
        """Make the next call of ``method`` fail once; ``ratelimited`` answers 429 with Retry-After."""
        status = 429 if error == "ratelimited" else 200
        self._failures.setdefault(method, []).append(Failure(error, status, retry_after if status == 429 else None))

    def hold(self, method: str, gate: asyncio.Event, when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Keep matching calls of ``method`` waiting until ``gate`` is set (a slow Slack); see ``held``."""
        self._holds.append((method, gate, when))

    def seed_message(self, channel: str, ts: str, text: str, user: str, thread_ts: str | None = None, **extra: Any) -> None:
        """A message that exists in the workspace before the test (e.g. earlier thread turns)."""
        self.messages[(channel, ts)] = {"type": "message", "ts": ts, "text": text, "user": user, "thread_ts": thread_ts, **extra}

    def calls_to(self, method: str, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.ok or not ok_only)]

    @property
    def posting_calls(self) -> list[Call]:
        """Every successful call that would show something in Slack."""
        visible = ("chat.postMessage", "chat.update", "chat.postEphemeral")
        return [c for c in self.calls if c.method in visible and c.ok] + list(self.responses)

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every recorded call); no fixed sleeps."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                summary = ", ".join(f"{c.method}{'' if c.ok else '!'}" for c in self.calls)
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; calls so far: {summary}")
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except asyncio.TimeoutError:
                pass

    def _record(self, call: Call, target: list[Call] | None = None) -> None:
        (self.calls if target is None else target).append(call)
        self._changed.set()

    # ---- Web API ---------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.pop("token", None)
        call = Call(method, args, token, time.monotonic())
        for held_method, gate, when in self._holds:
            if held_method == method and not gate.is_set() and (when is None or when(args)):
                self.held.append(call)
                self._changed.set()
                await gate.wait()

        queued = self._failures.get(method)
        if queued:
            failure = queued.pop(0)
            call.ok, call.error = False, failure.error
            self._record(call)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status, headers=headers)

        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            call.ok, call.error = False, "invalid_auth" if token else "not_authed"
            self._record(call)
            return web.json_response({"ok": False, "error": call.error})

        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            call.ok, call.error = False, "unknown_method"
            self._record(call)
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        body = handler(args)
        call.ok = bool(body.get("ok"))
        call.error = body.get("error")
        self._record(call)
        return web.json_response(body)

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1800000000 + n}.{n:06d}"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.example/", "team": "Fake", "user": "askdesk",
                "team_id": self.team, "user_id": self.bot_user, "bot_id": self.bot_id}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        ts = self._next_ts()
        message = {"type": "message", "ts": ts, "text": args.get("text", ""), "user": self.bot_user,
                   "bot_id": self.bot_id, "thread_ts": args.get("thread_ts")}
        blocks = _blocks(args)
        if blocks is not None:
            message["blocks"] = blocks
        self.messages[(args["channel"], ts)] = message
        return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self.messages.get((args.get("channel", ""), args.get("ts", "")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message["text"] = args.get("text", "")
        blocks = _blocks(args)
        if blocks is not None:  # like Slack: an update without blocks keeps none
            message["blocks"] = blocks
        else:
            message.pop("blocks", None)
        return {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": message["text"]}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "channel_not_found" if not args.get("channel") else "user_not_in_channel"}
        self.ephemerals.append({"channel": args["channel"], "user": args["user"], "text": args.get("text", ""),
                                "thread_ts": args.get("thread_ts"), "blocks": _blocks(args) or []})
        return {"ok": True, "message_ts": self._next_ts()}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user") or "")
        name = self.user_names.get(user)
        if name is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": user, "name": name.lower().split()[0], "real_name": name,
                                     "profile": {"display_name": name, "real_name": name}}}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup") or "")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, thread_ts = args.get("channel"), args.get("ts")
        found = [
            {k: v for k, v in m.items() if v is not None}
            for (ch, ts), m in self.messages.items()
            if ch == channel and (ts == thread_ts or m.get("thread_ts") == thread_ts)
        ]
        if not found:
            return {"ok": False, "error": "thread_not_found"}
        found.sort(key=_ts_key)
        if args.get("latest"):
            inclusive = str(args.get("inclusive")).lower() in ("1", "true")
            found = [m for m in found if _ts_key(m) < _ts_key({"ts": args["latest"]}) or (inclusive and m["ts"] == args["latest"])]
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 1000)
        page = found[start : start + limit]
        more = start + limit < len(found)
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    # ---- response_url ----------------------------------------------------------------------
    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(Call("response_url", body, None, time.monotonic()), self.responses)
        return web.Response(text="ok")

    # ---- Socket Mode -----------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "AFAKE"},
                            "debug_info": {"host": "fake", "approximate_connection_time": 3600}})
        self._changed.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if "envelope_id" in data:
                        self.socket_acks.append(data)
                        self._changed.set()
        finally:
            self._sockets.remove(ws)
        return ws

    async def send_envelope(self, payload: dict[str, Any], kind: str = "events_api", retry_attempt: int = 0,
                            envelope_id: str | None = None) -> str:
        """Deliver one Socket Mode envelope to the connected app (waits for its connection).

        The app connects only after warming its models up, which on a busy 2-core machine with a
        cold model cache (a fresh clone's first test to load the generator) takes well over 30 s:
        the wait is a safety net against a hang, not a speed check.
        """
        await self.wait_for(lambda: self._sockets, timeout=180, what="a Socket Mode connection")
        envelope_id = envelope_id or f"env-{next(self._ts)}"
        await self._sockets[-1].send_json({
            "envelope_id": envelope_id, "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else "",
        })
        return envelope_id


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]] | None:
    blocks = args.get("blocks")
    if isinstance(blocks, str):  # form-encoded calls send blocks as a JSON string
        blocks = json.loads(blocks)
    return blocks


def _ts_key(message: dict[str, Any]) -> tuple[int, int]:
    seconds, _, fraction = str(message["ts"]).partition(".")
    return int(seconds), int(fraction or 0)


# ---- building and signing requests the way Slack does --------------------------------------
_event_ids = itertools.count(1)


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The ``X-Slack-Signature`` / ``X-Slack-Request-Timestamp`` headers for ``body``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def event_callback(event: dict[str, Any], event_id: str | None = None, team: str = TEAM) -> dict[str, Any]:
    """An Events API envelope around ``event``."""
    return {
        "token": "deprecated-verification-token", "team_id": team, "api_app_id": "AFAKE",
        "event": event, "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):08d}", "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": BOT_USER, "is_bot": True, "is_enterprise_install": False}],
    }


def mention(text: str, ts: str, channel: str = "C0GENERAL", user: str = "UALICE", thread_ts: str | None = None,
            **extra: Any) -> dict[str, Any]:
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER}> {text}", "ts": ts,
             "channel": channel, "event_ts": ts, **extra}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def direct_message(text: str, ts: str, channel: str = "D0ALICE", user: str = "UALICE", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
            "channel": channel, "event_ts": ts, **extra}


def slash_command(text: str, response_url: str, command: str = "/ask", channel: str = "C0GENERAL",
                  user: str = "UALICE", trigger_id: str | None = None) -> dict[str, str]:
    return {
        "token": "deprecated", "team_id": TEAM, "team_domain": "fake", "channel_id": channel,
        "channel_name": "general", "user_id": user, "user_name": "alice", "command": command, "text": text,
        "api_app_id": "AFAKE", "response_url": response_url,
        "trigger_id": trigger_id or f"trigger.{next(_event_ids)}",
    }


def channel_message(text: str, ts: str, channel: str, user: str = "UAGENT", thread_ts: str | None = None,
                    channel_type: str = "channel", **extra: Any) -> dict[str, Any]:
    """A ``message.channels`` (or ``message.groups``) event: ordinary chatter, or a reply in a thread."""
    event = {"type": "message", "channel_type": channel_type, "user": user, "text": text, "ts": ts,
             "channel": channel, "event_ts": ts, **extra}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def block_action(fake: FakeSlack, channel: str, message_ts: str, action_id: str, user: str = "UALICE",
                 value: str | None = None, thread_ts: str | None = None, ephemeral: bool = False,
                 response_name: str = "action") -> dict[str, Any]:
    """A ``block_actions`` payload: ``user`` clicked the button ``action_id`` on a message.

    By default the button (and its value) is looked up in the message the fake holds, like
    Slack, which only sends clicks on buttons that exist; pass ``value`` for other messages
    (e.g. ephemeral ones, which the fake does not keep).
    """
    message = fake.messages.get((channel, message_ts))
    if value is None:
        if message is None:
            raise AssertionError(f"no message {message_ts} in {channel}")
        value = button_value(message.get("blocks") or [], action_id)
    user_name = fake.user_names.get(user, user).lower().split()[0]
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": TEAM},
        "api_app_id": "AFAKE", "token": "deprecated",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": ephemeral},
        "trigger_id": f"trigger.{next(_event_ids)}",
        "team": {"id": TEAM, "domain": "fake"},
        "channel": {"id": channel, "name": "channel"},
        "response_url": fake.response_url(response_name),
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value,
                     "action_ts": f"{time.time():.6f}", "text": {"type": "plain_text", "text": action_id}}],
    }
    if thread_ts or (message and message.get("thread_ts")):
        payload["container"]["thread_ts"] = thread_ts or message.get("thread_ts")  # type: ignore[union-attr]
    if message is not None and not ephemeral:
        payload["message"] = {k: v for k, v in message.items() if v is not None}
    return payload


def button_value(blocks: list[dict[str, Any]], action_id: str) -> str:
    """The value of the button ``action_id`` in ``blocks`` (AssertionError when there is none)."""
    for block in blocks:
        for element in block.get("elements") or ():
            if element.get("type") == "button" and element.get("action_id") == action_id:
                return str(element.get("value", ""))
    raise AssertionError(f"no button {action_id!r} in {blocks}")


def form_body(fields: dict[str, str]) -> str:
    return urlencode(fields)


def interaction_body(payload: dict[str, Any]) -> str:
    """How Slack posts interactivity payloads: form-encoded ``payload=<json>``."""
    return urlencode({"payload": json.dumps(payload)})
