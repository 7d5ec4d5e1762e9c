"""Button listeners: 👍/👎 under answers, "Talk to a person", and Close on support-channel posts.

Each click is acknowledged at once and read here (the button's value, who clicked, where);
the bot does the rest in the background.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bots.slack.blocks import ACTION_CLOSE, ACTION_DOWN, ACTION_PERSON, ACTION_UP, ConversationRef
from bots.slack.interactive import clicked_in

if TYPE_CHECKING:
    from bots.slack.app import SlackBot

log = logging.getLogger(__name__)


def register(app: AsyncApp, bot: SlackBot) -> None:
    """One listener per ``action_id``; 👍 and 👎 share theirs."""

    async def feedback(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        ref = ConversationRef.from_value(action.get("value"))
        user = (body.get("user") or {}).get("id")
        if ref is None or ref.turn_id is None or not user:
            log.info("slack: feedback click without a turn ignored")
            return
        positive = action.get("action_id") == ACTION_UP
        bot.take_feedback(ref, str(user), positive, clicked_in(body, ref), body.get("response_url"))

    async def talk_to_person(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        ref = ConversationRef.from_value(action.get("value"))
        user = body.get("user") or {}
        if ref is None or not user.get("id"):
            return
        bot.take_handoff(ref, str(user["id"]), user.get("name") or user.get("username"))

    async def close(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        try:
            escalation_id = int(action.get("value") or "")
        except ValueError:
            return
        bot.take_close(escalation_id, user, body.get("response_url"))

    app.action(ACTION_UP)(feedback)
    app.action(ACTION_DOWN)(feedback)
    app.action(ACTION_PERSON)(talk_to_person)
    app.action(ACTION_CLOSE)(close)


__all__ = ["register"]
