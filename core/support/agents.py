"""Who counts as a support agent: an explicit allowlist, never "whoever is in the channel".

A reply in an escalation's thread is relayed to the customer as "Reply from our support team"
and saved as a pending learned answer, so it must come from someone the operator named. The
allowlist holds platform user ids and, on Slack, the members of a user group (looked up by the
adapter and refreshed now and then, so joining or leaving the group takes effect without a
restart). Nothing configured means nobody's replies are relayed, and the adapter warns at
start-up; ``*`` is the explicit opt-in to the old rule ("any member of the support channel").
Admins always count as agents.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

#: The allowlist value that lets every member of the support channel or group act as an agent.
ANY_MEMBER = "*"
#: How long a user group's members are trusted before they are looked up again.
GROUP_REFRESH_S = 300.0

GroupMembers = Callable[[], Awaitable[Iterable[str]]]


def parse_ids(text: str | None) -> tuple[frozenset[str], bool]:
    """``"U1, U2"`` → ({U1, U2}, False); ``"*"`` → (∅, True). Commas or spaces separate ids."""
    parts = [part for part in re.split(r"[\s,]+", text or "") if part]
    return frozenset(p for p in parts if p != ANY_MEMBER), ANY_MEMBER in parts


class AgentAllowlist:
    """Decides whether a user's reply in the support place is an agent's (relayed) or not (ignored)."""

    def __init__(self, user_ids: Iterable[str] = (), *, any_member: bool = False,
                 group_members: GroupMembers | None = None, refresh_s: float = GROUP_REFRESH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.user_ids = frozenset(str(u) for u in user_ids)
        self.any_member = any_member
        self._group_members = group_members
        self._refresh_s = refresh_s
        self._clock = clock
        self._group: frozenset[str] = frozenset()
        self._group_until = float("-inf")
        self._refreshing = asyncio.Lock()

    @property
    def configured(self) -> bool:
        """Whether anyone at all can act as an agent."""
        return self.any_member or bool(self.user_ids) or self._group_members is not None

    def warn_if_unset(self, platform: str, settings_hint: str) -> None:
        """Say at start-up why agents' replies will not be relayed, or that anyone's will."""
        if not self.configured:
            log.warning("%s: no support agents are configured (%s): replies in escalations are not relayed to "
                        "customers", platform, settings_hint)
        elif self.any_member:
            log.warning("%s: every member of the support channel counts as a support agent (%s is '*'); "
                        "name the agents to stop others' replies reaching customers", platform, settings_hint)

    async def allows(self, user_id: str | None) -> bool:
        if not user_id:
            return False
        if self.any_member or user_id in self.user_ids:
            return True
        return user_id in await self._group_ids()

    async def _group_ids(self) -> frozenset[str]:
        if self._group_members is None:
            return frozenset()
        if self._clock() < self._group_until:
            return self._group
        async with self._refreshing:  # replies arriving together wait for one lookup, not one each
            now = self._clock()
            if now >= self._group_until:
                try:
                    self._group = frozenset(str(u) for u in await self._group_members())
                except Exception:  # noqa: BLE001 - keep the members known so far; try again later
                    log.warning("support agents' user group could not be read; using the members known so far",
                                exc_info=True)
                self._group_until = now + self._refresh_s
        return self._group
