"""The support group (``TELEGRAM_SUPPORT_CHAT_ID``): agents' replies to escalations, ``/close``, ``/teach``.

Nothing there is a customer's question. A listed agent's reply to an escalation's post (or to a
customer's message forwarded under it) is relayed to the customer by
:meth:`core.support.SupportWorkflow.relay`; ``/close`` in reply to either closes it. Chatter
among agents and other commands are left alone.
"""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import ContextTypes

from bots.telegram.adapter import adapter_of
from bots.telegram.handlers.commands import on_teach
from bots.telegram.handlers.common import command, plain, replies_to_bot, say
from bots.telegram.render import Chunk
from bots.telegram.support import forwarded_escalation_id
from core.support import RelayOutcome

SUPPORT_HELP = (
    "<b>Support group</b>\n"
    "Escalations from customers arrive here. Reply to an escalation message to answer the customer "
    "(your reply is sent to them, marked as from our support team). Close it with its Close button or "
    "by replying /close to it.\n/teach QUESTION | ANSWER — admins: suggest an answer for review."
)
CLOSE_USAGE = "Reply /close to the escalation message you want to close."
ESCALATION_IS_CLOSED = "Escalation #{id} is closed; your reply was not sent to the customer."
ONLY_TEXT_RELAYED = "Only text replies reach the customer for now; nothing was sent."
NOT_DELIVERED = "Could not deliver your reply to the customer ({reason})."
ALREADY_CLOSED = "Escalation #{id} is already closed."


async def on_support_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In the support group: relay agents' replies to escalations, ``/close``; ignore the rest."""
    workflow = adapter_of(context).workflow
    message = update.effective_message
    bot = context.bot
    asked = command(message.text)
    if asked == "teach":
        await on_teach(update, context)
        return
    if asked == "help":
        await say(message, bot, Chunk(SUPPORT_HELP, re.sub(r"</?b>", "", SUPPORT_HELP)))
        return
    replied = message.reply_to_message
    escalation = None
    if replied is not None and replies_to_bot(message, bot):
        escalation = await workflow.escalation_at(f"{message.chat_id}:{replied.message_id}")
        if escalation is None:  # a reply to a customer's forwarded message answers that message's escalation
            forwarded = forwarded_escalation_id(replied.text)
            escalation = await workflow.escalation(forwarded) if forwarded is not None else None
    agent = message.from_user.first_name if message.from_user else "Support"
    if asked == "close":
        if escalation is None:
            await say(message, bot, plain(CLOSE_USAGE), reply=True)
        elif await workflow.close(escalation.id, agent) is None:
            await say(message, bot, plain(ALREADY_CLOSED.format(id=escalation.id)), reply=True)
        return
    if escalation is None or asked is not None:
        return  # chatter among agents, other commands: not for the customer, not a question
    if not message.text:
        await say(message, bot, plain(ONLY_TEXT_RELAYED), reply=True)
        return
    author = str(message.from_user.id) if message.from_user else None
    result = await workflow.relay(escalation, author, agent, message.text)
    if result.outcome is RelayOutcome.CLOSED:
        await say(message, bot, plain(ESCALATION_IS_CLOSED.format(id=escalation.id)), reply=True)
    elif result.outcome is RelayOutcome.UNDELIVERED:
        await say(message, bot, plain(NOT_DELIVERED.format(reason=result.reason)), reply=True)
    # relayed, or not an agent's reply: nothing to say in the support group
