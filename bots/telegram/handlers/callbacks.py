"""Buttons: 👍/👎 (``fb:<turn>:±1``), "Talk to a person" (``person:<turn>``), Close (``close:<escalation>``).

Each kind has its own ``CallbackQueryHandler(pattern=...)``; :func:`on_other` answers whatever
else is clicked. Every click is answered (the client shows a spinner until then), and a click
Telegram no longer lets us answer (too old) is only logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bots.telegram.adapter import PLATFORM, TelegramAdapter, adapter_of, is_private, thread
from bots.telegram.handlers.common import plain, say
from bots.telegram.handlers.questions import person_button
from bots.telegram.support import set_markup
from core.language import phrase
from core.messages import IncomingMessage

log = logging.getLogger(__name__)

FEEDBACK = r"^fb:"
PERSON = r"^person:"
CLOSE = r"^close:"

Click = Callable[[TelegramAdapter, CallbackQuery, Message, str, Bot], Awaitable[None]]
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def button(handle: Click) -> Handler:
    """A PTB callback for one kind of button: ``handle(adapter, query, message, rest, bot)``, where
    ``rest`` is the callback data after its ``kind:``."""

    @functools.wraps(handle)
    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        kind, _, rest = (query.data or "").partition(":")
        message = query.message if isinstance(query.message, Message) else None
        try:
            if message is None:  # too old for Telegram to say where it was
                await query.answer()
                return
            await handle(adapter_of(context), query, message, rest, context.bot)
        except BadRequest as exc:  # e.g. the query is too old to answer
            log.warning("button %r in chat %s failed: %s", kind, message.chat_id if message else None, exc.message)

    return callback


async def _feedback(adapter: TelegramAdapter, query: CallbackQuery, message: Message, rest: str, bot: Bot) -> None:
    """👍/👎: recorded once per user; the buttons give way to what is left to do."""
    turn_text, _, value_text = rest.partition(":")
    result = None
    if turn_text.isdigit() and value_text in ("+1", "-1"):
        result = await adapter.workflow.feedback(int(turn_text), str(query.from_user.id), value_text == "+1",
                                                 str(message.chat_id), thread(message))
    if result is None:  # a forged or foreign button
        await query.answer()
        return
    await query.answer(phrase("feedback_thanks" if result.positive else "feedback_sorry", result.language))
    if not result.changed:
        return
    # Nothing left to do, or the offer of a person.
    markup = InlineKeyboardMarkup([[person_button(result.turn.id, result.language)]]) if result.offer_person else None
    await set_markup(bot, message.chat_id, message.message_id, markup)


async def _person(adapter: TelegramAdapter, query: CallbackQuery, message: Message, rest: str, bot: Bot) -> None:
    """"Talk to a person" under an answer of this chat: an escalation, like asking for a human in words."""
    turn = (await adapter.workflow.turn_in_conversation(int(rest), str(message.chat_id), thread(message))
            if rest.isdigit() else None)
    if turn is None:
        await query.answer()
        return
    language = turn.language
    user = query.from_user
    await query.answer(phrase("talk_to_person", language))
    incoming = IncomingMessage(
        text=turn.question, platform=PLATFORM, conversation_id=str(message.chat_id), thread_id=thread(message),
        user_id=str(user.id), user_name=user.first_name, is_direct=is_private(message),
        chat_type=message.chat.type,  # the knowledge-base scope (core.scopes): replies are learned there
    )
    text = await adapter.workflow.escalate(incoming, language, turn_id=turn.id, question=turn.question,
                                           where=message.chat.title)
    await set_markup(bot, message.chat_id, message.message_id, None)
    await say(message, bot, plain(text))


async def _close(adapter: TelegramAdapter, query: CallbackQuery, message: Message, rest: str, bot: Bot) -> None:
    """Close, under an escalation's post in the support group."""
    if message.chat_id != adapter.support.support_chat_id or not rest.isdigit():
        await query.answer()
        return
    closed = await adapter.workflow.close(int(rest), query.from_user.first_name)
    await query.answer("Closed" if closed is not None else "Already closed")


async def _other(adapter: TelegramAdapter, query: CallbackQuery, message: Message, rest: str, bot: Bot) -> None:
    """A button of no kind askdesk knows (an older version's): answered, nothing else."""
    await query.answer()


on_feedback = button(_feedback)
on_person = button(_person)
on_close = button(_close)
on_other = button(_other)
