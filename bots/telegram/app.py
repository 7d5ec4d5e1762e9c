"""The python-telegram-bot ``Application``: the inbox in front, askdesk's handlers behind. Translation only.

A Telegram update becomes an :class:`IncomingMessage`; the core's answer stream goes out
through :mod:`bots.telegram.delivery`. The handlers are modules in :mod:`bots.telegram.handlers`
(questions, buttons, commands, the support group), registered the PTB way — a
``CallbackQueryHandler(pattern=...)`` per button — and share one
:class:`bots.telegram.adapter.TelegramAdapter`. Which messages count as questions:
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
escalation posted to the support group with a Close button (``close:<escalation>``). What
happens then is the core's support workflow (:class:`core.support.SupportWorkflow`); how it
looks on Telegram is :class:`bots.telegram.support.TelegramSupportChannel`. The handlers'
database calls run on one store thread, never on the event loop.

Updates are processed concurrently (``concurrent_updates``) so one slow answer never holds
up other chats; answers within one chat are taken in turn (a per-chat lock), which keeps
the chat's context in order and its edits within Telegram's per-chat limits.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import AIORateLimiter, Application

from bots.telegram.adapter import PLATFORM, BotOptions, SupportOptions, TelegramAdapter
from bots.telegram.handlers import register
from bots.telegram.handlers.questions import answer_keyboard
from bots.telegram.inbox import InboxApplication, InboxQueue
from core.assistant import Assistant
from core.inbox import Inbox
from core.store import Store
from core.support import EventClaims, StoreThread

#: The update types askdesk asks Telegram for (edits, reactions, etc. are not questions).
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def build_application(
    token: str,
    assistant: Assistant,
    store: Store,
    *,
    api_urls: tuple[str, str] | None = None,
    options: BotOptions | None = None,
    support: SupportOptions | None = None,
) -> Application:  # type: ignore[type-arg]
    """A ready-to-start ``Application``: rate limited, concurrent, handlers registered.

    Every update goes through ``store``'s inbox (:mod:`bots.telegram.inbox`): stored before
    Telegram learns it arrived, dropped when redelivered, marked answered once handled; the
    application's ``inbox`` attribute is what :func:`bots.telegram.serve.run_bot` resumes from.
    Conversations, feedback and escalations go to the assistant's store (the same database in
    ``serve``)."""
    options = options or BotOptions()
    inbox = Inbox(store, PLATFORM)
    offload = StoreThread()  # the handlers' database thread
    builder = (
        Application.builder()
        .token(token)
        .rate_limiter(AIORateLimiter(max_retries=options.max_retries))
        .concurrent_updates(True)
        .update_queue(InboxQueue(inbox, EventClaims(store, PLATFORM, offload), offload))
        .application_class(InboxApplication)
    )
    if api_urls:
        builder = builder.base_url(api_urls[0]).base_file_url(api_urls[1])
    application = builder.build()
    application.inbox = inbox
    application.offload = offload
    adapter = TelegramAdapter(assistant, store, application.bot, options, support, offload)
    register(application, adapter)
    application.on_shutdown = adapter.close
    return application


__all__ = ["ALLOWED_UPDATES", "PLATFORM", "BotOptions", "SupportOptions", "TelegramAdapter", "answer_keyboard",
           "build_application"]
