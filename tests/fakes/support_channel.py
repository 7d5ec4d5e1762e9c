"""A support channel that collects what the workflow sends, for tests without any platform."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from core.store import Escalation
from core.support import DeliveryFailed


@dataclass
class CollectingChannel:
    """Implements :class:`core.support.SupportChannel`; ``fail`` names verbs that raise DeliveryFailed."""

    posts: list[tuple[int, str | None]] = field(default_factory=list)
    under: list[tuple[int, str | None, str]] = field(default_factory=list)
    to_customer: list[tuple[int, str | None, str]] = field(default_factory=list)
    closed: list[tuple[int, str]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    gate: asyncio.Event | None = None  # post_escalation waits for it (for locking tests)
    gated_conversation: str | None = None

    async def post_escalation(self, escalation: Escalation, where: str | None) -> str:
        if self.gate is not None and escalation.conversation_id == self.gated_conversation:
            await self.gate.wait()
        if "post_escalation" in self.fail:
            raise DeliveryFailed("not_in_channel")
        self.posts.append((escalation.id, where))
        return f"SUPPORT:{escalation.id}"

    async def post_under(self, escalation: Escalation, author: str | None, text: str) -> None:
        if "post_under" in self.fail:
            raise DeliveryFailed("thread_gone")
        self.under.append((escalation.id, author, text))

    async def send_to_customer(self, escalation: Escalation, text: str, heading: str | None = None, *,
                               formatted: str | None = None) -> None:
        if "send_to_customer" in self.fail:
            raise DeliveryFailed("channel_archived")
        self.to_customer.append((escalation.id, heading, text))

    async def mark_closed(self, escalation: Escalation, closed_by: str) -> None:
        self.closed.append((escalation.id, closed_by))
