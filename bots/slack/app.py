"""The Bolt app: Slack events in, answers out; translation only, the core does the thinking.

The listeners (:mod:`bots.slack.listeners`) read Bolt's payloads and hand them to
:class:`SlackBot`'s ``take_*`` methods; the bot owns everything that follows.

Every event is acknowledged at once (over HTTP as soon as its signature checks out, see
:func:`bots.slack.serve.make_web_app`; in Socket Mode Bolt acks before the listener's work,
and the listener only schedules a task); the answer is produced in the background:
👀 on the question → a message with the first words → ``chat.update`` edits as text streams
(at most once per ``SLACK_STREAM_INTERVAL``) → the final mrkdwn with sources (and an image block
per picture of the cited passages, :mod:`bots.images`) → 👀 removed.
The streamed message is posted with the first words that are certain and shows only text the final
answer keeps (no placeholder, no trailing marker): a user never sees text that is later taken back.

Every answer ends with 👍/👎 buttons and related articles; a request for a person (or a
refusal's "Talk to a person") goes to the support channel — see :mod:`bots.slack.interactive`.

Questions (mentions, DMs) go through the inbox (:mod:`core.inbox`): stored before Slack gets its
200 or its Socket Mode ack, marked answered only after the reply is posted, and answered after a
restart when the process that accepted them stopped — at least once, and with the reply's first
message remembered so a second try edits it instead of posting again. Other deliveries (slash
commands, button clicks) are claimed by id in the store before any listener runs. Either way
Slack's redeliveries (``X-Slack-Retry-Num``, Socket Mode retries) never produce a second answer.
Answers take turns through a fair queue (:mod:`core.fairness`), so one busy user cannot hold
everyone else's questions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.blocks import (
    ConversationRef,
    answer_blocks,
    answer_footer,
    has_images,
    without_images,
)
from bots.slack.config import SlackSettings
from bots.slack.events import (
    PLATFORM,
    BotIdentity,
    incoming_message,
    question_text,
    reply_thread,
    skip_reason,
    thread_history,
)
from bots.slack.interactive import Interactions
from bots.slack.listeners import register_listeners
from bots.slack.render import escape, render_answer, render_partial
from bots.slack.support import SlackSupportChannel
from bots.streaming import relay_stream
from core.assistant import Assistant
from core.errors import InvalidMessageError
from core.fairness import Busy, FairQueue, Limits
from core.inbox import Acceptance, Inbox
from core.support import AgentAllowlist, EventClaims, StoreThread, SupportWorkflow, scope_names
from core.support.agents import parse_ids
from core.language import detect_language, phrase
from core.messages import Answer, HistoryTurn, IncomingMessage
from core.store import InboxItem, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

REACTION = "eyes"
NOT_NOW = "raised_hand"  # on a question turned away after its asker was told to ask again
#: What Slack answers when it cannot download an image block's picture ("downloading image failed").
IMAGE_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format"})
#: conversations.replies paging: threads longer than pages × size only lose their oldest turns.
REPLIES_PAGE_SIZE = 200
REPLIES_MAX_PAGES = 5


class _Preview:
    """The message an answer streams into: posted with the first certain words, then edited."""

    __slots__ = ("on_posted", "text", "ts")

    def __init__(self) -> None:
        self.ts: str | None = None
        self.text = ""
        self.on_posted: Callable[[str], Awaitable[None]] | None = None  # remembers the message in the inbox


#: Where the HTTP layer leaves its :class:`~core.inbox.Acceptance` for the deduplication middleware.
ACCEPTED = "askdesk_acceptance"


def _user_key(message: IncomingMessage) -> str:
    """One fair-queue lane per person (Slack user ids are unique per workspace)."""
    return f"{message.conversation_id.split(':', 1)[0]}:{message.user_id or 'anonymous'}"


def dedupe_key(body: Mapping[str, Any]) -> str | None:
    """What identifies one delivery across retries: ``event_id``, or a command's or click's ``trigger_id``."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return str(body["event_id"])
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    if body.get("type") == "block_actions" and body.get("trigger_id"):
        return f"action:{body['trigger_id']}"
    return None


