"""Conversations that go somewhere: 👍/👎, hand-off to a person, agents' replies, ``/askdesk``.

A mixin of :class:`bots.slack.app.SlackBot`, kept apart from the answering code. The core
decides *that* a conversation goes to a person (:class:`core.support.HandoffDesk`); this
module decides *where*: the support channel (``SLACK_SUPPORT_CHANNEL``), one post per
escalation with its transcript and a Close button. A human's reply in that post's thread is
relayed to the customer's thread (or DM), marked as coming from a person.

Every click and command is acknowledged at once; the work runs in the background. All
database access goes through the bot's store thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError

from bots.slack.blocks import ACTION_UP, ConversationRef, feedback_ack, support_blocks
from bots.slack.events import ASK_THREAD_PREFIX, PLATFORM, reply_target, skip_reason
from bots.slack.render import escape, to_plain
from core.support import HandoffDesk
from core.language import detect_language, phrase
from core.learning import teach
from core.messages import IncomingMessage
from core.store import Escalation

log = logging.getLogger(__name__)

T = TypeVar("T")
Ack = Callable[..., Awaitable[None]]
DELIVERED = "white_check_mark"  # reaction on an agent's reply once the customer has it
_BROADCAST = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")

USAGE = (
    "Usage:\n"
    "• `/askdesk teach QUESTION | ANSWER`: save an answer for review (admins)\n"
    "• `/askdesk close ESCALATION_ID`: close a hand-off (in the support channel, or admins)"
)


def clicked_in(body: Mapping[str, Any], ref: ConversationRef) -> tuple[str, str | None]:
    """The channel and thread of the message whose button was clicked (else the conversation's)."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or ref.channel
    thread_ts = message.get("thread_ts") or container.get("thread_ts") or (ref.thread_ts if channel == ref.channel else None)
    return str(channel), thread_ts


class Interactions:
    """Feedback buttons, escalations and ``/askdesk``; needs the attributes SlackBot sets up."""

    # Provided by SlackBot.
    client: Any
    assistant: Any
    store: Any
    slack: Any
    identity: Any
    desk: HandoffDesk
    _names: dict[str, str | None]
    _escalation_lock: asyncio.Lock | None

    def spawn(self, work: Any) -> None: ...  # pragma: no cover - SlackBot's
    async def _db(self, fn: Callable[..., T], *args: Any) -> T: ...  # pragma: no cover - SlackBot's
    async def _post_quietly(self, channel: str, thread_ts: str | None, text: str) -> None: ...  # pragma: no cover

    # ---- who is who -----------------------------------------------------------------------
    async def _user_name(self, user_id: str | None) -> str | None:
        """A person's display name (``users.info``, cached); None without the users:read scope."""
        if not user_id:
            return None
        if user_id in self._names:
            return self._names[user_id]
        name: str | None = None
        try:
            response = await self.client.users_info(user=user_id)
            user = response.get("user") or {}
            profile = user.get("profile") or {}
            name = (profile.get("display_name") or profile.get("real_name") or user.get("real_name")
                    or user.get("name") or None)
        except SlackApiError as exc:
            log.debug("slack: users.info %s failed: %s", user_id, exc.response.get("error"))
        except Exception:  # noqa: BLE001 - a name is a nicety
            log.warning("slack: users.info failed", exc_info=True)
        self._names[user_id] = name
        return name

    @property
    def escalation_lock(self) -> asyncio.Lock:
        if self._escalation_lock is None:
            self._escalation_lock = asyncio.Lock()
        return self._escalation_lock

    # ---- feedback -------------------------------------------------------------------------
    async def _on_feedback(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        ref = ConversationRef.from_value(action.get("value"))
        user = (body.get("user") or {}).get("id")
        if ref is None or ref.turn_id is None or not user:
            log.info("slack: feedback click without a turn ignored")
            return
        positive = action.get("action_id") == ACTION_UP
        self.spawn(self._feedback(ref, str(user), positive, clicked_in(body, ref), body.get("response_url")))

    async def _feedback(self, ref: ConversationRef, user: str, positive: bool, place: tuple[str, str | None],
                        response_url: str | None) -> None:
        changed = await self._db(self.store.record_feedback, ref.turn_id, user, 1 if positive else -1)
        if not changed:
            log.debug("slack: repeated feedback on turn %s by %s ignored", ref.turn_id, user)
            return
        log.info("slack: feedback %s on turn %s", "+1" if positive else "-1", ref.turn_id)
        text, blocks = feedback_ack(ref, positive)
        await self._ephemeral(place[0], user, place[1], text, blocks, response_url)

    async def _ephemeral(self, channel: str, user: str, thread_ts: str | None, text: str,
                         blocks: list[dict[str, Any]] | None, response_url: str | None) -> None:
        """Only the clicker sees it; through the response_url where the bot cannot post (e.g. /ask)."""
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text, blocks=blocks)
            return
        except SlackApiError as exc:
            log.debug("slack: chat.postEphemeral failed (%s); trying the response_url", exc.response.get("error"))
        except Exception:  # noqa: BLE001
            log.warning("slack: chat.postEphemeral failed", exc_info=True)
        if response_url:
            try:
                from slack_sdk.webhook.async_client import AsyncWebhookClient

                await AsyncWebhookClient(response_url).send(text=text, blocks=blocks, response_type="ephemeral",
                                                           replace_original=False)
            except Exception:  # noqa: BLE001
                log.warning("slack: could not answer through the response_url", exc_info=True)

    # ---- hand-off -------------------------------------------------------------------------
    async def _on_talk_to_person(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        ref = ConversationRef.from_value(action.get("value"))
        user = body.get("user") or {}
        if ref is None or not user.get("id"):
            return
        if ref.thread_id and ref.thread_id.startswith(ASK_THREAD_PREFIX):
            # An in-channel /ask answer: whoever clicks is the one to be answered, in their own DM.
            ref = replace(ref, thread_id=f"{ASK_THREAD_PREFIX}{user['id']}")
        self.spawn(self._handoff_clicked(ref, str(user["id"]), user.get("name") or user.get("username")))

    async def _handoff_clicked(self, ref: ConversationRef, user_id: str, user_name: str | None) -> None:
        ok = await self.escalate(ref, user_id, user_name)
        text = phrase("handoff", ref.language) if ok else await asyncio.to_thread(self.assistant.handoff_unavailable, ref.language)
        await self._post_quietly(ref.channel, ref.thread_ts, escape(text))

    async def escalate(self, ref: ConversationRef, user_id: str | None, user_name: str | None,
                       text: str = "") -> bool:
        """Open (or reuse) the conversation's escalation and post it to the support channel.

        True when the support team has it; False when no one can take it (no support
        channel configured, or posting there failed) — the caller then says so honestly.
        """
        support = self.slack.support_channel_id
        if not support:
            log.info("slack: hand-off asked for, but SLACK_SUPPORT_CHANNEL is not set")
            return False
        message = IncomingMessage(
            text=text, platform=PLATFORM, conversation_id=ref.conversation_id, thread_id=ref.thread_id,
            user_id=user_id, user_name=user_name or await self._user_name(user_id),
        )
        async with self.escalation_lock:  # two clicks at once must not post twice
            # The desk picks the real question when the turn itself was "talk to a human".
            escalation = await self._db(self.desk.open, message, None, ref.turn_id)
            if escalation.support_ref:
                log.info("slack: escalation #%s already with the support team", escalation.id)
                return True
            headline, blocks = support_blocks(escalation)
            try:
                posted = await self.client.chat_postMessage(channel=support, text=headline, blocks=blocks, unfurl_links=False)
            except SlackApiError as exc:
                log.warning("slack: could not post escalation #%s to %s: %s (is the bot in that channel?)",
                            escalation.id, support, exc.response.get("error"))
                return False
            await self._db(self.desk.posted, escalation, f"{posted['channel']}:{posted['ts']}")
        log.info("slack: escalation #%s posted to the support channel", escalation.id)
        return True

    async def _relay_agent_reply(self, event: dict[str, Any]) -> None:
        """A support agent wrote in an escalation's thread: relay it to the customer."""
        support_ref = f"{event['channel']}:{event['thread_ts']}"
        raw = str(event.get("text") or "")
        agent = str(event.get("user") or "")
        if not (agent in self.slack.admins or await self.agents.allows(agent)):
            log.debug("slack: reply by %s in %s not relayed: not a listed support agent", agent, support_ref)
            return
        name = await self._user_name(agent)
        reply = await self._db(self.desk.agent_replied, support_ref, name or agent, to_plain(raw))
        if reply is None:
            log.debug("slack: support-channel reply outside an open escalation ignored")
            return
        escalation = reply.escalation
        language = await self._db(self._escalation_language, escalation)
        label = escape(phrase("agent_reply", language, name="\x00")).replace("\x00", escape(name) if name else f"<@{agent}>")
        body = _BROADCAST.sub(r"@\1", raw)  # no @channel pings from the support team into a customer's channel
        text = f":bust_in_silhouette: *{label}*\n{body}"
        channel, thread_ts = reply_target(escalation.conversation_id, escalation.thread_id or None)
        try:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, unfurl_links=False)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("slack: could not relay to escalation #%s's customer: %s", escalation.id, error)
            await self._post_quietly(event["channel"], event["thread_ts"],
                                     f":warning: This reply could not be delivered to the customer (Slack said `{escape(str(error))}`).")
            return
        try:
            await self.client.reactions_add(channel=event["channel"], timestamp=event["ts"], name=DELIVERED)
        except Exception:  # noqa: BLE001 - cosmetic
            log.debug("slack: delivered reaction failed", exc_info=True)
        log.info("slack: agent reply relayed for escalation #%s", escalation.id)

    async def forward_to_support(self, escalation: Escalation, message: IncomingMessage, channel: str,
                                 thread_ts: str | None) -> None:
        """The escalated customer wrote again: into the escalation's thread, and tell them so."""
        support_channel, _, support_ts = (escalation.support_ref or "").partition(":")
        language = detect_language(message.text)
        who = escape(message.user_name) if message.user_name else f"<@{message.user_id}>"
        body = escape(message.text)  # escaped: no @channel pings either
        try:
            await self.client.chat_postMessage(channel=support_channel, thread_ts=support_ts, unfurl_links=False,
                                               text=f":speech_balloon: *{who} (customer) wrote:*\n{body}")
        except SlackApiError as exc:
            log.warning("slack: could not forward to escalation #%s's thread: %s", escalation.id, exc.response.get("error"))
            unavailable = await asyncio.to_thread(self.assistant.handoff_unavailable, language)
            await self._post_quietly(channel, thread_ts, escape(unavailable))
            return
        await self._post_quietly(channel, thread_ts, escape(phrase("forwarded", language)))
        log.info("slack: customer message forwarded to escalation #%s", escalation.id)

    def _escalation_language(self, escalation: Escalation) -> str:
        turn = self.store.turn(escalation.turn_id) if escalation.turn_id else None
        return turn.language if turn else detect_language(escalation.question)

    def is_agent_reply(self, event: Mapping[str, Any]) -> bool:
        """A person's message in a thread of the support channel (maybe an escalation's)."""
        support = self.slack.support_channel_id
        if not support or event.get("channel") != support:
            return False
        thread_ts = event.get("thread_ts")
        if not thread_ts or thread_ts == event.get("ts"):
            return False  # top-level chatter in the support channel
        if event.get("subtype") == "thread_broadcast":
            event = {k: v for k, v in event.items() if k != "subtype"}
        return skip_reason(event, self.identity, self.slack.ignore_bots) is None

    async def _on_close(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        try:
            escalation_id = int(action.get("value") or "")
        except ValueError:
            return
        self.spawn(self._close(escalation_id, user, body.get("response_url")))

    async def close_escalation(self, escalation_id: int, closed_by: str) -> Escalation | None:
        """Close it, tell the customer, mark the support post; None when it was not open."""
        escalation = await self._db(self.desk.close, escalation_id, closed_by)
        if escalation is None:
            return None
        language = await self._db(self._escalation_language, escalation)
        channel, thread_ts = reply_target(escalation.conversation_id, escalation.thread_id or None)
        await self._post_quietly(channel, thread_ts, escape(phrase("escalation_closed", language)))
        if escalation.support_ref:
            support, _, ts = escalation.support_ref.rpartition(":")
            headline, blocks = support_blocks(escalation, closed_by=closed_by)
            try:
                await self.client.chat_update(channel=support, ts=ts, text=f"{headline} (closed)", blocks=blocks)
            except Exception:  # noqa: BLE001 - the customer was told; the post is cosmetic
                log.warning("slack: could not mark escalation #%s's post closed", escalation.id, exc_info=True)
        log.info("slack: escalation #%s closed", escalation.id)
        return escalation

    async def _close(self, escalation_id: int, user: str, response_url: str | None) -> None:
        if await self.close_escalation(escalation_id, user) is None:
            support = self.slack.support_channel_id or ""
            await self._ephemeral(support, user, None, f"Escalation #{escalation_id} is already closed.", None, response_url)

    # ---- /askdesk -------------------------------------------------------------------------
    async def _on_askdesk(self, ack: Ack, command: dict[str, Any]) -> None:
        subcommand, _, rest = (command.get("text") or "").strip().partition(" ")
        subcommand = subcommand.lower()
        if subcommand == "teach":
            await ack(text=await self._teach(command, rest))
        elif subcommand == "close":
            await ack(text=await self._close_command(command, rest.strip()))
        else:
            await ack(text=USAGE)

    async def _teach(self, command: Mapping[str, Any], rest: str) -> str:
        user = str(command.get("user_id") or "")
        if user not in self.slack.admins:
            log.info("slack: /askdesk teach refused for a non-admin")
            return ("Sorry, only askdesk admins can teach answers. Ask one of them to add you to "
                    "SLACK_ADMIN_USER_IDS, or send them the question and answer.")
        question, bar, answer = to_plain(rest).partition("|")
        if not bar or not question.strip() or not answer.strip():
            return "Please write it as `/askdesk teach QUESTION | ANSWER`, e.g. `/askdesk teach Do you ship to Norway? | Yes, in 5–7 days.`"
        author = command.get("user_name") or user
        entry = await self._db(teach, self.store, question.strip(), answer.strip(), author, "slack")
        log.info("slack: learned Q&A #%s saved for review", entry.id)
        return (f"Thanks! Saved as pending entry #{entry.id}: “{escape(entry.question)}”. It is not used for answers "
                "until an admin approves it with `askdesk kb review`.")

    async def _close_command(self, command: Mapping[str, Any], rest: str) -> str:
        user = str(command.get("user_id") or "")
        allowed = user in self.slack.admins or (
            self.slack.support_channel_id is not None and command.get("channel_id") == self.slack.support_channel_id
        )
        if not allowed:
            return "Escalations are closed from the support channel (or by an askdesk admin)."
        try:
            escalation_id = int(rest.lstrip("#"))
        except ValueError:
            return "Which one? `/askdesk close ESCALATION_ID` (the number in the support-channel post)."
        closed = await self.close_escalation(escalation_id, user)
        if closed is None:
            return f"Escalation #{escalation_id} is not open (already closed, or no such escalation)."
        return f"Escalation #{escalation_id} is closed; the customer was told."


__all__ = ["DELIVERED", "Interactions", "USAGE"]
