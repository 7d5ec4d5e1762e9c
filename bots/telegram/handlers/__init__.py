"""The Telegram handlers, one module per kind of update, registered the python-telegram-bot way.

- :mod:`~bots.telegram.handlers.support`: everything in the support group (first: nothing there
  is a customer's question);
- :mod:`~bots.telegram.handlers.callbacks`: one ``CallbackQueryHandler(pattern=...)`` per button;
- :mod:`~bots.telegram.handlers.commands`: ``/start``, ``/help``, ``/reset``, ``/teach``, unknown
  commands, and the error handler;
- :mod:`~bots.telegram.handlers.questions`: ``/ask``, text messages, and what is not text.

Each handler finds the :class:`bots.telegram.adapter.TelegramAdapter` (assistant, stores,
support workflow) in ``application.bot_data``.
"""

from __future__ import annotations

from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bots.telegram.adapter import ADAPTER, TelegramAdapter
from bots.telegram.handlers import callbacks, commands, questions, support


def register(application: Application, adapter: TelegramAdapter) -> None:  # type: ignore[type-arg]
    """Add askdesk's handlers to ``application``, in the order they are tried."""
    application.bot_data[ADAPTER] = adapter
    message = filters.UpdateType.MESSAGE
    if adapter.support.support_chat_id is not None:
        application.add_handler(MessageHandler(message & filters.Chat(adapter.support.support_chat_id),
                                               support.on_support_message))
    application.add_handlers([
        CallbackQueryHandler(callbacks.on_feedback, pattern=callbacks.FEEDBACK),
        CallbackQueryHandler(callbacks.on_person, pattern=callbacks.PERSON),
        CallbackQueryHandler(callbacks.on_close, pattern=callbacks.CLOSE),
        CallbackQueryHandler(callbacks.on_other),
        CommandHandler("start", commands.on_start, filters=message),
        CommandHandler("help", commands.on_help, filters=message),
        CommandHandler("reset", commands.on_reset, filters=message),
        CommandHandler("ask", questions.on_ask, filters=message),
        CommandHandler("teach", commands.on_teach, filters=message),
        MessageHandler(message & filters.TEXT & ~filters.COMMAND, questions.on_text),
        MessageHandler(message & filters.COMMAND & filters.ChatType.PRIVATE, commands.on_unknown_command),
        MessageHandler(message & ~filters.TEXT & ~filters.StatusUpdate.ALL, questions.on_not_text),
    ])
    application.add_error_handler(commands.on_error)


__all__ = ["register"]
