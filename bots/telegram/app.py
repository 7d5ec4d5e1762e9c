"""The python-telegram-bot ``Application`` and its handlers: translation only.

A Telegram update becomes an :class:`IncomingMessage`; the core's answer stream goes out
through :mod:`bots.telegram.delivery`. Which messages count as questions:
- private chat: every text message;
- groups: only when the bot is @mentioned, replied to, or asked with ``/ask QUESTION``
  (the mention or command is stripped from the text);
- the support group (``TELEGRAM_SUPPORT_CHAT_ID``): never; there, only agents' replies to an
  escalation (relayed to the customer), ``/close`` and ``/teach`` are handled.

The conversation's context is the core's store: each Telegram chat (forum topic) is one
conversation, passed as ``conversation_id``/``thread_id`` with no history of our own.

The pictures of the passages an answer cites follow it as a photo or an album
(:func:`bots.telegram.delivery.send_images`, chosen by :mod:`bots.images`).

Every answer carries 👍/👎 buttons (callback ``fb:<turn>:±1``); refusals and 👎 offer
"Talk to a person" (``person:<turn>``), which, like asking for a human in words, opens an
escalation posted to the support group with a Close button (``close:<escalation>``).

Updates are processed concurrently (``concurrent_updates``) so one slow answer never holds
up other chats; answers within one chat are taken in turn (a per-chat lock), which keeps
the chat's context in order and its edits within Telegram's per-chat limits.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
    User,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots.images import answer_images
from bots.telegram.delivery import StreamedReply, send_chunk, send_images, typing
from bots.telegram.inbox import InboxApplication, InboxQueue, earlier_reply, remember_reply
from bots.telegram.render import Chunk, escape, render_answer
from core.assistant import Assistant
from core.errors import InvalidMessageError
from core.fairness import Busy, FairQueue, Limits
from core.inbox import Inbox
from core.support import HandoffDesk
from core.support.agents import AgentAllowlist, parse_ids
from core.language import detect_language, phrase
from core.learning import teach
from core.messages import Answer, IncomingMessage
from core.store import Escalation, Store

log = logging.getLogger(__name__)

PLATFORM = "telegram"
#: The update types askdesk asks Telegram for (edits, reactions, etc. are not questions).
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]

NOT_TEXT = "I can only read text messages for now. Please type your question."
HELP = (
    "<b>Commands</b>\n"
    "/ask QUESTION — ask a question (in groups, or anywhere)\n"
    "/reset — forget this chat's conversation so far\n"
    "/help — this list\n\n"
    "In a private chat, just send your question. In a group, mention me (@{username}), "
    "reply to one of my messages, or use /ask. Under each answer, 👍/👎 tell us whether it helped; "
    "\"Talk to a person\" (or asking for a human) brings in our support team."
)
#: What follows the core's greeting in /start: how to use the bot on Telegram.
START_HINT = {
    "en": "Just send me a question.\n\nIn groups, mention me (@{username}) or use /ask. /help lists the commands.",
    "zh": "直接发送您的问题即可。\n\n在群组中，请 @{username} 或使用 /ask 提问。/help 查看全部命令。",
}
ASK_USAGE = "Usage: /ask QUESTION — for example: /ask How do I return an item?"
TEACH_USAGE = "Usage: /teach QUESTION | ANSWER — for example: /teach Do you ship to Iceland? | Yes, in 5–8 days."
TEACH_REFUSED = "Sorry, only askdesk admins can teach me answers. Please ask our support team to add it."
TEACH_SAVED = (
    "Thanks! Saved for review as #{id}. I'll use it once an admin approves it (askdesk kb review)."
)
SUPPORT_HELP = (
    "<b>Support group</b>\n"
    "Escalations from customers arrive here. Reply to an escalation message to answer the customer "
    "(your reply is sent to them, marked as from our support team). Close it with its Close button or "
    "by replying /close to it.\n/teach QUESTION | ANSWER — admins: suggest an answer for review."
)
CLOSE_USAGE = "Reply /close to the escalation message you want to close."
#: Header of a customer's message forwarded to an open escalation; agents answer by replying to it.
FORWARDED = "💬 Escalation #{id}: {name} (customer) wrote"
_FORWARDED_ID = re.compile(re.escape(FORWARDED.partition("{id}")[0]) + r"(\d+): ")
NOT_AN_ESCALATION = "That message is not an open escalation; nothing was sent."
ESCALATION_IS_CLOSED = "Escalation #{id} is closed; your reply was not sent to the customer."
ONLY_TEXT_RELAYED = "Only text replies reach the customer for now; nothing was sent."
NOT_DELIVERED = "Could not deliver your reply to the customer ({reason})."
ALREADY_CLOSED = "Escalation #{id} is already closed."
CLOSED_BY = "✅ Escalation #{id} closed by {name}; the customer was told."
TRANSCRIPT_LIMIT = 2500  # characters of transcript in an escalation post (the latest turns kept)
TRANSCRIPT_LINE_LIMIT = 300


@dataclass(frozen=True)
class BotOptions:
    """Pacing knobs; tests shorten them, production keeps the defaults."""

    edit_interval: float = 1.0  # private chats: about one edit a second
    group_edit_interval: float = 3.0  # groups: Telegram allows ~20 messages a minute per group
    typing_interval: float = 4.0
    max_retries: int = 3  # RetryAfter (flood control) retries, done by AIORateLimiter


@dataclass(frozen=True)
class SupportOptions:
    """Where escalations go and who may teach (``TELEGRAM_SUPPORT_CHAT_ID``, ``TELEGRAM_ADMIN_USER_IDS``)."""

    support_chat_id: int | None = None
    admin_user_ids: frozenset[int] = frozenset()
    #: Who may answer customers from the support group (``TELEGRAM_SUPPORT_AGENT_IDS``); admins always may.
    agents: AgentAllowlist = field(default_factory=AgentAllowlist)


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


def _thread(message: Message) -> str | None:
    """The conversation's thread for the core: the forum topic, else none (the whole chat)."""
    topic = _topic(message)
    return str(topic) if topic else None


