"""What an adapter implements so the support workflow can reach its platform.

In the spirit of Rasa's ``OutputChannel``: a few verbs, no rules. The workflow decides what
to say and when; the channel renders it (mrkdwn, HTML) and talks to the platform. A channel
raises :class:`DeliveryFailed` when the platform refused a post, so the workflow applies one
rule for failures on every platform.
"""

from __future__ import annotations

from typing import Protocol

from core.store import Escalation


class DeliveryFailed(Exception):
    """The platform did not take a post; ``reason`` is what it said (shown to agents, logged)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SupportChannel(Protocol):
    """The output side of one platform's support workflow."""

    async def post_escalation(self, escalation: Escalation, where: str | None) -> str:
        """Post a new escalation where agents see it; returns its reference (``support_ref``).

        ``where`` names the customer's place for the agents (e.g. a group's title), if known."""

    async def post_under(self, escalation: Escalation, author: str | None, text: str) -> None:
        """Post the escalated customer's new message under the escalation's post."""

    async def send_to_customer(self, escalation: Escalation, text: str, heading: str | None = None, *,
                               formatted: str | None = None) -> None:
        """Send ``text`` into the customer's conversation; ``heading`` (an agent's reply frame) goes first, emphasised.

        ``formatted`` is the same text in the platform's own markup, as an agent wrote it (Slack
        mrkdwn): a channel that has it shows it instead of rendering the plain ``text``."""

    async def mark_closed(self, escalation: Escalation, closed_by: str) -> None:
        """Show on the escalation's post that it is closed (and take its Close button away)."""
