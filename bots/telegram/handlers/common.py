"""What several handlers read off a Telegram message, and how they say something short."""

from __future__ import annotations

import re

from telegram import Bot, InlineKeyboardMarkup, Message, MessageEntity

from bots.telegram.adapter import topic
from bots.telegram.delivery import send_chunk
from bots.telegram.render import Chunk, escape


def mentions(message: Message, bot: Bot) -> bool:
    """True when ``@botname`` (or a text mention of the bot) is in the text or a caption."""
    username = (bot.username or "").lower()
    kinds = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    for entity, text in found.items():
        if entity.type == MessageEntity.MENTION and text.lstrip("@").lower() == username:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            return True
    return False


def replies_to_bot(message: Message, bot: Bot) -> bool:
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == bot.id)


def strip_mention(text: str, username: str) -> str:
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip() if username else text.strip()


def after_command(text: str) -> str:
    """``/ask@bot  question…`` → ``question…`` (newlines inside the question kept)."""
    parts = text.split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


def command(text: str | None) -> str | None:
    """``/close@bot now`` → ``close``; None when the text is not a command."""
    if not text or not text.startswith("/"):
        return None
    return text.split(None, 1)[0][1:].split("@", 1)[0].lower()


def plain(text: str) -> Chunk:
    """A fixed text as a chunk (escaped for HTML, as it is for plain text)."""
    return Chunk(escape(text), text)


async def say(message: Message, bot: Bot, chunk: Chunk, reply: bool = False,
              markup: InlineKeyboardMarkup | None = None) -> Message:
    """A short fixed reply in the message's chat (and forum topic)."""
    return await send_chunk(bot, message.chat_id, chunk, message.message_id if reply else None, topic(message), markup)
