"""Hand-off to a person: escalations opened, relayed, and closed — platform-free.

The core decides *that* a conversation goes to a person (the user asked, clicked
"Talk to a person", or accepted a refusal's offer); adapters decide *where* (a Slack
support channel, a Telegram support group) and do the posting. Agents' replies are kept
and become pending learned Q&A for review (``askdesk kb review``), so the knowledge
base grows from what people answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.language import asks_for_person
from core.messages import IncomingMessage
from core.store import Escalation, Store

TRANSCRIPT_TURNS = 6


@dataclass(frozen=True, slots=True)
class AgentReply:
    """What the adapter relays to the customer."""

    escalation: Escalation
    author: str
    text: str


class HandoffDesk:
    """Opens escalations with a short transcript and records what agents answer."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def transcript(self, message: IncomingMessage) -> str:
        conversation = self.store.conversation(message.platform, message.conversation_id, message.thread_id)
        lines = []
        for turn in self.store.recent_turns(conversation, TRANSCRIPT_TURNS):
            lines.append(f"Customer: {turn.question}")
            lines.append(f"askdesk: {turn.answer}")
        return "\n".join(lines)

    def open(self, message: IncomingMessage, question: str | None = None, turn_id: int | None = None) -> Escalation:
        """A new escalation for this conversation, or the one already open (no duplicates)."""
        existing = self.store.open_escalation_for(message.platform, message.conversation_id, message.thread_id)
        if existing is not None:
            return existing
        if question is None:
            turn = self.store.turn(turn_id) if turn_id else None
            question = turn.question if turn else message.text
        if asks_for_person(question):
            # "I want to talk to a human" says nothing to the agent: use the real question before it.
            question = self._last_real_question(message) or question
        return self.store.open_escalation(
            message.platform, message.conversation_id, message.thread_id, message.user_id,
            message.user_name, question, self.transcript(message), turn_id,
        )

    def _last_real_question(self, message: IncomingMessage) -> str | None:
        conversation = self.store.conversation(message.platform, message.conversation_id, message.thread_id)
        for turn in reversed(self.store.recent_turns(conversation, TRANSCRIPT_TURNS)):
            if not asks_for_person(turn.question):
                return turn.question
        return None

    def forwarding(self, message: IncomingMessage) -> Escalation | None:
        """The open escalation a customer's new message belongs to, else None (the bot answers).

        Once a person has the conversation, the bot does not answer in their place: the
        customer's messages go to the escalation's thread, where the agent reads them. Only
        the escalated customer's own messages in the same conversation (and thread), and only
        once the escalation reached the support team; anyone else in a group is answered as usual.
        """
        if not message.text.strip():
            return None
        escalation = self.store.open_escalation_for(message.platform, message.conversation_id, message.thread_id)
        if escalation is None or not escalation.support_ref:
            return None
        if escalation.user_id and message.user_id and escalation.user_id != message.user_id:
            return None
        return escalation

    def posted(self, escalation: Escalation, support_ref: str) -> None:
        """Remember where the escalation was posted, so agents' replies find their way back."""
        self.store.set_escalation_ref(escalation.id, support_ref)

    def agent_replied(self, support_ref: str, author: str, text: str) -> AgentReply | None:
        """An agent wrote in the escalation's thread: what to relay, or None if it is not one."""
        escalation = self.store.escalation_by_ref(support_ref)
        if escalation is None or escalation.status != "open" or not text.strip():
            return None
        self.store.add_escalation_reply(escalation.id, author, text)
        self.store.add_learned_qa(escalation.question, text, source="escalation", author=author)
        return AgentReply(escalation, author, text.strip())

    def close(self, escalation_id: int, closed_by: str | None) -> Escalation | None:
        """Close it; returns the escalation when this call closed it (a second close returns None)."""
        if not self.store.close_escalation(escalation_id, closed_by):
            return None
        return self.store.escalation(escalation_id)
