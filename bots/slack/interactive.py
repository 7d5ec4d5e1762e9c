"""Conversations that go somewhere: 👍/👎, hand-off to a person, agents' replies, ``/askdesk``.

A mixin of :class:`bots.slack.app.SlackBot`, kept apart from the answering code. What happens
is the core's :class:`core.support.SupportWorkflow` (feedback, escalate, forward, relay,
close, teach: one set of rules for every platform); this module translates Slack's clicks,
commands and thread replies into its calls, and its results into Slack replies. Where posts
go is :class:`bots.slack.support.SlackSupportChannel`: the support channel
(``SLACK_SUPPORT_CHANNEL``), one post per escalation with its transcript and a Close button;
a listed agent's reply in that post's thread is relayed to the customer's thread (or DM).

The Bolt listeners themselves are in :mod:`bots.slack.listeners`: they acknowledge every click
and command at once and hand the parsed payload to the ``take_*`` / ``*_reply`` methods here;
the work runs in the background. All database access goes through the bot's store thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError

from bots.slack.blocks import ConversationRef, feedback_ack
from bots.slack.events import ASK_THREAD_PREFIX, PLATFORM, command_message, skip_reason
from bots.slack.render import escape, to_plain
from core.messages import IncomingMessage
from core.support import RelayOutcome, SupportWorkflow, TeachOutcome

log = logging.getLogger(__name__)

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
    slack: Any
    identity: Any
    workflow: SupportWorkflow
    _names: dict[str, str | None]

    def spawn(self, work: Any) -> None: ...  # pragma: no cover - SlackBot's
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

    # ---- feedback -------------------------------------------------------------------------
    def take_feedback(self, ref: ConversationRef, user: str, positive: bool, place: tuple[str, str | None],
                      response_url: str | None) -> None:
        """A 👍/👎 click on an answer: recorded in the background, thanked only the first time."""
        self.spawn(self._feedback(ref, user, positive, place, response_url))

    async def _feedback(self, ref: ConversationRef, user: str, positive: bool, place: tuple[str, str | None],
                        response_url: str | None) -> None:
        result = await self.workflow.feedback(ref.turn_id, user, positive, ref.conversation_id, ref.thread_id)
        if result is None or not result.changed:
            return  # another conversation's turn, or a repeated click: nothing to say
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
    def take_handoff(self, ref: ConversationRef, user_id: str, user_name: str | None) -> None:
        """A "Talk to a person" click: escalate in the background and tell the customer where it went."""
        if ref.thread_id and ref.thread_id.startswith(ASK_THREAD_PREFIX):
            # An in-channel /ask answer: whoever clicks is the one to be answered, in their own DM.
            ref = replace(ref, thread_id=f"{ASK_THREAD_PREFIX}{user_id}")
        self.spawn(self._handoff_clicked(ref, user_id, user_name))

    async def _handoff_clicked(self, ref: ConversationRef, user_id: str, user_name: str | None) -> None:
        await self._post_quietly(ref.channel, ref.thread_ts, escape(await self.escalate(ref, user_id, user_name)))

    async def escalate(self, ref: ConversationRef, user_id: str | None, user_name: str | None,
                       text: str = "") -> str:
        """Hand the conversation to the support channel; what to tell the customer (honest when no one can come)."""
        message = IncomingMessage(
            text=text, platform=PLATFORM, conversation_id=ref.conversation_id, thread_id=ref.thread_id,
            user_id=user_id, user_name=user_name or await self._user_name(user_id),
        )
        return await self.workflow.escalate(message, ref.language, turn_id=ref.turn_id, scope=ref.scope)

    async def _relay_agent_reply(self, event: dict[str, Any]) -> None:
        """Someone wrote in a thread of the support channel: relay it if it is an agent's reply to an escalation."""
        escalation = await self.workflow.escalation_at(f"{event['channel']}:{event['thread_ts']}")
        raw = str(event.get("text") or "").strip()
        agent = str(event.get("user") or "")
        # users.info only for someone whose reply will be relayed (the workflow decides who that is).
        name = await self._user_name(agent) if escalation is not None and await self.workflow.is_agent(agent) else None
        # The agent's own mrkdwn reaches the customer, less @channel pings into their channel.
        result = await self.workflow.relay(escalation, agent, name, to_plain(raw), formatted=_BROADCAST.sub(r"@\1", raw))
        if result.outcome is RelayOutcome.UNDELIVERED:
            await self._post_quietly(event["channel"], event["thread_ts"],
                                     f":warning: This reply could not be delivered to the customer (Slack said `{escape(str(result.reason))}`).")
        elif result.outcome is RelayOutcome.RELAYED:
            try:
                await self.client.reactions_add(channel=event["channel"], timestamp=event["ts"], name=DELIVERED)
            except Exception:  # noqa: BLE001 - cosmetic
                log.debug("slack: delivered reaction failed", exc_info=True)
        else:
            log.debug("slack: support-thread message not relayed (%s)", result.outcome.value)

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

    def take_close(self, escalation_id: int, user: str, response_url: str | None) -> None:
        """A Close click on a support-channel post: close the escalation in the background."""
        self.spawn(self._close(escalation_id, user, response_url))

    async def _close(self, escalation_id: int, user: str, response_url: str | None) -> None:
        if await self.workflow.close(escalation_id, user) is None:
            support = self.slack.support_channel_id or ""
            await self._ephemeral(support, user, None, f"Escalation #{escalation_id} is already closed.", None, response_url)

    # ---- /askdesk -------------------------------------------------------------------------
    async def teach_reply(self, command: Mapping[str, Any], rest: str) -> str:
        """``/askdesk teach QUESTION | ANSWER``: save it for review (admins); the reply to show."""
        user = str(command.get("user_id") or "")
        # Learned in the scope of the channel the command was given in (command_message has its audience).
        result = await self.workflow.teach(user, to_plain(rest), command.get("user_name") or user,
                                           command_message(command))
        if result.outcome is TeachOutcome.REFUSED:
            return ("Sorry, only askdesk admins can teach answers. Ask one of them to add you to "
                    "SLACK_ADMIN_USER_IDS, or send them the question and answer.")
        if result.outcome is TeachOutcome.USAGE or result.entry is None:
            return "Please write it as `/askdesk teach QUESTION | ANSWER`, e.g. `/askdesk teach Do you ship to Norway? | Yes, in 5–7 days.`"
        entry = result.entry
        return (f"Thanks! Saved as pending entry #{entry.id}: “{escape(entry.question)}”. It is not used for answers "
                "until an admin approves it with `askdesk kb review`.")

    async def close_reply(self, command: Mapping[str, Any], rest: str) -> str:
        """``/askdesk close ESCALATION_ID``: close a hand-off (support channel or admins); the reply to show."""
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
        closed = await self.workflow.close(escalation_id, user)
        if closed is None:
            return f"Escalation #{escalation_id} is not open (already closed, or no such escalation)."
        return f"Escalation #{escalation_id} is closed; the customer was told."


__all__ = ["DELIVERED", "Interactions", "USAGE", "clicked_in"]
