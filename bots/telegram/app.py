"""The python-telegram-bot ``Application`` and its handlers: translation only.

A Telegram update becomes an :class:`IncomingMessage`; the core's answer stream goes out
through :mod:`bots.telegram.delivery`. Which messages count as questions:
- private chat: every text message;
- groups: only when the bot is @mentioned, replied to, or asked with ``/ask QUESTION``
  (the mention or command is stripped from the text).

Updates are processed concurrently (``concurrent_updates``) so one slow answer never holds
up other chats; answers within one chat are taken in turn (a per-chat lock), which keeps
the chat's context in order and its edits within Telegram's per-chat limits.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from dataclasses import dataclass

from telegram import Bot, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bots.telegram.delivery import StreamedReply, send_chunk, typing
from bots.telegram.memory import ChatMemory
from bots.telegram.render import Chunk, escape
from core.assistant import Assistant
from core.errors import InvalidMessageError
from core.language import detect_language, phrase
from core.messages import IncomingMessage
from core.store import Store

log = logging.getLogger(__name__)

PLATFORM = "telegram"
#: The update types askdesk asks Telegram for (edits, reactions, etc. are not questions).
ALLOWED_UPDATES = [Update.MESSAGE]

NOT_TEXT = "I can only read text messages for now. Please type your question."
HELP = (
    "<b>Commands</b>\n"
    "/ask QUESTION — ask a question (in groups, or anywhere)\n"
    "/reset — forget this chat's conversation so far\n"
    "/help — this list\n\n"
    "In a private chat, just send your question. In a group, mention me (@{username}), "
    "reply to one of my messages, or use /ask."
)
GREETING = (
    "Hi {name}! I answer questions about our help centre, with links to the articles I used. "
    "Just send me a question.\n\nIn groups, mention me (@{username}) or use /ask. /help lists the commands."
)
ASK_USAGE = "Usage: /ask QUESTION — for example: /ask How do I return an item?"
RESET_DONE = "Done — I've forgotten our conversation so far. Ask me anything."


@dataclass(frozen=True)
class BotOptions:
    """Pacing knobs; tests shorten them, production keeps the defaults."""

    edit_interval: float = 1.0  # private chats: about one edit a second
    group_edit_interval: float = 3.0  # groups: Telegram allows ~20 messages a minute per group
    typing_interval: float = 4.0
    max_retries: int = 3  # RetryAfter (flood control) retries, done by AIORateLimiter


def _is_private(message: Message) -> bool:
    return message.chat.type == ChatType.PRIVATE


def _mentions(message: Message, bot: Bot) -> bool:
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


def _topic(message: Message) -> int | None:
    """The forum topic a message belongs to, so replies stay in it."""
    return message.message_thread_id if message.is_topic_message else None


def _replies_to_bot(message: Message, bot: Bot) -> bool:
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == bot.id)


def _strip_mention(text: str, username: str) -> str:
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip() if username else text.strip()


def _after_command(text: str) -> str:
    """``/ask@bot  question…`` → ``question…`` (newlines inside the question kept)."""
    parts = text.split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


class TelegramAdapter:
    """The handlers, with the assistant, the store (idempotency) and per-chat memory."""

    def __init__(self, assistant: Assistant, store: Store, options: BotOptions | None = None,
                 memory: ChatMemory | None = None) -> None:
        self.assistant = assistant
        self.store = store
        self.options = options or BotOptions()
        self.memory = memory or ChatMemory()
        self._chat_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    def register(self, application: Application) -> None:
        message = filters.UpdateType.MESSAGE
        application.add_handler(TypeHandler(Update, self.claim), group=-1)
        application.add_handler(CommandHandler("start", self.on_start, filters=message))
        application.add_handler(CommandHandler("help", self.on_help, filters=message))
        application.add_handler(CommandHandler("reset", self.on_reset, filters=message))
        application.add_handler(CommandHandler("ask", self.on_ask, filters=message))
        application.add_handler(MessageHandler(message & filters.TEXT & ~filters.COMMAND, self.on_text))
        application.add_handler(MessageHandler(message & filters.COMMAND & filters.ChatType.PRIVATE, self.on_unknown_command))
        application.add_handler(MessageHandler(message & ~filters.TEXT & ~filters.StatusUpdate.ALL, self.on_not_text))
        application.add_error_handler(self.on_error)

    # ---- idempotency -----------------------------------------------------------------
    async def claim(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stop a redelivered update (webhook retry, restart before the offset was confirmed)."""
        if not self.store.claim_event(PLATFORM, str(update.update_id)):
            log.info("update %s already handled; ignoring the redelivery", update.update_id)
            raise ApplicationHandlerStop

    # ---- commands --------------------------------------------------------------------
    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        name = user.first_name if user and user.first_name else "there"
        html = GREETING.format(name=escape(name), username=escape(context.bot.username or ""))
        plain = GREETING.format(name=name, username=context.bot.username or "")
        await self._say(update.effective_message, context.bot, Chunk(html, plain))

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = HELP.format(username=escape(context.bot.username or ""))
        plain = HELP.replace("<b>", "").replace("</b>", "").format(username=context.bot.username or "")
        await self._say(update.effective_message, context.bot, Chunk(text, plain))

    async def on_reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id
        async with self._chat_locks[chat_id]:  # after an answer in progress, not before it
            self.memory.reset(chat_id)
        await self._say(update.effective_message, context.bot, Chunk(escape(RESET_DONE), RESET_DONE))

    async def on_ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        question = _strip_mention(_after_command(message.text or ""), context.bot.username or "")
        if not question:
            await self._say(message, context.bot, Chunk(escape(ASK_USAGE), ASK_USAGE), reply=True)
            return
        await self.answer(message, question, context.bot, mentioned=True)

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = "I don't know that command. /help lists what I can do."
        await self._say(update.effective_message, context.bot, Chunk(escape(text), text))

    # ---- messages --------------------------------------------------------------------
    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        bot = context.bot
        if _is_private(message):
            await self.answer(message, message.text or "", bot, mentioned=False)
            return
        mentioned = _mentions(message, bot)
        if not (mentioned or _replies_to_bot(message, bot)):
            return  # group chatter not meant for us
        await self.answer(message, _strip_mention(message.text or "", bot.username or ""), bot, mentioned=mentioned)

    async def on_not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        bot = context.bot
        if not _is_private(message) and not (_mentions(message, bot) or _replies_to_bot(message, bot)):
            return
        await self._say(message, bot, Chunk(escape(NOT_TEXT), NOT_TEXT), reply=not _is_private(message))

    @staticmethod
    async def _say(message: Message, bot: Bot, chunk: Chunk, reply: bool = False) -> None:
        """A short fixed reply in the message's chat (and forum topic)."""
        await send_chunk(bot, message.chat_id, chunk, message.message_id if reply else None, _topic(message))

    # ---- answering -------------------------------------------------------------------
    def incoming(self, message: Message, question: str, mentioned: bool) -> IncomingMessage:
        """The Telegram message as the core's platform-neutral type."""
        user = message.from_user
        return IncomingMessage(
            text=question,
            platform=PLATFORM,
            conversation_id=str(message.chat_id),
            thread_id=str(message.message_thread_id) if message.message_thread_id else None,
            message_id=str(message.message_id),
            user_id=str(user.id) if user else None,
            user_name=user.first_name if user else None,
            is_direct=_is_private(message),
            mentioned_bot=mentioned,
            received_at=message.date,
            history=self.memory.history(message.chat_id),
        )

    async def answer(self, message: Message, question: str, bot: Bot, mentioned: bool) -> None:
        """Answer one question in its chat; any failure becomes a short apology, never a crash."""
        chat_id = message.chat_id
        private = _is_private(message)
        language = detect_language(question)
        reply = StreamedReply(
            bot, chat_id,
            reply_to=None if private else message.message_id,
            interval=self.options.edit_interval if private else self.options.group_edit_interval,
            thread_id=_topic(message),
        )
        async with self._chat_locks[chat_id]:
            async with typing(bot, chat_id, self.options.typing_interval, _topic(message)):
                try:
                    incoming = self.incoming(message, question, mentioned)
                    answer = await reply.relay(self.assistant.stream(incoming), language)
                except InvalidMessageError as exc:
                    await reply.fail(str(exc))
                    return
                except Exception:  # noqa: BLE001 - the user gets an apology, the log the details
                    log.exception("answering update in chat %s failed", chat_id)
                    await reply.fail(phrase("error", language))
                    return
            self.memory.add(chat_id, question, answer.text)
        log.info("answered in chat %s (mode=%s, %d sources, %.2fs)", chat_id, answer.mode, len(answer.citations), answer.latency_s)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Errors outside :meth:`answer` (commands, sending a greeting): logged, bot keeps serving."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("error while handling update %s", update_id, exc_info=context.error)


def build_application(
    token: str,
    assistant: Assistant,
    store: Store,
    *,
    api_urls: tuple[str, str] | None = None,
    options: BotOptions | None = None,
    memory: ChatMemory | None = None,
) -> Application:
    """A ready-to-start ``Application``: rate limited, concurrent, handlers registered.

    ``memory`` lets a caller share or inspect the per-chat context (tests do)."""
    options = options or BotOptions()
    builder = (
        Application.builder()
        .token(token)
        .rate_limiter(AIORateLimiter(max_retries=options.max_retries))
        .concurrent_updates(True)
    )
    if api_urls:
        builder = builder.base_url(api_urls[0]).base_file_url(api_urls[1])
    application = builder.build()
    TelegramAdapter(assistant, store, options, memory).register(application)
    return application
