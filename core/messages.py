"""The common types that cross the adapter boundary.

Every adapter (terminal, Slack, Telegram) turns its platform's event into an
:class:`IncomingMessage` and renders the :class:`Answer` it gets back. Nothing here
knows about any platform; ``platform`` is just a label used for storage and logs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """One earlier exchange in the same conversation, passed as context."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A question as it arrives from any platform."""

    text: str
    platform: str = "terminal"
    conversation_id: str = "local"
    thread_id: str | None = None
    message_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    is_direct: bool = True
    mentioned_bot: bool = False
    received_at: datetime = field(default_factory=_now)
    # Earlier turns that the adapter already knows (e.g. a Slack thread); the store adds its own.
    history: tuple[HistoryTurn, ...] = ()
    # Who is asking, for choosing the knowledge-base scope (core.scopes); None where unknown.
    team_id: str | None = None  # Slack: the workspace the bot is installed in
    enterprise_id: str | None = None  # Slack Enterprise Grid org
    channel_id: str | None = None  # Slack channel id (conversation_id is ``team:channel``)
    user_team_id: str | None = None  # Slack Connect: the asker's own workspace, when not team_id
    shared_channel: bool = False  # Slack: the channel is shared with other organisations
    chat_type: str | None = None  # Telegram: private, group, supergroup or channel

    @property
    def is_external(self) -> bool:
        """A Slack user from another organisation (Slack Connect): never given an internal scope."""
        return bool(self.user_team_id and self.team_id and self.user_team_id != self.team_id)


@dataclass(frozen=True, slots=True)
class Citation:
    """A retrieved passage that the answer relies on."""

    passage_id: str
    title: str
    source: str
    snippet: str
    score: float
    url: str | None = None
    number: int = 0  # the [n] marker used in the answer text

    @property
    def label(self) -> str:
        """Human-readable name for a source list: the title, else the file."""
        return self.title or self.source


@dataclass(frozen=True, slots=True)
class Answer:
    """What the core returns: the text to show, and what it stands on."""

    text: str
    citations: tuple[Citation, ...] = ()
    confidence: float = 0.0
    refused: bool = False
    # How the text was produced: "generated" (checked sentence by sentence), "extractive" (composed
    # from the passages' own sentences), "refusal", or "smalltalk" (greetings, thanks, yes/no).
    # "unscoped": the audience maps to no knowledge base (core.scopes, ``unknown: refuse``).
    mode: Literal["generated", "extractive", "refusal", "smalltalk", "unscoped"] = "generated"
    # Set when verification rejected the generated text; kept for logs and benchmarks.
    rejected_reason: str | None = None
    latency_s: float = 0.0
    # Seconds per pipeline stage (core.timeline.STAGES), in order; empty where none ran.
    stages: tuple[tuple[str, float], ...] = ()
    language: str = "en"  # the language of the reply frame (labels, refusals)
    # The user asked for a person: the adapter opens an escalation instead of showing an answer.
    handoff: bool = False
    # Knowledge-base articles related to the question but not cited, relevant enough to suggest.
    related: tuple[Citation, ...] = ()
    # The stored turn, for feedback buttons and escalations (None when nothing is stored).
    turn_id: int | None = None
    # The knowledge base's own contact details (phone, e-mail), for a hand-off with nobody to take it.
    contact: str | None = None
    # The question's intent when the knowledge base has labelled examples (core.retrieval.classifier).
    intent: str | None = None
    # The knowledge-base scope that answered (core.scopes); None when the audience has none.
    scope: str | None = None
    # Pictures (absolute URLs) of the cited passages, for adapters that can show them; never others.
    images: tuple[str, ...] = ()
    # Nothing may be shown or posted (an unknown audience with ``unknown: ignore``): the adapter
    # sends no reply, no placeholder, no reaction. ``text`` is empty.
    silent: bool = False

    @property
    def offers_person(self) -> bool:
        """Whether the adapter should show a "Talk to a person" choice (never to an unknown audience)."""
        return (self.refused or self.handoff) and self.mode != "unscoped" and not self.silent

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by ``askdesk ask --json``)."""
        data = asdict(self)
        data["citations"] = [asdict(c) for c in self.citations]
        data["related"] = [asdict(c) for c in self.related]
        return data
