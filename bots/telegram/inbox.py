"""Telegram updates through askdesk's inbox: stored before Telegram is told they arrived.

Telegram considers an update delivered once the next ``getUpdates`` asks for a higher offset
(polling) or once our webhook answered 200. PTB's updater and webhook both hand each update to
``Application.update_queue.put`` *before* either happens, so a queue that stores the update
first (and drops redeliveries of ones already answered or being answered) makes every
accepted update survive a crash. :class:`InboxApplication` marks an update answered when
PTB has finished processing it (handlers and error handler alike), and :func:`resume`
replays the ones a stopped process left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from telegram import Chat, Message, Update
from telegram.ext import Application

from core.inbox import Inbox
from core.language import phrase
from core.store import InboxItem
from core.support import EventClaims, StoreThread

#: How an inbox call runs off the loop: on the adapter's store thread, never in the default
#: executor, whose threads the answer pipelines hold — there the write that records a sent reply
#: could wait long enough for a crash to fall between the send and the record (a duplicate).
RunOff = Callable[..., Awaitable[Any]]


def _runner(offload: StoreThread | None) -> RunOff:
    return offload.run if offload is not None else asyncio.to_thread

log = logging.getLogger(__name__)


class InboxQueue(asyncio.Queue):  # type: ignore[type-arg]
    """``Application.update_queue`` that stores each update in the inbox before queueing it."""

    def __init__(self, inbox: Inbox, claims: EventClaims | None = None, offload: StoreThread | None = None) -> None:
        super().__init__()
        self.inbox = inbox
        self.claims = claims  # only for pruning: the inbox itself is Telegram's claim on an update
        self._run = _runner(offload)

    async def put(self, item: Any) -> None:
        if isinstance(item, Update) and self.claims is not None:
            await self.claims.prune()  # old handled event ids are forgotten while the bot runs
        if isinstance(item, Update):
            user = item.effective_user
            acceptance = await self._run(
                self.inbox.accept, str(item.update_id), item.to_dict(), str(user.id) if user else None
            )
            if not acceptance.answer_now:
                log.info("telegram: update %s already %s; redelivery dropped", item.update_id,
                         acceptance.outcome.replace("_", " "))
                return
        await super().put(item)


#: The inbox entry of the update being handled (PTB awaits handlers in the task that called
#: ``process_update``, so handlers see it); None outside an inbox-managed update.
_CURRENT: ContextVar[tuple[Inbox, str, RunOff] | None] = ContextVar("askdesk_telegram_update", default=None)


class InboxApplication(Application):  # type: ignore[type-arg]
    """Marks an update answered once PTB has processed it (use with :class:`InboxQueue`)."""

    inbox: Inbox | None = None
    #: The adapter's store thread, for the inbox's writes (see :data:`RunOff`).
    offload: StoreThread | None = None
    #: Called once the application has shut down (the adapter releases its database thread).
    on_shutdown: Callable[[], None] | None = None

    async def shutdown(self) -> None:
        await super().shutdown()
        if self.on_shutdown is not None:
            self.on_shutdown()

    async def process_update(self, update: object) -> None:
        run = _runner(self.offload)
        token = _CURRENT.set((self.inbox, str(update.update_id), run)) if (
            isinstance(update, Update) and self.inbox is not None) else None
        try:
            await super().process_update(update)
        finally:
            if token is not None:
                _CURRENT.reset(token)
        if isinstance(update, Update) and self.inbox is not None:
            await run(self.inbox.done, str(update.update_id))


async def earlier_reply(bot: Any, chat_id: int) -> Message | None:
    """The message an earlier try of the current update already sent, to be edited, not repeated."""
    current = _CURRENT.get()
    if current is None:
        return None
    inbox, update_id, run = current
    ref = await run(inbox.reply_ref, update_id)
    if not ref:
        return None
    message = Message(int(ref), datetime.now(timezone.utc), Chat(chat_id, Chat.PRIVATE))
    message.set_bot(bot)
    return message


async def remember_reply(message: Message) -> None:
    """Store the reply's first message for the current update (see :func:`earlier_reply`)."""
    current = _CURRENT.get()
    if current is not None:
        inbox, update_id, run = current
        await run(inbox.replied, update_id, str(message.message_id))


async def resume(application: Application, inbox: Inbox, item: InboxItem) -> None:
    """Answer an update a stopped process had accepted but not answered (the inbox's resume path)."""
    update = Update.de_json(item.payload, application.bot)
    if inbox.exhausted(item):
        # Tried and crashed too often: say so rather than crash every restart or stay silent.
        log.error("telegram: update %s failed %d times; apologising instead", item.event_id, item.attempts - 1)
        chat, user = update.effective_chat, update.effective_user
        if chat is not None:
            await application.bot.send_message(chat.id, phrase("error", (user.language_code or "en")[:2] if user else "en"))
        await _runner(getattr(application, "offload", None))(inbox.done, item.event_id)
        return
    log.info("telegram: resuming update %s (try %d)", item.event_id, item.attempts)
    await application.process_update(update)
