"""The support workflow's steps, written once: what every adapter's buttons and threads call.

:class:`SupportWorkflow` holds the rules; a :class:`core.support.channel.SupportChannel` does
the platform's posting. The rules, the same on Slack and Telegram:

- **Locking**: one lock per conversation. Two quick clicks in one conversation open and post
  one escalation; a slow post for one customer never holds up another's.
- **Language**: the escalated customer's language is :meth:`HandoffDesk.customer_language`
  (the escalated turn, else their profile, else the question); a customer's own new message
  is answered in the language it is written in.
- **Transcripts**: cut once, by :func:`core.support.transcript.clip_transcript`, when opened.
- **A failed support post** closes the escalation as not posted (it is never left open but
  invisible to agents) and the customer is told honestly that no one can take it; asking
  again tries afresh.
- **Agents** are who :class:`core.support.agents.AgentAllowlist` says; replies from anyone else
  are neither relayed nor saved as learned answers.
- **Scopes**: an escalation, and so every agent reply learned from it, and an admin's taught
  Q&A carry the knowledge-base scope of the conversation they came from (``scope_of``), so
  an approved entry goes into that scope's knowledge base only.
- **Storage** runs on the store thread (:class:`core.support.offload.StoreThread`), never on
  the event loop; the assistant's texts come from a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

from core.language import detect_language, phrase
from core.learning import teach
from core.messages import IncomingMessage
from core.store import Escalation, LearnedQA, Store, StoredTurn
from core.support.agents import AgentAllowlist
from core.support.channel import DeliveryFailed, SupportChannel
from core.support.desk import NOT_POSTED, HandoffDesk
from core.support.offload import StoreThread

log = logging.getLogger(__name__)

#: Tells a customer that no one can take the hand-off: ``(language, message) -> text`` (the
#: assistant's :meth:`~core.assistant.Assistant.handoff_unavailable`, with its scope's contacts).
Unavailable = Callable[[str, IncomingMessage | None], str]
#: The knowledge-base scope name of a message (the assistant's :meth:`~core.assistant.Assistant.scope_for`);
#: None for an audience without one.
ScopeOf = Callable[[IncomingMessage], "str | None"]


def scope_names(scope_for: Callable[[IncomingMessage], Any]) -> ScopeOf:
    """A :data:`ScopeOf` from ``Assistant.scope_for`` (which returns the :class:`~core.scopes.Scope`)."""
    def name(message: IncomingMessage) -> str | None:
        scope = scope_for(message)
        return scope.name if scope is not None else None
    return name


class _ConversationLocks:
    """One :class:`asyncio.Lock` per conversation, dropped again when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """A 👍/👎 on a stored turn: whether it changed anything, and whether to offer a person now."""

    turn: StoredTurn
    positive: bool
    changed: bool

    @property
    def language(self) -> str:
        return self.turn.language

    @property
    def offer_person(self) -> bool:
        return not self.positive or self.turn.refused


class RelayOutcome(str, Enum):
    RELAYED = "relayed"
    NOT_AGENT = "not_agent"  # the writer is not on the agents' allowlist: ignored
    NOT_ESCALATION = "not_escalation"  # chatter in the support place
    CLOSED = "closed"  # a late reply to a closed escalation
    EMPTY = "empty"
    UNDELIVERED = "undelivered"  # the platform refused the post to the customer


@dataclass(frozen=True, slots=True)
class RelayResult:
    outcome: RelayOutcome
    escalation: Escalation | None = None
    reason: str | None = None  # UNDELIVERED: what the platform said


class TeachOutcome(str, Enum):
    SAVED = "saved"
    REFUSED = "refused"  # not an admin
    USAGE = "usage"  # not "QUESTION | ANSWER"


@dataclass(frozen=True, slots=True)
class TeachResult:
    outcome: TeachOutcome
    entry: LearnedQA | None = None


