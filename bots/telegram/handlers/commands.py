"""Commands: ``/start``, ``/help``, ``/reset``, ``/teach`` (admins), unknown ones; and the error handler."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bots.telegram.adapter import PLATFORM, adapter_of, is_private, thread
from bots.telegram.handlers.common import after_command, plain, say
from bots.telegram.render import Chunk, escape
from core.language import phrase
from core.support import TeachOutcome

log = logging.getLogger(__name__)

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
TEACH_USAGE = "Usage: /teach QUESTION | ANSWER — for example: /teach Do you ship to Iceland? | Yes, in 5–8 days."
TEACH_REFUSED = "Sorry, only askdesk admins can teach me answers. Please ask our support team to add it."
TEACH_SAVED = (
    "Thanks! Saved for review as #{id}. I'll use it once an admin approves it (askdesk kb review)."
)
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    user = update.effective_user
    language = await adapter_of(context).user_language(user)
    username = context.bot.username or ""
    hint = START_HINT.get(language, START_HINT["en"])
    if user and user.first_name:
        html_greeting = phrase("greeting", language, name=escape(user.first_name))
        plain_greeting = phrase("greeting", language, name=user.first_name)
    else:
        html_greeting = plain_greeting = phrase("greeting_anonymous", language)
    html_text = f"{html_greeting} {hint.format(username=escape(username))}"
    text = f"{plain_greeting} {hint.format(username=username)}"
    await say(update.effective_message, context.bot, Chunk(html_text, text))


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    text = HELP.format(username=escape(context.bot.username or ""))
    shown = HELP.replace("<b>", "").replace("</b>", "").format(username=context.bot.username or "")
    await say(update.effective_message, context.bot, Chunk(text, shown))


async def on_reset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    adapter = adapter_of(context)
    message = update.effective_message
    async with adapter.chat_locks[message.chat_id]:  # after an answer in progress, not before it
        await adapter.offload.run(adapter.data.reset_conversation, PLATFORM, str(message.chat_id), thread(message))
    done = phrase("reset", await adapter.user_language(update.effective_user))
    await say(message, context.bot, plain(done))


async def on_teach(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/teach QUESTION | ANSWER`` from an admin: a pending learned Q&A, used once approved."""
    message = update.effective_message
    user = update.effective_user
    author = f"{user.full_name} (telegram {user.id})" if user else ""
    adapter = adapter_of(context)
    text = after_command(message.text or "")
    # Learned in the scope of the chat the command was given in.
    result = await adapter.workflow.teach(str(user.id) if user else None, text, author,
                                          adapter.incoming(message, text, mentioned=False))
    if result.outcome is TeachOutcome.SAVED and result.entry is not None:
        text = TEACH_SAVED.format(id=result.entry.id)
    else:
        text = TEACH_REFUSED if result.outcome is TeachOutcome.REFUSED else TEACH_USAGE
    await say(message, context.bot, plain(text), reply=not is_private(message))


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await say(update.effective_message, context.bot, plain(UNKNOWN_COMMAND))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Errors outside an answer (commands, buttons, relaying): logged, the bot keeps serving."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("error while handling update %s", update_id, exc_info=context.error)