def _replies_to_bot(message: Message, bot: Bot) -> bool:
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == bot.id)


def _strip_mention(text: str, username: str) -> str:
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip() if username else text.strip()


def _after_command(text: str) -> str:
    """``/ask@bot  question…`` → ``question…`` (newlines inside the question kept)."""
    parts = text.split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


def _command(text: str | None) -> str | None:
    """``/close@bot now`` → ``close``; None when the text is not a command."""
    if not text or not text.startswith("/"):
        return None
    return text.split(None, 1)[0][1:].split("@", 1)[0].lower()


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _transcript(text: str) -> str:
    """The escalation's transcript, lines shortened, the latest part kept when long."""
    lines = [_clip(line, TRANSCRIPT_LINE_LIMIT) for line in text.splitlines() if line.strip()]
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > TRANSCRIPT_LIMIT:
            kept.append("…")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(reversed(kept))


def _person_button(turn_id: int, language: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(phrase("talk_to_person", language), callback_data=f"person:{turn_id}")


def answer_keyboard(answer: Answer) -> InlineKeyboardMarkup | None:
    """👍/👎 under every stored answer; "Talk to a person" under a refusal."""
    if answer.turn_id is None or answer.handoff:
        return None
    rows = [[InlineKeyboardButton("👍", callback_data=f"fb:{answer.turn_id}:+1"),
             InlineKeyboardButton("👎", callback_data=f"fb:{answer.turn_id}:-1")]]
    if answer.offers_person:
        rows.append([_person_button(answer.turn_id, answer.language)])
    return InlineKeyboardMarkup(rows)


class TelegramAdapter:
    """The handlers, with the assistant, the store (idempotency, conversations) and the hand-off desk."""

    def __init__(self, assistant: Assistant, store: Store, options: BotOptions | None = None,
                 support: SupportOptions | None = None) -> None:
        self.assistant = assistant
        self.store = store  # handled update ids
        # Turns, feedback, profiles and escalations live where the assistant records turns.
        self.data = assistant.store if assistant.store is not None else store
        self.desk = HandoffDesk(self.data)
        self.options = options or BotOptions()
        self.support = support or SupportOptions()
        self._chat_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.fair = FairQueue(Limits.from_settings(assistant.settings))
        self._handoff_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def register(self, application: Application) -> None:
        message = filters.UpdateType.MESSAGE
        if self.support.support_chat_id is not None:
            # First: nothing in the support group is a customer's question.
            application.add_handler(MessageHandler(message & filters.Chat(self.support.support_chat_id),
                                                   self.on_support_message))
        application.add_handler(CallbackQueryHandler(self.on_callback))
        application.add_handler(CommandHandler("start", self.on_start, filters=message))
        application.add_handler(CommandHandler("help", self.on_help, filters=message))
        application.add_handler(CommandHandler("reset", self.on_reset, filters=message))
        application.add_handler(CommandHandler("ask", self.on_ask, filters=message))
        application.add_handler(CommandHandler("teach", self.on_teach, filters=message))
        application.add_handler(MessageHandler(message & filters.TEXT & ~filters.COMMAND, self.on_text))
        application.add_handler(MessageHandler(message & filters.COMMAND & filters.ChatType.PRIVATE, self.on_unknown_command))
        application.add_handler(MessageHandler(message & ~filters.TEXT & ~filters.StatusUpdate.ALL, self.on_not_text))
        application.add_error_handler(self.on_error)

    # ---- languages -------------------------------------------------------------------
    def user_language(self, user: User | None) -> str:
        """The language a user last asked in (their profile), else their Telegram app's language."""
        if user is None:
            return "en"
        profile = self.data.profile(PLATFORM, str(user.id))
        if profile and profile.language:
            return profile.language
        return "zh" if (user.language_code or "").lower().startswith("zh") else "en"

    def customer_language(self, escalation: Escalation) -> str:
        """The language of the escalated turn, else of the customer's profile."""
        turn = self.data.turn(escalation.turn_id) if escalation.turn_id else None
        if turn is not None:
            return turn.language
        profile = self.data.profile(escalation.platform, escalation.user_id) if escalation.user_id else None
        return profile.language if profile and profile.language else "en"

    # ---- commands --------------------------------------------------------------------
    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        language = self.user_language(user)
        username = context.bot.username or ""
        hint = START_HINT.get(language, START_HINT["en"])
        if user and user.first_name:
            html_greeting = phrase("greeting", language, name=escape(user.first_name))
            plain_greeting = phrase("greeting", language, name=user.first_name)
        else:
            html_greeting = plain_greeting = phrase("greeting_anonymous", language)
        html_text = f"{html_greeting} {hint.format(username=escape(username))}"
        plain = f"{plain_greeting} {hint.format(username=username)}"
        await self._say(update.effective_message, context.bot, Chunk(html_text, plain))

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = HELP.format(username=escape(context.bot.username or ""))
        plain = HELP.replace("<b>", "").replace("</b>", "").format(username=context.bot.username or "")
        await self._say(update.effective_message, context.bot, Chunk(text, plain))

    async def on_reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        async with self._chat_locks[message.chat_id]:  # after an answer in progress, not before it
            self.data.reset_conversation(PLATFORM, str(message.chat_id), _thread(message))
        done = phrase("reset", self.user_language(update.effective_user))
        await self._say(message, context.bot, Chunk(escape(done), done))

    async def on_ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        question = _strip_mention(_after_command(message.text or ""), context.bot.username or "")
        if not question:
            await self._say(message, context.bot, Chunk(escape(ASK_USAGE), ASK_USAGE), reply=True)
            return
        await self.answer(message, question, context.bot, mentioned=True)

    async def on_teach(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/teach QUESTION | ANSWER`` from an admin: a pending learned Q&A, used once approved."""
        message = update.effective_message
        user = update.effective_user
        reply = not _is_private(message)
        if user is None or user.id not in self.support.admin_user_ids:
            log.info("refused /teach from non-admin user %s", user.id if user else None)
            await self._say(message, context.bot, Chunk(escape(TEACH_REFUSED), TEACH_REFUSED), reply=reply)
            return
        question, bar, answer = _after_command(message.text or "").partition("|")
        if not bar or not question.strip() or not answer.strip():
            await self._say(message, context.bot, Chunk(escape(TEACH_USAGE), TEACH_USAGE), reply=reply)
            return
        author = f"{user.full_name} (telegram {user.id})"
        entry = await asyncio.to_thread(teach, self.data, question.strip(), answer.strip(), author, "telegram")
        log.info("learned Q&A #%s saved for review (taught by telegram user %s)", entry.id, user.id)
        text = TEACH_SAVED.format(id=entry.id)
        await self._say(message, context.bot, Chunk(escape(text), text), reply=reply)

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
    async def _say(message: Message, bot: Bot, chunk: Chunk, reply: bool = False,
                   markup: InlineKeyboardMarkup | None = None) -> Message:
        """A short fixed reply in the message's chat (and forum topic)."""
        return await send_chunk(bot, message.chat_id, chunk, message.message_id if reply else None, _topic(message),
                                markup)

    # ---- answering -------------------------------------------------------------------
    def incoming(self, message: Message, question: str, mentioned: bool) -> IncomingMessage:
        """The Telegram message as the core's platform-neutral type (the core keeps the context)."""
        user = message.from_user
        return IncomingMessage(
            text=question,
            platform=PLATFORM,
            conversation_id=str(message.chat_id),
            thread_id=_thread(message),
            message_id=str(message.message_id),
            user_id=str(user.id) if user else None,
            user_name=user.first_name if user else None,
            is_direct=_is_private(message),
            mentioned_bot=mentioned,
            received_at=message.date,
            chat_type=message.chat.type,  # the knowledge-base scope may depend on it (core.scopes)
        )

    async def answer(self, message: Message, question: str, bot: Bot, mentioned: bool) -> None:
        """Answer one question in its chat; any failure becomes a short apology, never a crash."""
        chat_id = message.chat_id
        private = _is_private(message)
        incoming = self.incoming(message, question, mentioned)
        if self.assistant.ignores(incoming):  # an audience the scopes file says to ignore: no trace
            log.info("message in chat %s from an ignored audience; nothing sent", chat_id)
            return
        escalation = await asyncio.to_thread(self.desk.forwarding, incoming)
        if escalation is not None:  # a person has this conversation: they get it, not the bot
            await self.forward_to_support(bot, message, question, escalation)
            return
        reply = StreamedReply(
            bot, chat_id,
            reply_to=None if private else message.message_id,
            interval=self.options.edit_interval if private else self.options.group_edit_interval,
            thread_id=_topic(message),
        )
        earlier = await earlier_reply(bot, chat_id)  # a resumed update continues its first message
        if earlier is not None:
            reply.continue_in(earlier)
        reply.on_first_sent = remember_reply
        async with self._chat_locks[chat_id]:
            async with typing(bot, chat_id, self.options.typing_interval, _topic(message)):
                try:
                    async with self.fair.turn(str(message.from_user.id if message.from_user else chat_id)):
                        answer = await reply.stream(self.assistant.stream(incoming))
                    if answer.handoff:  # the user asked for a person: no answer, an escalation
                        text = await self.escalate(bot, incoming, answer.language, question, answer.turn_id,
                                                   where=message.chat.title)
                        await reply.finish([Chunk(escape(text), text)])
                    else:
                        await reply.finish(render_answer(answer, answer.language), answer_keyboard(answer))
                except Busy as busy:
                    log.info("question in chat %s not queued (%s)", chat_id, busy)
                    await reply.fail(phrase(busy.reason, detect_language(question)))
                    return
                except InvalidMessageError as exc:
                    await reply.fail(str(exc))
                    return
                except Exception:  # noqa: BLE001 - the user gets an apology, the log the details
                    log.exception("answering update in chat %s failed", chat_id)
                    await reply.fail(phrase("error", detect_language(question)))
                    return
                # The cited passages' pictures follow the answer, still in the chat's turn (never raises).
                await send_images(bot, chat_id, answer_images(answer), _topic(message))
        log.info("answered in chat %s (mode=%s, %d sources, %d related, handoff=%s, %.2fs)", chat_id, answer.mode,
                 len(answer.citations), len(answer.related), answer.handoff, answer.latency_s)

    # ---- buttons ---------------------------------------------------------------------
    async def on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """👍/👎, "Talk to a person" and Close; every click is answered (the client shows a spinner until then)."""
        query = update.callback_query
        kind, _, rest = (query.data or "").partition(":")
        message = query.message if isinstance(query.message, Message) else None
        try:
            if message is None:
                await query.answer()
            elif kind == "fb":
                await self.on_feedback(query, message, rest, context.bot)
            elif kind == "person":
                await self.on_person(query, message, rest, context.bot)
            elif kind == "close":
                await self.on_close_button(query, message, rest, context.bot)
            else:
                await query.answer()
        except BadRequest as exc:  # e.g. the query is too old to answer
            log.warning("button %r in chat %s failed: %s", kind, message.chat_id if message else None, exc.message)

    def _turn_in_chat(self, turn_id_text: str, message: Message):
        """The stored turn a button refers to, only if it belongs to this chat's conversation."""
        if not turn_id_text.isdigit():
            return None
        turn = self.data.turn(int(turn_id_text))
        conversation = self.data.conversation(PLATFORM, str(message.chat_id), _thread(message))
        return turn if turn is not None and turn.conversation == conversation else None

    async def on_feedback(self, query: CallbackQuery, message: Message, rest: str, bot: Bot) -> None:
        turn_text, _, value_text = rest.partition(":")
        turn = self._turn_in_chat(turn_text, message)
        if turn is None or value_text not in ("+1", "-1"):
            await query.answer()
            return
        value = int(value_text)
        changed = self.data.record_feedback(turn.id, str(query.from_user.id), value)
        language = turn.language
        log.info("feedback %+d on turn %s (%s)", value, turn.id, "recorded" if changed else "repeated")
        await query.answer(phrase("feedback_thanks" if value > 0 else "feedback_sorry", language))
        if not changed:
            return
        # The buttons give way to what is left to do: nothing, or the offer of a person.
        offer = value < 0 or turn.refused
        markup = InlineKeyboardMarkup([[_person_button(turn.id, language)]]) if offer else None
        await self._set_markup(bot, message.chat_id, message.message_id, markup)

    async def on_person(self, query: CallbackQuery, message: Message, rest: str, bot: Bot) -> None:
        turn = self._turn_in_chat(rest, message)
        if turn is None:
            await query.answer()
            return
        language = turn.language
        user = query.from_user
        await query.answer(phrase("talk_to_person", language))
        incoming = IncomingMessage(
            text=turn.question, platform=PLATFORM, conversation_id=str(message.chat_id), thread_id=_thread(message),
            user_id=str(user.id), user_name=user.first_name, is_direct=_is_private(message),
        )
        text = await self.escalate(bot, incoming, language, turn.question, turn.id, where=message.chat.title)
        await self._set_markup(bot, message.chat_id, message.message_id, None)
        await self._say(message, bot, Chunk(escape(text), text))

    @staticmethod
    async def _set_markup(bot: Bot, chat_id: int, message_id: int, markup: InlineKeyboardMarkup | None) -> None:
        try:
            await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=markup)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning("could not change the buttons of message %s in chat %s: %s", message_id, chat_id,
                            exc.message)

    # ---- hand-off ----------------------------------------------------------------------
    async def escalate(self, bot: Bot, incoming: IncomingMessage, language: str, question: str,
                       turn_id: int | None, where: str | None = None) -> str:
        """Open (or reuse) the conversation's escalation and post it to the support group.

        Returns what to tell the customer: that a person will reply, or honestly that none can."""
        support_chat = self.support.support_chat_id
        if support_chat is None:
            log.info("hand-off asked in chat %s but TELEGRAM_SUPPORT_CHAT_ID is not set", incoming.conversation_id)
            return await asyncio.to_thread(self.assistant.handoff_unavailable, language, incoming)
        key = f"{incoming.conversation_id}:{incoming.thread_id or ''}"
        async with self._handoff_locks[key]:  # two quick clicks open one escalation
            escalation = self.desk.open(incoming, question, turn_id)
            if escalation.support_ref is None:
                try:
                    posted = await send_chunk(bot, support_chat, self.escalation_post(escalation, where),
                                              markup=InlineKeyboardMarkup([[InlineKeyboardButton(
                                                  "Close", callback_data=f"close:{escalation.id}")]]))
                except TelegramError as exc:
                    log.error("could not post escalation #%s to the support group %s: %s (is the bot a member?)",
                              escalation.id, support_chat, exc)
                    self.desk.close(escalation.id, "askdesk: not posted")
                    return await asyncio.to_thread(self.assistant.handoff_unavailable, language, incoming)
                self.desk.posted(escalation, f"{support_chat}:{posted.message_id}")
                log.info("escalation #%s posted to the support group", escalation.id)
        return phrase("handoff", language)

    async def forward_to_support(self, bot: Bot, message: Message, text: str, escalation: Escalation) -> None:
        """The escalated customer wrote again: under the escalation's post, and tell them so."""
        language = detect_language(text)
        support_chat, _, post_id = (escalation.support_ref or "").partition(":")
        name = message.from_user.first_name if message.from_user else "Customer"
        header = FORWARDED.format(id=escalation.id, name=name)
        try:
            await send_chunk(bot, int(support_chat), Chunk(f"<b>{escape(header)}</b>\n{escape(text)}", f"{header}\n{text}"),
                             int(post_id) if post_id.isdigit() else None)
        except (TelegramError, ValueError) as exc:
            log.warning("could not forward to escalation #%s in the support group: %s", escalation.id, exc)
            notice = await asyncio.to_thread(self.assistant.handoff_unavailable, language)
        else:
            log.info("customer message forwarded to escalation #%s", escalation.id)
            notice = phrase("forwarded", language)
        await self._say(message, bot, Chunk(escape(notice), notice), reply=not _is_private(message))

    @staticmethod
    def escalation_post(escalation: Escalation, where: str | None) -> Chunk:
        """What agents see: who asked where, the question, the conversation so far, how to answer."""
        name = escalation.user_name or "Customer"
        who_html, who = escape(name), name
        if escalation.user_id and escalation.user_id.isdigit():
            who_html = f'<a href="tg://user?id={escalation.user_id}">{escape(name)}</a> (id {escalation.user_id})'
            who = f"{name} (id {escalation.user_id})"
        place = f"group “{where}”" if where else "private chat"
        transcript = _transcript(escalation.transcript)
        how = "Reply to this message to answer the customer. Close with the button below or by replying /close."
        html_lines = [
            f"🙋 <b>Escalation #{escalation.id}</b>",
            f"<b>From:</b> {who_html}, {escape(place)}",
            f"<b>Question:</b> {escape(_clip(escalation.question, 1000))}",
        ]
        plain_lines = [f"🙋 Escalation #{escalation.id}", f"From: {who}, {place}",
                       f"Question: {_clip(escalation.question, 1000)}"]
        if transcript:
            html_lines.append(f"<b>Conversation so far:</b>\n<blockquote>{escape(transcript)}</blockquote>")
            plain_lines.append(f"Conversation so far:\n{transcript}")
        html_lines.append(f"<i>{escape(how)}</i>")
        plain_lines.append(how)
        return Chunk("\n".join(html_lines), "\n".join(plain_lines))

    async def on_support_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """In the support group: relay agents' replies to escalations, ``/close``; ignore the rest."""
        message = update.effective_message
        bot = context.bot
        command = _command(message.text)
        if command == "teach":
            await self.on_teach(update, context)
            return
        if command == "help":
            await self._say(message, bot, Chunk(SUPPORT_HELP, re.sub(r"</?b>", "", SUPPORT_HELP)))
            return
        replied = message.reply_to_message
        escalation_ref = (f"{message.chat_id}:{replied.message_id}"
                          if replied is not None and _replies_to_bot(message, bot) else None)
        escalation = self.data.escalation_by_ref(escalation_ref) if escalation_ref else None
        if escalation is None and escalation_ref is not None:
            # A reply to a customer's forwarded message answers that message's escalation.
            forwarded = _FORWARDED_ID.match(replied.text or "")
            escalation = self.data.escalation(int(forwarded.group(1))) if forwarded else None
            escalation_ref = escalation.support_ref if escalation else None
        agent = message.from_user.first_name if message.from_user else "Support"
        if command == "close":
            if escalation is None:
                await self._say(message, bot, Chunk(escape(CLOSE_USAGE), CLOSE_USAGE), reply=True)
                return
            if not await self.close(bot, escalation.id, agent, message):
                text = ALREADY_CLOSED.format(id=escalation.id)
                await self._say(message, bot, Chunk(escape(text), text), reply=True)
            return
        if escalation is None or command is not None:
            return  # chatter among agents, other commands: not for the customer, not a question
        if not message.text:
            await self._say(message, bot, Chunk(escape(ONLY_TEXT_RELAYED), ONLY_TEXT_RELAYED), reply=True)
            return
        author = message.from_user.id if message.from_user else None
        if not (author in self.support.admin_user_ids or await self.support.agents.allows(str(author) if author else None)):
            log.debug("reply by %s in escalation #%s not relayed: not a listed support agent", author, escalation.id)
            return
        relayed = await asyncio.to_thread(self.desk.agent_replied, escalation_ref, agent, message.text)
        if relayed is None:
            text = ESCALATION_IS_CLOSED.format(id=escalation.id)
            await self._say(message, bot, Chunk(escape(text), text), reply=True)
            return
        language = self.customer_language(escalation)
        label = phrase("agent_reply", language, name=agent)
        chunk = Chunk(f"<b>{escape(label)}</b>\n{escape(relayed.text)}", f"{label}\n{relayed.text}")
        try:
            await self._to_customer(bot, escalation, chunk)
        except TelegramError as exc:
            log.warning("could not relay an agent's reply for escalation #%s: %s", escalation.id, exc)
            text = NOT_DELIVERED.format(reason=str(exc))
            await self._say(message, bot, Chunk(escape(text), text), reply=True)
            return
        log.info("relayed an agent's reply for escalation #%s", escalation.id)

    async def on_close_button(self, query: CallbackQuery, message: Message, rest: str, bot: Bot) -> None:
        if message.chat_id != self.support.support_chat_id or not rest.isdigit():
            await query.answer()
            return
        closed = await self.close(bot, int(rest), query.from_user.first_name, message)
        await query.answer("Closed" if closed else "Already closed")

    async def close(self, bot: Bot, escalation_id: int, agent: str, where: Message) -> bool:
        """Close an escalation (once), tell the customer, and take the Close button away."""
        escalation = self.desk.close(escalation_id, agent)
        if escalation is None:
            return False
        language = self.customer_language(escalation)
        text = phrase("escalation_closed", language)
        try:
            await self._to_customer(bot, escalation, Chunk(escape(text), text))
        except TelegramError as exc:
            log.warning("could not tell the customer that escalation #%s was closed: %s", escalation.id, exc)
        notice = CLOSED_BY.format(id=escalation.id, name=agent)
        reply_to = None
        if escalation.support_ref:
            chat, _, message_id = escalation.support_ref.partition(":")
            await self._set_markup(bot, int(chat), int(message_id), None)
            reply_to = int(message_id)
        await send_chunk(bot, where.chat_id, Chunk(escape(notice), notice), reply_to, _topic(where))
        log.info("escalation #%s closed by an agent", escalation.id)
        return True

    @staticmethod
    async def _to_customer(bot: Bot, escalation: Escalation, chunk: Chunk) -> Message:
        thread = int(escalation.thread_id) if escalation.thread_id else None
        return await send_chunk(bot, int(escalation.conversation_id), chunk, thread_id=thread)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Errors outside :meth:`answer` (commands, buttons, relaying): logged, bot keeps serving."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("error while handling update %s", update_id, exc_info=context.error)


def build_application(
    token: str,
    assistant: Assistant,
    store: Store,
    *,
    api_urls: tuple[str, str] | None = None,
    options: BotOptions | None = None,
    support: SupportOptions | None = None,
) -> Application:
    """A ready-to-start ``Application``: rate limited, concurrent, handlers registered.

    Every update goes through ``store``'s inbox (:mod:`bots.telegram.inbox`): stored before
    Telegram learns it arrived, dropped when redelivered, marked answered once handled; the
    application's ``inbox`` attribute is what :func:`bots.telegram.serve.run_bot` resumes from.
    Conversations, feedback and escalations go to the assistant's store (the same database in
    ``serve``)."""
    options = options or BotOptions()
    inbox = Inbox(store, PLATFORM)
    builder = (
        Application.builder()
        .token(token)
        .rate_limiter(AIORateLimiter(max_retries=options.max_retries))
        .concurrent_updates(True)
        .update_queue(InboxQueue(inbox))
        .application_class(InboxApplication)
    )
    if api_urls:
        builder = builder.base_url(api_urls[0]).base_file_url(api_urls[1])
    application = builder.build()
    application.inbox = inbox
    TelegramAdapter(assistant, store, options, support).register(application)
    return application