class SupportWorkflow:
    """Feedback, escalate, forward, relay, close and teach for one platform's adapter.

    ``enabled`` is whether a support place is configured at all (else every hand-off is
    answered honestly as unavailable); ``admins`` may teach and close any escalation.
    """

    def __init__(self, platform: str, store: Store, channel: SupportChannel, *, enabled: bool,
                 agents: AgentAllowlist, admins: frozenset[str], unavailable: Unavailable,
                 offload: StoreThread, scope_of: ScopeOf | None = None) -> None:
        self.platform = platform
        self.store = store
        self.channel = channel
        self.enabled = enabled
        self.agents = agents
        self.admins = frozenset(str(a) for a in admins)
        self.desk = HandoffDesk(store)
        self._unavailable = unavailable
        self.offload = offload
        self._scope_of = scope_of
        self.locks = _ConversationLocks()

    def scope_of(self, message: IncomingMessage | None, scope: str | None = None) -> str | None:
        """``scope`` when the caller knows it (the answer's), else the one ``message`` resolves to."""
        if scope is not None or message is None or self._scope_of is None:
            return scope
        return self._scope_of(message)

    # ---- who may do what ---------------------------------------------------------------------
    async def is_agent(self, user_id: str | None) -> bool:
        return bool(user_id) and (str(user_id) in self.admins or await self.agents.allows(str(user_id)))

    def is_admin(self, user_id: str | None) -> bool:
        return bool(user_id) and str(user_id) in self.admins

    # ---- feedback ------------------------------------------------------------------------
    async def feedback(self, turn_id: int, user_id: str, positive: bool, conversation_id: str,
                       thread_id: str | None) -> FeedbackResult | None:
        """Record a 👍/👎 once per user; None when the button names a turn of another conversation."""
        turn = await self.offload.run(self.desk.turn_in_conversation, turn_id, self.platform, conversation_id,
                                      thread_id)
        if turn is None:
            log.info("%s: feedback on a turn outside its conversation ignored", self.platform)
            return None
        changed = await self.offload.run(self.store.record_feedback, turn.id, user_id, 1 if positive else -1)
        log.info("%s: feedback %s on turn %s (%s)", self.platform, "+1" if positive else "-1", turn.id,
                 "recorded" if changed else "repeated")
        return FeedbackResult(turn, positive, changed)

    async def turn_in_conversation(self, turn_id: int, conversation_id: str, thread_id: str | None) -> StoredTurn | None:
        return await self.offload.run(self.desk.turn_in_conversation, turn_id, self.platform, conversation_id,
                                      thread_id)

    # ---- hand-off ------------------------------------------------------------------------
    async def unavailable(self, language: str, message: IncomingMessage | None = None) -> str:
        return await asyncio.to_thread(self._unavailable, language, message)

    async def escalate(self, message: IncomingMessage, language: str, *, turn_id: int | None = None,
                       question: str | None = None, where: str | None = None, scope: str | None = None) -> str:
        """Open (or reuse) the conversation's escalation and post it; returns what to tell the customer.

        ``scope``: the knowledge-base scope of the answer escalated, if known; else resolved from ``message``."""
        if not self.enabled:
            log.info("%s: hand-off asked for, but no support place is configured", self.platform)
            return await self.unavailable(language, message)
        key = (self.platform, message.conversation_id, message.thread_id or "")
        async with self.locks.hold(key):
            scope = self.scope_of(message, scope)
            escalation = await self.offload.run(self.desk.open, message, question, turn_id, scope)
            if escalation.support_ref:
                log.info("%s: escalation #%s already with the support team", self.platform, escalation.id)
                return phrase("handoff", language)
            try:
                support_ref = await self.channel.post_escalation(escalation, where)
            except Exception as exc:  # noqa: BLE001 - refused or unreachable: the same rule either way
                # Never open but invisible: the team cannot see it, so it is closed and the customer told.
                reason = exc.reason if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__}: {exc}"
                log.warning("%s: could not post escalation #%s to the support team: %s", self.platform,
                            escalation.id, reason, exc_info=not isinstance(exc, DeliveryFailed))
                await self.offload.run(self.desk.close, escalation.id, NOT_POSTED)
                return await self.unavailable(language, message)
            await self.offload.run(self.desk.posted, escalation, support_ref)
        log.info("%s: escalation #%s posted to the support team", self.platform, escalation.id)
        return phrase("handoff", language)

    async def take_over(self, message: IncomingMessage) -> str | None:
        """A customer wrote while a person has their conversation: forward it and return what to tell
        them; None when no open escalation takes the message (the bot answers it)."""
        escalation = await self.offload.run(self.desk.forwarding, message)
        if escalation is None:
            return None
        language = detect_language(message.text)
        try:
            await self.channel.post_under(escalation, message.user_name, message.text)
        except DeliveryFailed as exc:
            log.warning("%s: could not forward to escalation #%s: %s", self.platform, escalation.id, exc.reason)
            return await self.unavailable(language, message)
        log.info("%s: customer message forwarded to escalation #%s", self.platform, escalation.id)
        return phrase("forwarded", language)

    async def escalation_at(self, support_ref: str) -> Escalation | None:
        """The escalation posted at ``support_ref`` (open or closed), else None."""
        return await self.offload.run(self.store.escalation_by_ref, support_ref)

    async def escalation(self, escalation_id: int) -> Escalation | None:
        return await self.offload.run(self.store.escalation, escalation_id)

    async def relay(self, escalation: Escalation | None, agent_id: str | None, agent_name: str | None,
                    text: str, *, formatted: str | None = None) -> RelayResult:
        """An agent wrote under an escalation's post: send it to the customer, then keep it.

        ``text`` is the reply as plain text (what is kept and learned); ``formatted`` the same reply
        in the platform's markup, if it has one, for the channel to show (see ``send_to_customer``)."""
        if escalation is None:
            return RelayResult(RelayOutcome.NOT_ESCALATION)
        if not await self.is_agent(agent_id):
            log.debug("%s: reply by %s in escalation #%s not relayed: not on the support agents' allowlist",
                      self.platform, agent_id, escalation.id)
            return RelayResult(RelayOutcome.NOT_AGENT, escalation)
        fresh = await self.escalation(escalation.id)
        if fresh is None or fresh.status != "open":
            return RelayResult(RelayOutcome.CLOSED, escalation)
        body = text.strip()
        if not body:
            return RelayResult(RelayOutcome.EMPTY, fresh)
        author = agent_name or str(agent_id)
        language = await self.offload.run(self.desk.customer_language, fresh)
        heading = phrase("agent_reply", language, name=author)
        try:
            await self.channel.send_to_customer(fresh, body, heading=heading, formatted=formatted)
        except DeliveryFailed as exc:
            log.warning("%s: could not relay to escalation #%s's customer: %s", self.platform, fresh.id, exc.reason)
            return RelayResult(RelayOutcome.UNDELIVERED, fresh, exc.reason)
        await self.offload.run(self.desk.record_reply, fresh, author, body)
        log.info("%s: agent reply relayed for escalation #%s", self.platform, fresh.id)
        return RelayResult(RelayOutcome.RELAYED, fresh)

    async def close(self, escalation_id: int, closed_by: str) -> Escalation | None:
        """Close it (once), tell the customer, mark the post; None when it was not open."""
        escalation = await self.offload.run(self.desk.close, escalation_id, closed_by)
        if escalation is None:
            return None
        language = await self.offload.run(self.desk.customer_language, escalation)
        try:
            await self.channel.send_to_customer(escalation, phrase("escalation_closed", language))
        except DeliveryFailed as exc:
            log.warning("%s: could not tell escalation #%s's customer it is closed: %s", self.platform,
                        escalation.id, exc.reason)
        if escalation.support_ref:
            try:
                await self.channel.mark_closed(escalation, closed_by)
            except DeliveryFailed as exc:  # the customer was told; the post is cosmetic
                log.warning("%s: could not mark escalation #%s's post closed: %s", self.platform, escalation.id,
                            exc.reason)
        log.info("%s: escalation #%s closed", self.platform, escalation.id)
        return escalation

    # ---- teach ---------------------------------------------------------------------------
    async def teach(self, user_id: str | None, text: str, author: str,
                    message: IncomingMessage | None = None) -> TeachResult:
        """``QUESTION | ANSWER`` from an admin becomes a pending learned Q&A (used once approved).

        ``message`` is the command as a message: the entry belongs to the scope it resolves to."""
        if not self.is_admin(user_id):
            log.info("%s: teach refused for non-admin %s", self.platform, user_id)
            return TeachResult(TeachOutcome.REFUSED)
        question, bar, answer = text.partition("|")
        if not bar or not question.strip() or not answer.strip():
            return TeachResult(TeachOutcome.USAGE)
        scope = self.scope_of(message)
        entry = await self.offload.run(teach, self.store, question.strip(), answer.strip(), author, self.platform,
                                       scope)
        log.info("%s: learned Q&A #%s saved for review", self.platform, entry.id)
        return TeachResult(TeachOutcome.SAVED, entry)
