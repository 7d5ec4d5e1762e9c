"""Claiming an incoming event once, and forgetting old claims, the same way on every platform.

Platforms redeliver (Slack retries, a Telegram offset not yet confirmed); the first claim of
an event id wins and later ones are dropped. Claims older than the platforms' retry horizon
are pruned from time to time while the bot runs, so the table stays small on every adapter;
answered inbox rows of the same age go with them (for Telegram they are the record of handled
updates; unanswered ones stay until answered).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from core.store import Store
from core.support.offload import StoreThread

log = logging.getLogger(__name__)

#: Slack stops retrying after a few hours and Telegram keeps updates 24 hours: a week is plenty.
EVENT_ID_RETENTION_S = 7 * 24 * 3600
#: How often, at most, old claims are pruned.
PRUNE_EVERY_S = 3600.0


class EventClaims:
    """``await claims.claim(event_id)``: True the first time (answer it), False for a redelivery."""

    def __init__(self, store: Store, platform: str, offload: StoreThread, *,
                 retention_s: float = EVENT_ID_RETENTION_S, prune_every_s: float = PRUNE_EVERY_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.platform = platform
        self.offload = offload
        self.retention_s = retention_s
        self.prune_every_s = prune_every_s
        self.clock = clock
        self._next_prune = 0.0  # the first claim prunes what an earlier run left

    async def claim(self, event_id: str) -> bool:
        return await self.offload.run(self._claim, event_id)

    async def prune(self) -> int:
        """Forget old claims if the last pruning was long enough ago (an adapter calls this for every
        delivery its inbox takes instead of a claim, so pruning never depends on which kind arrives)."""
        if self.clock() < self._next_prune:
            return 0
        return await self.offload.run(self._prune_if_due)

    def _claim(self, event_id: str) -> bool:
        self._prune_if_due()
        return self.store.claim_event(self.platform, event_id)

    def _prune_if_due(self) -> int:
        now = self.clock()
        if now < self._next_prune:
            return 0
        self._next_prune = now + self.prune_every_s
        dropped = self.store.forget_events_before(now - self.retention_s)
        # Telegram's handled updates are kept only as answered inbox rows: they go the same way.
        answered = self.store.inbox_forget_answered_before(now - self.retention_s)
        if dropped or answered:
            log.info("%s: forgot %d handled event ids and %d answered inbox rows older than %.0f days",
                     self.platform, dropped, answered, self.retention_s / 86400)
        return dropped + answered
