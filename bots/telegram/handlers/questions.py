"""Questions: private messages, mentions and replies in groups, ``/ask``; answered as they stream.

Which messages count as questions:
- private chat: every text message;
- groups: only when the bot is @mentioned, replied to, or asked with ``/ask QUESTION``
  (the mention or command is stripped from the text).

A customer whose conversation a person has (an open escalation) is not answered by the bot:
:meth:`core.support.SupportWorkflow.take_over` forwards the message to the escalation instead.
Every answer carries 👍/👎 buttons (``fb:<turn>:±1``); refusals offer "Talk to a person"
(``person:<turn>``); the pictures of the cited passages follow the answer.
"""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import ContextTypes

from bots.images import answer_images
from bots.telegram.adapter import TelegramAdapter, adapter_of, is_private, topic
from bots.telegram.delivery import StreamedReply, send_images, typing
from bots.telegram.handlers.common import after_command, mentions, plain, replies_to_bot, say, strip_mention
from bots.telegram.inbox import earlier_reply, remember_reply
from bots.telegram.render import render_answer
from core.errors import InvalidMessageError
from core.fairness import Busy
from core.language import detect_language, phrase
from core.messages import Answer

log = logging.getLogger(__name__)

NOT_TEXT = "I can only read text messages for now. Please type your question."
ASK_USAGE = "Usage: /ask QUESTION — for example: /ask How do I return an item?"


def person_button(turn_id: int, language: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(phrase("talk_to_person", language), callback_data=f"person:{turn_id}")


def answer_keyboard(answer: Answer) -> InlineKeyboardMarkup | None:
    """👍/👎 under every stored answer; "Talk to a person" under a refusal."""
    if answer.turn_id is None or answer.handoff:
        return None
    rows = [[InlineKeyboardButton("👍", callback_data=f"fb:{answer.turn_id}:+1"),
             InlineKeyboardButton("👎", callback_data=f"fb:{answer.turn_id}:-1")]]
    if answer.offers_person:
        rows.append([person_button(answer.turn_id, answer.language)])
    return InlineKeyboardMarkup(rows)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    bot = context.bot
    if is_private(message):
        await answer(adapter_of(context), message, message.text or "", bot, mentioned=False)
        return
    mentioned = mentions(message, bot)
    if not (mentioned or replies_to_bot(message, bot)):
        return  # group chatter not meant for us
    await answer(adapter_of(context), message, strip_mention(message.text or "", bot.username or ""), bot,
                 mentioned=mentioned)


async def on_ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    question = strip_mention(after_command(message.text or ""), context.bot.username or "")
    if not question:
        await say(message, context.bot, plain(ASK_USAGE), reply=True)
        return
    await answer(adapter_of(context), message, question, context.bot, mentioned=True)


async def on_not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    bot = context.bot
    if not is_private(message) and not (mentions(message, bot) or replies_to_bot(message, bot)):
        return
    await say(message, bot, plain(NOT_TEXT), reply=not is_private(message))


async def answer(adapter: TelegramAdapter, message: Message, question: str, bot: Bot, mentioned: bool) -> None:
    """Answer one question in its chat; any failure becomes a short apology, never a crash."""
    chat_id = message.chat_id
    private = is_private(message)
    incoming = adapter.incoming(message, question, mentioned)
    if adapter.assistant.ignores(incoming):  # an audience the scopes file says to ignore: no trace
        log.info("message in chat %s from an ignored audience; nothing sent", chat_id)
        return
    notice = await adapter.workflow.take_over(incoming)
    if notice is not None:  # a person has this conversation: they get it, not the bot
        await say(message, bot, plain(notice), reply=not private)
        return
    options = adapter.options
    reply = StreamedReply(
        bot, chat_id,
        reply_to=None if private else message.message_id,
        interval=options.edit_interval if private else options.group_edit_interval,
        thread_id=topic(message),
    )
    earlier = await earlier_reply(bot, chat_id)  # a resumed update continues its first message
    if earlier is not None:
        reply.continue_in(earlier)
    reply.on_first_sent = remember_reply
    user = str(message.from_user.id if message.from_user else chat_id)
    try:
        # Admitted before waiting behind the chat's answer in progress: that wait counts against the
        # user's limits, or one person's private chat would queue without bound.
        async with adapter.fair.ticket(user) as ticket, adapter.chat_locks[chat_id]:
            async with typing(bot, chat_id, options.typing_interval, topic(message)):
                try:
                    async with ticket.turn():
                        result = await reply.stream(adapter.assistant.stream(incoming))
                    if result.handoff:  # the user asked for a person: no answer, an escalation
                        text = await adapter.workflow.escalate(incoming, result.language, turn_id=result.turn_id,
                                                               question=question, where=message.chat.title,
                                                               scope=result.scope)
                        await reply.finish([plain(text)])
                    else:
                        await reply.finish(render_answer(result, result.language), answer_keyboard(result))
                except InvalidMessageError as exc:
                    await reply.fail(str(exc))
                    return
                except Exception:  # noqa: BLE001 - the user gets an apology, the log the details
                    log.exception("answering update in chat %s failed", chat_id)
                    await reply.fail(phrase("error", detect_language(question)))
                    return
                # The cited passages' pictures follow the answer, still in the chat's turn (never raises).
                await send_images(bot, chat_id, answer_images(result), topic(message))
    except Busy as busy:
        log.info("question in chat %s not queued (%s)", chat_id, busy)
        if busy.tell:  # told a moment ago: no reply under it says it was not answered
            await reply.fail(phrase(busy.reason, detect_language(question)))
        return
    log.info("answered in chat %s (mode=%s, %d sources, %d related, handoff=%s, %.2fs)", chat_id, result.mode,
             len(result.citations), len(result.related), result.handoff, result.latency_s)
