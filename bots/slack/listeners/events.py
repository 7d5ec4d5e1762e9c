"""Event listeners: mentions and messages go to the bot; every other event is acknowledged.

The catch-all exists because Bolt answers 404 to an event without a listener, and Slack
retries those deliveries; it is registered apart (:func:`register_catch_all`) so it can go last.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

if TYPE_CHECKING:
    from bots.slack.app import SlackBot

log = logging.getLogger(__name__)


def register(app: AsyncApp, bot: SlackBot) -> None:
    """``app_mention`` and ``message``: questions, and agents' replies in the support channel."""

    async def app_mention(event: dict[str, Any], body: dict[str, Any]) -> None:
        bot.take_mention(event, body)

    async def message(event: dict[str, Any], body: dict[str, Any]) -> None:
        bot.take_message(event, body)

    app.event("app_mention")(app_mention)
    app.event("message")(message)


def register_catch_all(app: AsyncApp) -> None:
    """Every other event type: acknowledged and ignored. Register it after all other listeners."""

    async def other_event(body: dict[str, Any]) -> None:
        log.debug("slack: event %s ignored", body.get("event", {}).get("type"))

    app.event(re.compile(r".*"))(other_event)


__all__ = ["register", "register_catch_all"]
