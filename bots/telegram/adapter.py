"""What every Telegram handler shares: the assistant, the stores, the support workflow, pacing, chat turns.

One :class:`TelegramAdapter` per Application, kept in ``application.bot_data`` (PTB's place for
application-wide data); a handler finds it with :func:`adapter_of`. The handlers themselves are
modules in :mod:`bots.telegram.handlers`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from telegram import Bot, Message, User
from telegram.constants import ChatType
from telegram.ext import CallbackContext

from bots.telegram.support import TelegramSupportChannel
from core.assistant import Assistant
from core.fairness import FairQueue, Limits
from core.messages import IncomingMessage
from core.store import Store
from core.support import AgentAllowlist, StoreThread, SupportWorkflow, scope_names

PLATFORM = "telegram"
#: The key of the adapter in ``application.bot_data``.
ADAPTER = "askdesk.adapter"


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


def topic(message: Message) -> int | None:
    """The forum topic a message belongs to, so replies stay in it."""
    return message.message_thread_id if message.is_topic_message else None


def thread(message: Message) -> str | None:
    """The conversation's thread for the core: the forum topic, else none (the whole chat)."""
    found = topic(message)
    return str(found) if found else None


def is_private(message: Message) -> bool:
    return message.chat.type == ChatType.PRIVATE


class TelegramAdapter:
    """The assistant, the store (idempotency, conversations), the support workflow and the chats' turns."""

    def __init__(self, assistant: Assistant, store: Store, bot: Bot, options: BotOptions | None = None,
                 support: SupportOptions | None = None, offload: StoreThread | None = None) -> None:
        self.assistant = assistant
        self.store = store  # handled update ids
        # Turns, feedback, profiles and escalations live where the assistant records turns.
        self.data = assistant.store if assistant.store is not None else store
        self.options = options or BotOptions()
        self.support = support or SupportOptions()
        #: Answers within one chat are taken in turn (its context in order, its edits within the limits).
        self.chat_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.fair = FairQueue(Limits.from_settings(assistant.settings))
        #: Every database call of the handlers runs here, never on the event loop.
        self.offload = offload or StoreThread()
        #: Feedback, escalate, forward, relay, close, teach: the core's rules, Telegram's messages.
        self.workflow = SupportWorkflow(
            PLATFORM, self.data, TelegramSupportChannel(bot, self.support.support_chat_id),
            enabled=self.support.support_chat_id is not None, agents=self.support.agents,
            admins=frozenset(str(a) for a in self.support.admin_user_ids),
            unavailable=assistant.handoff_unavailable, offload=self.offload,
            scope_of=scope_names(assistant.scope_for),
        )

    def close(self) -> None:
        """Stop the store thread, closing its database connection."""
        self.offload.call_and_close(self.data.close)

    async def user_language(self, user: User | None) -> str:
        """The language a user last asked in (their profile), else their Telegram app's language."""
        if user is None:
            return "en"
        profile = await self.offload.run(self.data.profile, PLATFORM, str(user.id))
        if profile and profile.language:
            return profile.language
        return "zh" if (user.language_code or "").lower().startswith("zh") else "en"

    def incoming(self, message: Message, question: str, mentioned: bool) -> IncomingMessage:
        """The Telegram message as the core's platform-neutral type (the core keeps the context)."""
        user = message.from_user
        return IncomingMessage(
            text=question,
            platform=PLATFORM,
            conversation_id=str(message.chat_id),
            thread_id=thread(message),
            message_id=str(message.message_id),
            user_id=str(user.id) if user else None,
            user_name=user.first_name if user else None,
            is_direct=is_private(message),
            mentioned_bot=mentioned,
            received_at=message.date,
            chat_type=message.chat.type,  # the knowledge-base scope may depend on it (core.scopes)
        )


def adapter_of(context: CallbackContext) -> TelegramAdapter:  # type: ignore[type-arg]
    """The adapter of the application a handler runs in."""
    return context.application.bot_data[ADAPTER]


__all__ = ["ADAPTER", "PLATFORM", "BotOptions", "SupportOptions", "TelegramAdapter", "adapter_of", "is_private",
           "thread", "topic"]
