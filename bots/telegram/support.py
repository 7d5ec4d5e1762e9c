"""The support workflow's output on Telegram: posts in the support group, messages to the customer's chat.

Implements :class:`core.support.SupportChannel`; the rules (locking, language, transcripts,
failures, storage) are :class:`core.support.SupportWorkflow`'s. Here only what Telegram makes
of them: an HTML post per escalation with a Close button (``close:<escalation>``), the
customer's new messages as replies to it (headed so that an agent's reply to one of them
finds its escalation again), texts to the customer's chat (and forum topic), and on closing
the button taken away and a notice under the post. Whatever Telegram refuses becomes
:class:`core.support.DeliveryFailed`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError

from bots.telegram.delivery import send_chunk
from bots.telegram.render import Chunk, escape
from core.store import Escalation
from core.support import DeliveryFailed, clip_transcript
from core.support.transcript import clip_line

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Header of a customer's message forwarded to an open escalation; agents answer by replying to it.
FORWARDED = "💬 Escalation #{id}: {name} (customer) wrote"
FORWARDED_ID = re.compile(re.escape(FORWARDED.partition("{id}")[0]) + r"(\d+): ")
CLOSED_BY = "✅ Escalation #{id} closed by {name}; the customer was told."
QUESTION_LIMIT = 1000  # characters of the question in an escalation post
HOW_TO_ANSWER = "Reply to this message to answer the customer. Close with the button below or by replying /close."


def forwarded_escalation_id(text: str | None) -> int | None:
    """The escalation a forwarded customer message (see :data:`FORWARDED`) belongs to, else None."""
    found = FORWARDED_ID.match(text or "")
    return int(found.group(1)) if found else None


def escalation_post(escalation: Escalation, where: str | None) -> Chunk:
    """What agents see: who asked where, the question, the conversation so far, how to answer."""
    name = escalation.user_name or "Customer"
    who_html, who = escape(name), name
    if escalation.user_id and escalation.user_id.isdigit():
        who_html = f'<a href="tg://user?id={escalation.user_id}">{escape(name)}</a> (id {escalation.user_id})'
        who = f"{name} (id {escalation.user_id})"
    place = f"group “{where}”" if where else "private chat"
    question = clip_line(escalation.question, QUESTION_LIMIT)
    transcript = clip_transcript(escalation.transcript)  # the core's rule (a no-op on what it clipped already)
    html_lines = [
        f"🙋 <b>Escalation #{escalation.id}</b>",
        f"<b>From:</b> {who_html}, {escape(place)}",
        f"<b>Question:</b> {escape(question)}",
    ]
    plain_lines = [f"🙋 Escalation #{escalation.id}", f"From: {who}, {place}", f"Question: {question}"]
    if transcript:
        html_lines.append(f"<b>Conversation so far:</b>\n<blockquote>{escape(transcript)}</blockquote>")
        plain_lines.append(f"Conversation so far:\n{transcript}")
    html_lines.append(f"<i>{escape(HOW_TO_ANSWER)}</i>")
    plain_lines.append(HOW_TO_ANSWER)
    return Chunk("\n".join(html_lines), "\n".join(plain_lines))


def _post_ref(escalation: Escalation) -> tuple[int, int]:
    """The support post's chat and message id (``support_ref`` is ``CHAT:MESSAGE``)."""
    chat, _, message_id = (escalation.support_ref or "").rpartition(":")
    return int(chat), int(message_id)


async def _deliver(sending: Awaitable[T]) -> T:
    try:
        return await sending
    except TelegramError as exc:
        raise DeliveryFailed(str(exc)) from exc


async def set_markup(bot: Bot, chat_id: int, message_id: int, markup: InlineKeyboardMarkup | None) -> None:
    """Replace a message's buttons (None: take them away); a refused edit is only logged."""
    try:
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.warning("could not change the buttons of message %s in chat %s: %s", message_id, chat_id,
                        exc.message)


class TelegramSupportChannel:
    """:class:`core.support.SupportChannel` for one bot and its support group."""

    def __init__(self, bot: Bot, support_chat_id: int | None) -> None:
        self.bot = bot
        self.support_chat_id = support_chat_id

    async def post_escalation(self, escalation: Escalation, where: str | None) -> str:
        if self.support_chat_id is None:
            raise DeliveryFailed("no support group (TELEGRAM_SUPPORT_CHAT_ID)")
        close = InlineKeyboardMarkup([[InlineKeyboardButton("Close", callback_data=f"close:{escalation.id}")]])
        posted = await _deliver(send_chunk(self.bot, self.support_chat_id, escalation_post(escalation, where),
                                           markup=close))
        return f"{self.support_chat_id}:{posted.message_id}"

    async def post_under(self, escalation: Escalation, author: str | None, text: str) -> None:
        chat, post_id = _post_ref(escalation)
        header = FORWARDED.format(id=escalation.id, name=author or "Customer")
        await _deliver(send_chunk(self.bot, chat, Chunk(f"<b>{escape(header)}</b>\n{escape(text)}", f"{header}\n{text}"),
                                  post_id))

    async def send_to_customer(self, escalation: Escalation, text: str, heading: str | None = None, *,
                               formatted: str | None = None) -> None:
        # ``formatted`` is Slack's: a Telegram agent's reply is plain text, rendered here.
        chunk = (Chunk(f"<b>{escape(heading)}</b>\n{escape(text)}", f"{heading}\n{text}") if heading
                 else Chunk(escape(text), text))
        thread = int(escalation.thread_id) if escalation.thread_id else None
        await _deliver(send_chunk(self.bot, int(escalation.conversation_id), chunk, thread_id=thread))

    async def mark_closed(self, escalation: Escalation, closed_by: str) -> None:
        chat, post_id = _post_ref(escalation)
        await _deliver(set_markup(self.bot, chat, post_id, None))
        notice = CLOSED_BY.format(id=escalation.id, name=closed_by)
        await _deliver(send_chunk(self.bot, chat, Chunk(escape(notice), notice), post_id))


__all__ = ["CLOSED_BY", "FORWARDED", "TelegramSupportChannel", "escalation_post", "forwarded_escalation_id",
           "set_markup"]
