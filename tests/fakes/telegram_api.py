"""A small fake of the Telegram Bot API on 127.0.0.1, for driving the real python-telegram-bot.

Serves ``/bot<token>/<method>`` like api.telegram.org: ``getMe``, ``getUpdates`` (real long
poll with ``offset``), ``deleteWebhook``, ``setWebhook``, ``sendMessage``, ``editMessageText``,
``editMessageReplyMarkup``, ``answerCallbackQuery``, ``sendChatAction``, and ``sendPhoto`` /
``sendMediaGroup`` by URL (the pictures in ``photos``; a URL that is not http(s) is refused like one
Telegram cannot fetch). Inline keyboards are kept
with each message (``messages[...]["reply_markup"]``), and ``callback_update`` builds the update a
button click produces. It records every call, checks HTML like Telegram does (allowed tags only,
``<``/``>``/``&`` escaped, at most 4096 characters), and can be told to fail once: 429 with
``retry_after``, 400 "can't parse entities", or 409 Conflict for ``getUpdates``.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

TOKEN = "123456789:TEST-token_for-askdesk"
BOT_ID = 123456789
BOT_USERNAME = "askdesk_test_bot"

# Tags Telegram's HTML parse mode accepts, and the attributes allowed on each.
ALLOWED_TAGS: dict[str, set[str]] = {
    "b": set(), "strong": set(), "i": set(), "em": set(), "u": set(), "ins": set(), "s": set(),
    "strike": set(), "del": set(), "tg-spoiler": set(), "span": {"class"}, "a": {"href"},
    "code": {"class"}, "pre": set(), "blockquote": {"expandable"}, "tg-emoji": {"emoji-id"},
}
ENTITIES = {"lt", "gt", "amp", "quot"}


class _TelegramHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.errors.append(f"Unsupported start tag \"{tag}\"")
            return
        for name, _ in attrs:
            if name not in ALLOWED_TAGS[tag]:
                self.errors.append(f"Unsupported attribute \"{name}\" on \"{tag}\"")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"Unexpected end tag \"{tag}\"")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for ch in "<>&":
            if ch in data:
                self.errors.append(f"unescaped {ch!r} in text")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ENTITIES:
            self.errors.append(f"Unsupported entity &{name};")
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))

    def unknown_decl(self, data: str) -> None:
        self.errors.append("unsupported declaration")

    def handle_comment(self, data: str) -> None:
        self.errors.append("comments are not supported")


def check_telegram_html(text: str) -> tuple[str | None, str]:
    """``(error or None, visible text)`` for ``text`` in Telegram's HTML parse mode."""
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.rawdata:  # HTMLParser keeps what it could not parse, e.g. a stray "<"
        parser.errors.append(f"unparsed text {parser.rawdata[:20]!r}")
    if parser.stack:
        parser.errors.append(f"unclosed tags {parser.stack}")
    error = f"Bad Request: can't parse entities: {parser.errors[0]}" if parser.errors else None
    return error, "".join(parser.text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One request the bot made, and what the fake answered."""

    method: str
    params: dict[str, Any]
    status: int = 200
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    parameters: dict[str, Any] | None
    when: Callable[[dict[str, Any]], bool] | None
    times: int


_INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "timeout", "message_thread_id"}


def _decode(key: str, value: str) -> Any:
    if key in _INT_PARAMS:
        try:
            return int(value)
        except ValueError:
            return value
    if value[:1] in "[{" or value in ("true", "false"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class FakeTelegramAPI:
    """The fake server. ``async with FakeTelegramAPI() as api`` starts it on a random port."""

    def __init__(self, token: str = TOKEN, bot_id: int = BOT_ID, username: str = BOT_USERNAME) -> None:
        self.token = token
        self.bot_id = bot_id
        self.username = username
        self.calls: list[Call] = []
        self.conflict = False  # answer every getUpdates with 409 Conflict
        self.reject_token = False  # answer every method with 401 Unauthorized
        self._updates: list[dict[str, Any]] = []
        self._redeliver: list[dict[str, Any]] = []
        self._failures: list[_Failure] = []
        self._holds: list[tuple[str, asyncio.Event, Callable[[dict[str, Any]], bool] | None]] = []
        self.held: list[Call] = []  # calls that waited (or are waiting) at a hold
        self._changed = asyncio.Condition()
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, id) -> message as sent/edited
        self._callback_ids = itertools.count(1)
        self.callback_queries: dict[str, dict[str, Any] | None] = {}  # id -> answerCallbackQuery params
        self.photos: list[dict[str, Any]] = []  # pictures sent (sendPhoto, sendMediaGroup), in order
        self._media_groups = itertools.count(1)
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> FakeTelegramAPI:
        app = web.Application()
        app.router.add_route("POST", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        self._closing = True
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegramAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def root_url(self) -> str:
        """What ``TELEGRAM_API_BASE_URL`` would be set to."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_urls(self) -> tuple[str, str]:
        return f"{self.root_url}/bot", f"{self.root_url}/file/bot"

    # ---- test controls ----------------------------------------------------------------
    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def enqueue(self, update: dict[str, Any]) -> dict[str, Any]:
        """Make ``update`` available to ``getUpdates``."""
        self._updates.append(update)
        await self._notify()
        return update

    async def redeliver(self, update: dict[str, Any]) -> None:
        """Serve ``update`` again on the next ``getUpdates``, whatever its offset (a redelivery)."""
        self._redeliver.append(update)
        await self._notify()

    def fail_next(self, method: str, status: int, description: str, *, parameters: dict[str, Any] | None = None,
                  when: Callable[[dict[str, Any]], bool] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` matching calls of ``method`` with an error."""
        self._failures.append(_Failure(method, status, description, parameters, when, times))

    def hold(self, method: str, gate: asyncio.Event, *, when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Keep matching calls of ``method`` waiting until ``gate`` is set (a slow Telegram); see ``held``."""
        self._holds.append((method, gate, when))

    def calls_to(self, *methods: str, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method in methods and (c.status == 200 or not ok_only)]

    def sent_to(self, chat_id: int) -> list[Call]:
        """Successful sendMessage/editMessageText calls for one chat, in order."""
        return [c for c in self.calls_to("sendMessage", "editMessageText") if c.params.get("chat_id") == chat_id]

    def final_text(self, chat_id: int) -> str:
        """The visible text of every message in ``chat_id``, as it stands now, joined."""
        parts = []
        for (chat, _), msg in sorted(self.messages.items()):
            if chat == chat_id:
                parts.append(msg["visible"])
        return "\n".join(parts)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
        """Wait until ``condition()`` holds (checked on every call the fake receives)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    methods = [(c.method, c.status) for c in self.calls]
                    raise AssertionError(f"timed out waiting for {what}; calls so far: {methods}")
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.5))
                except asyncio.TimeoutError:
                    pass

    # ---- update builders ----------------------------------------------------------------
    def message_update(
        self,
        text: str | None = None,
        *,
        chat_id: int = 42,
        chat_type: str = "private",
        user_id: int = 7,
        first_name: str = "Ada",
        reply_to_bot: bool = False,
        reply_to: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A ``message`` update as Telegram sends it, with command and mention entities filled in.

        ``reply_to``: the id of a message the bot sent in this chat that this one replies to."""
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = "Support group"
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
        }
        if text is not None:
            message["text"] = text
            entities = _entities(text)
            if entities:
                message["entities"] = entities
        if reply_to_bot:
            message["reply_to_message"] = {
                "message_id": next(self._message_ids),
                "date": int(time.time()) - 60,
                "chat": chat,
                "from": self._me(),
                "text": "An earlier answer.",
            }
        if reply_to is not None:
            message["reply_to_message"] = self.message_json(chat_id, reply_to)
        if extra:
            message.update(extra)
        return {"update_id": next(self._update_ids), "message": message}

    def message_json(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A message the bot sent, as Telegram describes it inside updates."""
        stored = self.messages[(chat_id, message_id)]
        message: dict[str, Any] = {"message_id": message_id, "date": stored["date"], "chat": stored["chat"],
                                   "from": self._me(), "text": stored["visible"]}
        if stored.get("reply_markup"):
            message["reply_markup"] = stored["reply_markup"]
        if stored.get("message_thread_id"):
            message["message_thread_id"] = stored["message_thread_id"]
            message["is_topic_message"] = True
        return message

    def buttons(self, chat_id: int, message_id: int) -> list[tuple[str, str]]:
        """``(text, callback_data)`` of the inline buttons under a message, row by row."""
        markup = self.messages[(chat_id, message_id)].get("reply_markup") or {}
        return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]

    def callback_update(self, chat_id: int, message_id: int, data: str, *, user_id: int = 7,
                        first_name: str = "Ada") -> dict[str, Any]:
        """The ``callback_query`` update Telegram sends when a user presses an inline button."""
        query_id = str(next(self._callback_ids))
        self.callback_queries[query_id] = None
        return {"update_id": next(self._update_ids), "callback_query": {
            "id": query_id,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "message": self.message_json(chat_id, message_id),
            "chat_instance": f"ci-{chat_id}",
            "data": data,
        }}

    # ---- the API ----------------------------------------------------------------------
    def _me(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Askdesk", "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        if request.content_type == "application/json":
            params = await request.json()
        else:
            for key, value in (await request.post()).items():
                params[key] = _decode(key, value) if isinstance(value, str) else value
        call = Call(method, params)
        self.calls.append(call)
        for held_method, gate, when in self._holds:
            if held_method == method and not gate.is_set() and (when is None or when(params)):
                self.held.append(call)
                await self._notify()
                await gate.wait()
        try:
            status, payload = await self._respond(request.match_info["token"], method, params)
        except asyncio.CancelledError:
            raise
        call.status = status
        await self._notify()
        return web.json_response(payload, status=status)

    def _failure_for(self, method: str, params: dict[str, Any]) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.times > 0 and (failure.when is None or failure.when(params)):
                failure.times -= 1
                return failure
        return None

    @staticmethod
    def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return status, body

    async def _respond(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if token != self.token or self.reject_token:
            return self._error(401, "Unauthorized")
        failure = self._failure_for(method, params)
        if failure is not None:
            return self._error(failure.status, failure.description, failure.parameters)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        result = await handler(params)
        if isinstance(result, tuple):
            return result
        return 200, {"ok": True, "result": result}

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return self._me()

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.conflict:
            return self._error(409, "Conflict: terminated by other getUpdates request; "
                                    "make sure that only one bot instance is running")
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        async with self._changed:
            while True:
                if self._redeliver:
                    ready, self._redeliver = self._redeliver, []
                    return ready
                # Like Telegram: an offset confirms (forgets) every earlier update.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or self._closing:
                    return list(self._updates)
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=left)
                except asyncio.TimeoutError:
                    pass

    def _check_text(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]] | str:
        text = str(params.get("text", ""))
        visible = text
        if params.get("parse_mode") == "HTML":
            error, visible = check_telegram_html(text)
            if error:
                return self._error(400, error)
        elif params.get("parse_mode"):
            return self._error(400, f"Bad Request: unsupported parse_mode {params['parse_mode']}")
        if not visible.strip():
            return self._error(400, "Bad Request: message text is empty")
        if utf16_len(visible) > 4096:
            return self._error(400, "Bad Request: message is too long")
        return visible

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        checked = self._check_text(params)
        if isinstance(checked, tuple):
            return checked
        chat_id = int(params["chat_id"])
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self._me(),
            "text": checked,
        }
        markup = params.get("reply_markup") or None
        if markup:
            message["reply_markup"] = markup
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
        self.messages[(chat_id, message["message_id"])] = {
            "raw": params["text"], "visible": checked, "parse_mode": params.get("parse_mode"), "edits": 0,
            "reply_markup": markup, "chat": chat, "date": message["date"],
            "message_thread_id": params.get("message_thread_id"),
        }
        return message

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        checked = self._check_text(params)
        if isinstance(checked, tuple):
            return checked
        key = (int(params["chat_id"]), int(params["message_id"]))
        current = self.messages.get(key)
        if current is None:
            return self._error(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup") or None  # like Telegram: an edit without markup drops the buttons
        if current["raw"] == params["text"] and current["parse_mode"] == params.get("parse_mode") \
                and current["reply_markup"] == markup:
            return self._error(400, "Bad Request: message is not modified: specified new message content and "
                                    "reply markup are exactly the same as a current content and reply markup "
                                    "of the message")
        current.update(raw=params["text"], visible=checked, parse_mode=params.get("parse_mode"),
                       edits=current["edits"] + 1, reply_markup=markup)
        return self.message_json(*key)

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        key = (int(params["chat_id"]), int(params["message_id"]))
        current = self.messages.get(key)
        if current is None:
            return self._error(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup") or None
        if markup == current["reply_markup"]:
            return self._error(400, "Bad Request: message is not modified: specified new message content and "
                                    "reply markup are exactly the same as a current content and reply markup "
                                    "of the message")
        current["reply_markup"] = markup
        return self.message_json(*key)

    def _photo(self, chat_id: int, url: str, caption: str | None, thread_id: Any, group: str | None) -> dict[str, Any]:
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": self._me(),
            "photo": [{"file_id": f"photo-{len(self.photos)}", "file_unique_id": f"u{len(self.photos)}",
                       "width": 640, "height": 480}],
        }
        if caption:
            message["caption"] = caption
        if group:
            message["media_group_id"] = group
        if thread_id:
            message["message_thread_id"] = thread_id
        self.photos.append({"chat_id": chat_id, "url": url, "caption": caption, "message_thread_id": thread_id,
                            "media_group_id": group, "message_id": message["message_id"]})
        return message

    @staticmethod
    def _fetchable(url: object) -> bool:
        return isinstance(url, str) and url.startswith(("http://", "https://"))

    async def _api_sendPhoto(self, params: dict[str, Any]) -> Any:
        if not self._fetchable(params.get("photo")):
            return self._error(400, "Bad Request: wrong HTTP URL specified")
        return self._photo(int(params["chat_id"]), params["photo"], params.get("caption"),
                           params.get("message_thread_id"), None)

    async def _api_sendMediaGroup(self, params: dict[str, Any]) -> Any:
        media = params.get("media")
        if isinstance(media, str):
            media = json.loads(media)
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            return self._error(400, "Bad Request: wrong number of media in the album")
        if not all(isinstance(m, dict) and m.get("type") == "photo" and self._fetchable(m.get("media")) for m in media):
            return self._error(400, "Bad Request: wrong HTTP URL specified")
        group = f"album-{next(self._media_groups)}"
        return [self._photo(int(params["chat_id"]), m["media"], m.get("caption"), params.get("message_thread_id"), group)
                for m in media]

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        query_id = str(params.get("callback_query_id"))
        if query_id not in self.callback_queries or self.callback_queries[query_id] is not None:
            return self._error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        self.callback_queries[query_id] = params
        return True


def _entities(text: str) -> list[dict[str, Any]]:
    """bot_command and mention entities, with UTF-16 offsets as Telegram computes them."""
    import re

    entities = []
    for m in re.finditer(r"(?<!\S)/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?|(?<![\w@])@[A-Za-z0-9_]{5,32}", text):
        kind = "bot_command" if m.group().startswith("/") else "mention"
        if kind == "bot_command" and m.start() != 0:
            continue
        entities.append({"type": kind, "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())})
    return entities