class SlackBot(Interactions):
    """Owns the answering side of the adapter: background tasks, the idempotency claim, Slack calls."""

    def __init__(
        self,
        assistant: Assistant,
        store: Store,
        slack: SlackSettings,
        client: AsyncWebClient,
        identity: BotIdentity,
    ) -> None:
        self.assistant = assistant
        self.store = store
        self.slack = slack
        self.client = client
        self.identity = identity
        self._tasks: set[asyncio.Task[None]] = set()
        self.inbox = Inbox(store, PLATFORM)
        self.fair = FairQueue(Limits.from_settings(assistant.settings))
        agent_ids, any_member = parse_ids(slack.support_agent_ids)
        self.agents = AgentAllowlist(agent_ids, any_member=any_member,
                                     group_members=self._agent_group_members if slack.support_agent_group else None)
        if slack.support_channel_id:
            self.agents.warn_if_unset("slack", "SLACK_SUPPORT_AGENT_IDS or SLACK_SUPPORT_AGENT_GROUP")
        self._names: dict[str, str | None] = {}  # users.info, once per user and process
        # SQLite writes get their own thread: the default executor is busy with model work,
        # and an ack must never wait behind a generation.
        self._store_thread = StoreThread()
        self.claims = EventClaims(store, PLATFORM, self._store_thread)
        #: Feedback, escalate, forward, relay, close, teach: the core's rules, Slack's posts.
        self.workflow = SupportWorkflow(
            PLATFORM, store, SlackSupportChannel(client, slack.support_channel_id),
            enabled=bool(slack.support_channel_id), agents=self.agents, admins=slack.admins,
            unavailable=assistant.handoff_unavailable, offload=self._store_thread,
            scope_of=scope_names(assistant.scope_for),
        )
        # The inbox write sits in front of every ack: its own thread, so no other write delays it.
        self._inbox_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="askdesk-inbox")

    async def _agent_group_members(self) -> list[str]:
        """The members of the support agents' user group, as Slack lists them now."""
        response = await self.client.usergroups_users_list(usergroup=self.slack.support_agent_group)
        return list(response.get("users") or [])

    # ---- lifecycle -------------------------------------------------------------------------
    def build_app(self) -> AsyncApp:
        """A Bolt AsyncApp wired to this bot; used by both the HTTP server and Socket Mode."""
        secret = self.slack.signing_secret.get_secret_value() if self.slack.signing_secret else ""
        app = AsyncApp(client=self.client, signing_secret=secret, name="askdesk-slack", process_before_response=False)
        app.middleware(self._deduplicate)
        register_listeners(app, self)
        return app

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait for answers in progress (shutdown, tests); True when none is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    def close(self) -> None:
        """Release the store thread and its SQLite connection (the caller closes the Store itself)."""
        self._store_thread.call_and_close(self.store.close)
        self._inbox_thread.submit(self.store.close).result()
        self._inbox_thread.shutdown(wait=True)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store call on the store thread (never on the event loop)."""
        return await self._store_thread.run(fn, *args)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work the bot owns in the background; :meth:`drain` waits for all of it."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop_answering(self, drain_s: float) -> bool:
        """Graceful stop: let answers finish for ``drain_s``, then hand the rest back to the inbox
        (the next start answers them at once). True when everything finished."""
        finished = await self.drain(timeout=drain_s)
        if not finished:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.wait(set(self._tasks), timeout=5) if self._tasks else None
        await self._db(self.inbox.release)
        return finished

    # ---- the inbox: questions stored before they are acknowledged ---------------------------
    def is_question(self, body: Mapping[str, Any]) -> bool:
        """A mention or DM that gets an answer (the deliveries the inbox keeps)."""
        event = body.get("event") or {}
        if body.get("type") != "event_callback" or not body.get("event_id"):
            return False
        if event.get("type") == "app_mention":
            asked = True
        else:
            asked = event.get("type") == "message" and event.get("channel_type") == "im"
        return asked and skip_reason(event, self.identity, self.slack.ignore_bots) is None

    async def accept(self, body: dict[str, Any]) -> Acceptance | None:
        """Store a question before Slack is told it arrived; None for deliveries that are not questions."""
        if not self.is_question(body):
            return None
        user = (body.get("event") or {}).get("user")
        return await asyncio.get_running_loop().run_in_executor(
            self._inbox_thread, partial(self.inbox.accept, str(body["event_id"]), body, user))

    async def resume(self, item: InboxItem) -> None:
        """Answer a question a stopped process had accepted (the inbox's resume path)."""
        event = item.payload.get("event") or {}
        direct = event.get("type") == "message"
        if self.inbox.exhausted(item):
            log.error("slack: %s failed %d times; apologising instead", item.event_id, item.attempts - 1)
            language = detect_language(question_text(event.get("text"), self.identity))
            await self._post_quietly(str(event.get("channel")), reply_thread(event, direct=direct),
                                     escape(phrase("error", language)))
            await self._db(self.inbox.done, item.event_id)
            return
        log.info("slack: resuming %s (try %d)", item.event_id, item.attempts)
        await self._answer_once(event, item.event_id, direct=direct, body=item.payload)

    # ---- middleware, and what the listeners hand over (bots.slack.listeners) --------------
    async def _deduplicate(self, request: AsyncBoltRequest, body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:  # noqa: A002
        key = dedupe_key(body)
        if key is None or self._chatter(body):
            return await next()
        if self.is_question(body):
            # Over HTTP the question was stored before the 200 (serve.make_web_app); in Socket Mode
            # this runs before Bolt acknowledges the envelope.
            acceptance = request.context.get(ACCEPTED) or await self.accept(body)
            first = acceptance is not None and acceptance.answer_now
            await self.claims.prune()  # old claims go whichever kind of delivery arrives
        else:
            first = await self.claims.claim(key)
        if first:
            return await next()
        retry = (request.headers.get("x-slack-retry-num") or [None])[0]
        reason = (request.headers.get("x-slack-retry-reason") or [None])[0]
        log.info("slack: %s already handled; redelivery acknowledged (retry %s, %s)", key, retry, reason)
        return BoltResponse(status=200, body="")

    def _chatter(self, body: Mapping[str, Any]) -> bool:
        """A channel message the bot only hears because of the support channel: no claim needed.

        With ``message.channels`` subscribed, every message in every channel the bot is in
        arrives; only DMs and replies in the support channel's threads are worth a database write.
        """
        event = body.get("event") or {}
        if event.get("type") != "message" or event.get("channel_type") == "im":
            return False
        return not self.is_agent_reply(event)

    def take_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """An @mention: answered in its thread, unless an agent wrote it in the support channel."""
        if self.is_agent_reply(event):
            self.spawn(self._mention_in_support_thread(event, body))
            return
        self._schedule(event, body, direct=False)

    async def _mention_in_support_thread(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """An agent @mentioning the bot in an escalation's thread writes to the customer: the
        message event relays it, so the bot does not answer it as a question as well."""
        if await self.workflow.escalation_at(f"{event['channel']}:{event['thread_ts']}") is not None:
            log.debug("slack: mention in an escalation's thread left to the relay")
            return
        self._schedule(event, body, direct=False)

    def take_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """A message event: a DM is answered, an agent's reply in the support channel relayed."""
        # Only direct messages are answered; in channels the bot speaks when mentioned.
        if event.get("channel_type") == "im":
            self._schedule(event, body, direct=True)
        elif self.is_agent_reply(event):
            self.spawn(self._relay_agent_reply(event))
        else:
            log.debug("slack: message in %s channel ignored", event.get("channel_type"))

    def _schedule(self, event: dict[str, Any], body: dict[str, Any], *, direct: bool) -> None:
        reason = skip_reason(event, self.identity, self.slack.ignore_bots)
        if reason:
            log.debug("slack: %s ignored (%s)", body.get("event_id"), reason)
            return
        self.spawn(self._answer_once(event, str(body.get("event_id")), direct=direct, body=body))

    def take_ask(self, message: IncomingMessage, respond: Callable[..., Awaitable[Any]], language: str) -> None:
        """Answer an acknowledged ``/ask`` in the background, through its response_url."""
        self.spawn(self._answer_command(message, respond, language))

    # ---- answering -------------------------------------------------------------------------
    async def _answer_once(self, event: dict[str, Any], event_id: str, *, direct: bool,
                           body: Mapping[str, Any] | None = None) -> None:
        """Answer an inbox question and mark it answered; a stop or crash midway leaves it for the next try."""
        try:
            await self._answer_event(event, event_id, direct=direct, body=body)
        except asyncio.CancelledError:
            raise  # shutdown: the inbox hands it to the next start
        except Exception:  # noqa: BLE001 - not even the apology got out: try again later
            log.exception("slack: %s not answered; it stays in the inbox", event_id)
            self.inbox.abandon(event_id)
            return
        await self._db(self.inbox.done, event_id)

    async def _answer_event(self, event: dict[str, Any], event_id: str, *, direct: bool,
                            body: Mapping[str, Any] | None = None) -> None:
        """Answer one mention or DM in its thread; any failure ends in a short apology, never a crash."""
        started = time.perf_counter()
        channel, ts = str(event["channel"]), str(event["ts"])
        thread_ts = reply_thread(event, direct=direct)
        text = question_text(event.get("text"), self.identity)
        language = detect_language(text)
        if not text:
            # A bare @mention: say how to ask instead of calling the model.
            await self._post_quietly(channel, thread_ts, escape(phrase("empty", language)))
            return
        placeholder: str | None = None
        reacted = False
        try:
            history = await self._thread_history(event)
            name = await self._user_name(event.get("user"))
            message = incoming_message(event, text, direct=direct, history=history, user_name=name, body=body)
            if self.assistant.ignores(message):  # an audience the scopes file says to ignore: no trace
                log.info("slack: %s from an ignored audience; nothing posted", event_id)
                return
            await self._react("reactions_add", channel, ts)
            reacted = True
            notice = await self.workflow.take_over(message)
            if notice is not None:  # a person has this conversation: they get it, not the bot
                await self._post_quietly(channel, thread_ts, escape(notice))
                return
            preview = _Preview()
            # A second try after a crash continues in the message the first try posted.
            preview.ts = await self._db(self.inbox.reply_ref, event_id)
            preview.on_posted = partial(self._db, self.inbox.replied, event_id)
            try:
                async with self.fair.turn(_user_key(message)):
                    answer = await self._stream_into(message, channel, thread_ts, preview)
            except Busy as busy:
                log.info("slack: %s not queued (%s)", event_id, busy)
                if busy.tell or preview.ts is not None:
                    await self._reply_or_edit(channel, thread_ts, preview.ts, escape(phrase(busy.reason, language)))
                else:  # told a moment ago: the message is marked, not answered again in words
                    await self._react("reactions_add", channel, ts, NOT_NOW)
                return
            finally:
                placeholder = preview.ts
            ref = ConversationRef(message.conversation_id, message.thread_id, answer.turn_id, answer.language,
                                  answer.scope)
            if answer.handoff:
                notice = escape(await self._hand_off(ref, message))
                await self._reply_or_edit(channel, thread_ts, placeholder, notice, quietly=False)
                log.info("slack: %s asked for a person", event_id)
                return
            pieces = render_answer(answer, answer.language, self.slack.message_limit)
            footer = answer_footer(answer, ref)
            last = len(pieces) - 1
            if preview.text and not pieces[0].startswith(preview.text):
                # Never expected (previews are prefixes of the final text); the log says if it happens.
                log.warning("slack: the final answer to %s does not continue its preview", event_id)
            first_blocks = answer_blocks(pieces[0], footer if last == 0 else ())
            if placeholder is None:  # nothing was shown while it was written: post the answer
                posted = await self._send_blocks(self.client.chat_postMessage, first_blocks, channel=channel,
                                                 thread_ts=thread_ts, text=pieces[0], unfurl_links=False)
                placeholder = str(posted["ts"])
                await self._db(self.inbox.replied, event_id, placeholder)
            else:
                await self._send_blocks(self.client.chat_update, first_blocks, channel=channel, ts=placeholder,
                                        text=pieces[0])
            for number, piece in enumerate(pieces[1:], start=1):
                await self._send_blocks(self.client.chat_postMessage, answer_blocks(piece, footer if number == last else ()),
                                        channel=channel, thread_ts=thread_ts or placeholder, text=piece,
                                        unfurl_links=False)
            log.info(
                "slack: answered %s in %.2fs (mode=%s, confidence=%.2f, %d message(s))",
                event_id, time.perf_counter() - started, answer.mode, answer.confidence, len(pieces),
            )
        except InvalidMessageError as exc:
            await self._reply_or_edit(channel, thread_ts, placeholder, escape(str(exc)))
        except Exception:  # noqa: BLE001 - the bot keeps serving; details go to the log
            log.exception("slack: answering %s failed", event_id)
            await self._reply_or_edit(channel, thread_ts, placeholder, escape(phrase("error", language)))
        finally:
            if reacted:
                await self._react("reactions_remove", channel, ts)

    async def _stream_into(self, message: IncomingMessage, channel: str, thread_ts: str | None,
                           preview: _Preview) -> Answer:
        """Relay the core's deltas as one message, posted with the first certain words and then
        edited, at most once per interval.

        No placeholder or trailing marker: every text shown is the start of the final message
        (see :func:`bots.slack.render.render_partial`), so nothing a user sees is taken back;
        the 👀 reaction on the question says that an answer is being written."""

        async def show(text: str) -> None:
            rendered = render_partial(text, self.slack.message_limit)
            if not rendered.strip() or rendered == preview.text:
                return
            try:
                if preview.ts is None:
                    posted = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=rendered,
                                                                unfurl_links=False)
                    preview.ts = str(posted["ts"])
                    if preview.on_posted is not None:
                        await preview.on_posted(preview.ts)
                else:
                    await self.client.chat_update(channel=channel, ts=preview.ts, text=rendered)
                preview.text = rendered
            except SlackApiError as exc:  # a lost intermediate edit is harmless; the final one matters
                log.warning("slack: streaming edit failed: %s", exc.response.get("error"))

        return await relay_stream(self.assistant.stream(message), show, interval=self.slack.stream_interval)

    async def _answer_command(self, message: IncomingMessage, respond: Callable[..., Awaitable[Any]], language: str) -> None:
        """Answer ``/ask`` through its response_url: works in any channel, even where the bot is no member."""
        visibility = self.slack.ask_visibility
        try:
            async with self.fair.turn(_user_key(message)):
                answer = await self._collect(message)
            ref = ConversationRef(message.conversation_id, message.thread_id, answer.turn_id, answer.language,
                                  answer.scope)
            if answer.handoff:
                notice = escape(await self._hand_off(ref, message))
                await respond(text=notice, response_type=visibility, replace_original=visibility == "ephemeral")
                return
            pieces = render_answer(answer, answer.language, self.slack.message_limit)
            if visibility == "ephemeral":
                pieces[0] = f">{escape(message.text)}\n\n{pieces[0]}"
            # A response_url takes five messages; an answer longer than that is cut, not lost silently.
            pieces = pieces[:5]
            footer = answer_footer(answer, ref)
            for number, piece in enumerate(pieces):
                blocks = answer_blocks(piece, footer if number == len(pieces) - 1 else ())
                where = {"response_type": visibility, "replace_original": number == 0 and visibility == "ephemeral"}
                response = await respond(text=piece, blocks=blocks, **where)
                if has_images(blocks) and getattr(response, "status_code", 200) >= 400:
                    # The response_url does not say why; a picture Slack cannot fetch is the likely cause.
                    log.warning("slack: /ask answer with pictures rejected (HTTP %s); sent without them",
                                response.status_code)
                    await respond(text=piece, blocks=without_images(blocks), **where)
        except Busy as busy:
            await self._respond_quietly(respond, escape(phrase(busy.reason, language)))
        except InvalidMessageError as exc:
            await self._respond_quietly(respond, escape(str(exc)))
        except Exception:  # noqa: BLE001
            log.exception("slack: /ask failed")
            await self._respond_quietly(respond, escape(phrase("error", language)))

    async def _hand_off(self, ref: ConversationRef, message: IncomingMessage) -> str:
        """The user asked for a person: escalate, and what to tell them (honest when no one can come)."""
        try:
            return await self.escalate(ref, message.user_id, message.user_name, message.text)
        except Exception:  # noqa: BLE001 - the customer still gets an honest answer
            log.exception("slack: opening an escalation failed")
            return await self.workflow.unavailable(ref.language, message)

    async def _collect(self, message: IncomingMessage) -> Answer:
        async for event in self.assistant.stream(message):
            if isinstance(event, Answer):
                return event
        raise RuntimeError("the answer stream ended without a final answer")

    async def _thread_history(self, event: Mapping[str, Any]) -> tuple[HistoryTurn, ...]:
        """Earlier turns when the question was asked inside a thread (``conversations.replies``)."""
        thread_ts = event.get("thread_ts")
        if not thread_ts or thread_ts == event.get("ts") or not self.slack.thread_history:
            return ()
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            # Replies come oldest first; page up to the current message and keep the latest turns.
            for _ in range(REPLIES_MAX_PAGES):
                response = await self.client.conversations_replies(
                    channel=event["channel"], ts=thread_ts, latest=event["ts"], inclusive=True,
                    limit=REPLIES_PAGE_SIZE, cursor=cursor,
                )
                messages.extend(response.get("messages") or [])
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except SlackApiError as exc:  # e.g. missing channels:history scope: answer without context
            log.warning("slack: could not read thread %s: %s", thread_ts, exc.response.get("error"))
            return ()
        return thread_history(messages, str(event["ts"]), self.identity, self.slack.thread_history)

    @staticmethod
    async def _send_blocks(method: Callable[..., Awaitable[Any]], blocks: list[dict[str, Any]], **kwargs: Any) -> Any:
        """``chat.postMessage`` / ``chat.update`` with ``blocks``; when Slack cannot fetch one of the
        answer's pictures it rejects the whole message, so the answer is sent again without them."""
        try:
            return await method(blocks=blocks, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if not has_images(blocks) or error not in IMAGE_ERRORS:
                raise
            log.warning("slack: the answer's pictures were rejected (%s); sent without them", error)
            return await method(blocks=without_images(blocks), **kwargs)

    # ---- small Slack helpers that never raise ----------------------------------------------
    async def _react(self, method: str, channel: str, ts: str, name: str = REACTION) -> None:
        try:
            await getattr(self.client, method)(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            log.debug("slack: %s failed: %s", method, exc.response.get("error"))
        except Exception:  # noqa: BLE001 - cosmetic; never fail an answer over a reaction
            log.warning("slack: %s failed", method, exc_info=True)

    async def _post_quietly(self, channel: str, thread_ts: str | None, text: str) -> None:
        try:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        except Exception:  # noqa: BLE001
            log.warning("slack: could not post to %s", channel, exc_info=True)

    async def _reply_or_edit(self, channel: str, thread_ts: str | None, placeholder: str | None, text: str,
                             quietly: bool = True) -> None:
        """Put a short notice where the answer would have been: edit the streamed message, else post.

        ``quietly=False`` lets a failure to post raise (the caller's apology path handles it)."""
        if placeholder:
            try:
                await self.client.chat_update(channel=channel, ts=placeholder, text=text)
                return
            except Exception:  # noqa: BLE001
                if not quietly:
                    raise
                log.warning("slack: could not edit %s", placeholder, exc_info=True)
        if quietly:
            await self._post_quietly(channel, thread_ts, text)
        else:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

    @staticmethod
    async def _respond_quietly(respond: Callable[..., Awaitable[Any]], text: str) -> None:
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception:  # noqa: BLE001
            log.warning("slack: could not use the response_url", exc_info=True)


__all__ = ["ACCEPTED", "REACTION", "SlackBot", "dedupe_key"]
