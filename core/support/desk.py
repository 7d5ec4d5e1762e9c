"""The support workflow's records: escalations opened, found, replied to and closed (blocking calls).

Synchronous on purpose: :class:`core.support.workflow.SupportWorkflow` runs these on the store
thread. Agents' replies are kept and become pending learned Q&A for review (``askdesk kb
review``), so the knowledge base grows from what people answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.language import asks_for_person, detect_language
from core.messages import IncomingMessage
from core.store import Escalation, Store, StoredTurn
from core.support.transcript import clip_transcript

TRANSCRIPT_TURNS = 6
#: ``closed_by`` of an escalation the support team never saw (its post failed).
NOT_POSTED = "askdesk: not posted"


@dataclass(frozen=True, slots=True)
class AgentReply:
    """An agent's reply that reached the customer."""

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
        return clip_transcript("\n".join(lines))

    def open(self, message: IncomingMessage, question: str | None = None, turn_id: int | None = None,
             scope: str | None = None) -> Escalation:
        """A new escalation for this conversation, or the one already open (no duplicates).

        ``scope`` is the knowledge-base scope of the conversation: what agents reply is learned there."""
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
            message.user_name, question, self.transcript(message), turn_id, scope=scope,
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

    def record_reply(self, escalation: Escalation, author: str, text: str) -> AgentReply:
        """The agent's reply reached the customer: keep it, and offer it for the knowledge base."""
        self.store.add_escalation_reply(escalation.id, author, text)
        # Learned in the escalated conversation's scope: approved into that knowledge base only.
        self.store.add_learned_qa(escalation.question, text, source="escalation", author=author,
                                  scope=escalation.scope)
        return AgentReply(escalation, author, text)

    def agent_replied(self, support_ref: str, author: str, text: str) -> AgentReply | None:
        """An agent wrote in the escalation's thread: what to relay, or None if it is not one (recorded)."""
        escalation = self.store.escalation_by_ref(support_ref)
        if escalation is None or escalation.status != "open" or not text.strip():
            return None
        return self.record_reply(escalation, author, text.strip())

    def close(self, escalation_id: int, closed_by: str | None) -> Escalation | None:
        """Close it; returns the escalation when this call closed it (a second close returns None)."""
        if not self.store.close_escalation(escalation_id, closed_by):
            return None
        return self.store.escalation(escalation_id)

    def customer_language(self, escalation: Escalation) -> str:
        """The one rule for the escalated customer's language: the escalated turn's, else their
        profile's, else the language of the question itself."""
        turn = self.store.turn(escalation.turn_id) if escalation.turn_id else None
        if turn is not None and turn.language:
            return turn.language
        if escalation.user_id:
            profile = self.store.profile(escalation.platform, escalation.user_id)
            if profile is not None and profile.language:
                return profile.language
        return detect_language(escalation.question)

    def turn_in_conversation(self, turn_id: int, platform: str, conversation_id: str,
                             thread_id: str | None) -> StoredTurn | None:
        """The stored turn a button names, only if it belongs to the conversation it was clicked in."""
        turn = self.store.turn(turn_id)
        if turn is None:
            return None
        return turn if turn.conversation == self.store.conversation(platform, conversation_id, thread_id) else None
