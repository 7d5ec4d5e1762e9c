"""Slash command listeners: ``/ask`` (answered through its response_url) and ``/askdesk``.

A slash command must be acknowledged within three seconds, and the ack is what Slack shows at
once; so the listener decides the ack from the command and leaves the answer to the bot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bots.slack.events import command_message
from bots.slack.interactive import USAGE
from bots.slack.render import escape
from core.language import detect_language, phrase

if TYPE_CHECKING:
    from bots.slack.app import SlackBot


def register(app: AsyncApp, bot: SlackBot) -> None:
    """``/ask QUESTION`` and ``/askdesk teach|close ...``."""

    async def ask(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        message = command_message(command)
        language = detect_language(message.text)
        if not message.text.strip():
            await ack(text=escape(phrase("empty", language)))
            return
        if bot.slack.ask_visibility == "in_channel":
            await ack(response_type="in_channel")  # Slack shows the command itself to the channel
        else:
            # The question alone: the answer replaces it starting with the same quote, so nothing is taken back.
            await ack(text=f">{escape(message.text)}")
        bot.take_ask(message, respond, language)

    async def askdesk(ack: AsyncAck, command: dict[str, Any]) -> None:
        subcommand, _, rest = (command.get("text") or "").strip().partition(" ")
        subcommand = subcommand.lower()
        if subcommand == "teach":
            await ack(text=await bot.teach_reply(command, rest))
        elif subcommand == "close":
            await ack(text=await bot.close_reply(command, rest.strip()))
        else:
            await ack(text=USAGE)

    app.command("/ask")(ask)
    app.command("/askdesk")(askdesk)


__all__ = ["register"]
