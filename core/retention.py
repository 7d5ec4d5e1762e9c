"""Keeping people's data no longer than the operator decided (``ASKDESK_RETENTION_DAYS``).

Purging runs when a bot starts and then every few hours while it serves, so a bot that runs
for months keeps no more than the window; ``askdesk purge`` runs it by hand (e.g. from cron
for the terminal-only use).
"""

from __future__ import annotations

import asyncio
import logging
import time

from core.config import Settings
from core.store import Store

log = logging.getLogger(__name__)

#: How often a serving bot purges; the window is days, so hours of slack are fine.
PURGE_INTERVAL_S = 6 * 3600.0


def purge_expired(store: Store, settings: Settings, now: float | None = None) -> dict[str, int]:
    """Delete what is older than the retention window; nothing when no window is set."""
    if settings.retention_days is None:
        return {}
    cutoff = (time.time() if now is None else now) - settings.retention_days * 86400.0
    counts = store.purge_before(cutoff)
    if any(counts.values()):
        log.info("retention: purged %s", ", ".join(f"{n} {what}" for what, n in counts.items() if n))
    return counts


async def purge_periodically(store: Store, settings: Settings, stop: asyncio.Event,
                             interval: float = PURGE_INTERVAL_S) -> None:
    """Purge now and then every ``interval`` seconds until ``stop`` is set."""
    if settings.retention_days is None:
        return
    while not stop.is_set():
        try:
            await asyncio.to_thread(purge_expired, store, settings)
        except Exception:  # noqa: BLE001 - a failed purge is retried next time, serving goes on
            log.exception("retention: purge failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
