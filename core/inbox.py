"""At-least-once answering: every accepted question is stored before it is acknowledged.

The platforms retry or confirm deliveries on their own schedule (Slack retries an event it
got no 200 for; Telegram forgets an update once the next ``getUpdates`` moves past it), so
the only safe moment to say "received" is after the question is on disk. From then on:

- the process that accepted a question holds a *lease* on it and renews it while answering;
- the reply's first message is remembered (``reply_ref``), so answering again after a crash
  edits that message instead of posting a second one;
- a question is marked answered only after its reply is posted;
- a graceful stop releases the leases of what it could not finish, and any process (the
  restarted one, or another worker) picks up questions whose lease ran out.

The class is platform-free; each adapter turns an :class:`InboxItem`'s payload back into its
own event and answers it the usual way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from core.store import ACCEPT_NEW, ACCEPT_TAKEN_OVER, InboxItem, Store

log = logging.getLogger(__name__)

#: A lease must outlive the longest answer between two renewals; renewals run every third of it.
LEASE_S = 60.0
#: After this many tries a question is answered with an apology instead of being tried again,
#: so one question that crashes the process cannot crash every restart.
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What :meth:`Inbox.accept` decided for a delivery."""

    outcome: str  # "new", "taken_over", "in_progress" or "answered"

    @property
    def answer_now(self) -> bool:
        """True when this process must answer it (first delivery, or a dead process's question)."""
        return self.outcome in (ACCEPT_NEW, ACCEPT_TAKEN_OVER)


def worker_id() -> str:
    """Unique per process start: a restarted process must not mistake old leases for its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Inbox:
    """One platform's accepted questions in the store, leased to this process while it answers."""

    def __init__(self, store: Store, platform: str, *, lease_s: float = LEASE_S,
                 max_attempts: int = MAX_ATTEMPTS, owner: str | None = None) -> None:
        self.store = store
        self.platform = platform
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.owner = owner or worker_id()
        self._answering: set[str] = set()

    # ---- the adapter's calls, in the order a question goes through them --------------------
    def accept(self, event_id: str, payload: dict[str, Any], user_id: str | None = None) -> Acceptance:
        """Store a delivered question (call before acknowledging the delivery)."""
        outcome = self.store.inbox_accept(self.platform, event_id, payload, user_id, self.owner, self.lease_s)
        if outcome in (ACCEPT_NEW, ACCEPT_TAKEN_OVER):
            self._answering.add(event_id)
        if outcome == ACCEPT_TAKEN_OVER:
            log.info("%s: %s redelivered after its process stopped; answering it here", self.platform, event_id)
        return Acceptance(outcome)

    def reply_ref(self, event_id: str) -> str | None:
        """The message already posted for this question by an earlier try, if any."""
        item = self.store.inbox_item(self.platform, event_id)
        return item.reply_ref if item else None

    def replied(self, event_id: str, reply_ref: str) -> None:
        """The first message of the reply exists (store it before posting the rest)."""
        self.store.inbox_set_reply(self.platform, event_id, reply_ref)

    def done(self, event_id: str) -> None:
        """The whole reply is posted."""
        self.store.inbox_done(self.platform, event_id)
        self._answering.discard(event_id)

    def abandon(self, event_id: str) -> None:
        """Answering failed before a reply: stop renewing, so the lease runs out and it is retried."""
        self._answering.discard(event_id)

    def exhausted(self, item: InboxItem) -> bool:
        """Tried too often: the adapter apologises instead of answering again."""
        return item.attempts > self.max_attempts

    # ---- leases ------------------------------------------------------------------------------
    def due(self, limit: int = 50) -> list[InboxItem]:
        """Lease questions nobody is answering any more (their process stopped) to this process."""
        items = self.store.inbox_lease_due(self.platform, self.owner, self.lease_s, limit)
        self._answering.update(item.event_id for item in items)
        return items

    def renew(self) -> int:
        """Keep the leases of the questions this process is still answering."""
        answering = list(self._answering)
        return self.store.inbox_renew(self.platform, answering, self.owner, self.lease_s) if answering else 0

    def release(self) -> int:
        """Graceful stop: what is not finished goes to the next process at once, not after the lease."""
        released = self.store.inbox_release(self.platform, self.owner)
        self._answering.clear()
        if released:
            log.warning("%s: %d unanswered question(s) kept for the next start", self.platform, released)
        return released

    @property
    def answering(self) -> int:
        return len(self._answering)

    async def run(self, answer: Callable[[InboxItem], Awaitable[None]], stop: asyncio.Event, *,
                  spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
                  interval: float | None = None) -> None:
        """Renew this process's leases and answer questions left by stopped processes, until ``stop``.

        ``answer`` is the adapter's resume path; it must end with :meth:`done` (or leave the
        question for a later try by raising). ``spawn`` runs it as the adapter's own background
        work, so the adapter's drain waits for resumed questions too.
        """
        tasks: set[asyncio.Task[None]] = set()

        def keep(work: Coroutine[Any, Any, None]) -> None:
            task = asyncio.ensure_future(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        spawn = spawn or keep
        interval = interval if interval is not None else self.lease_s / 3
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.renew)
                for item in await asyncio.to_thread(self.due):
                    if stop.is_set():
                        break
                    spawn(self._resume(answer, item))
            except Exception:  # noqa: BLE001 - a database hiccup must not end the loop
                log.exception("%s: inbox maintenance failed; retrying", self.platform)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass

    async def _resume(self, answer: Callable[[InboxItem], Awaitable[None]], item: InboxItem) -> None:
        try:
            await answer(item)
        except Exception:  # noqa: BLE001 - left pending: the lease runs out and it is tried again
            log.exception("%s: answering queued question %s failed", self.platform, item.event_id)
            self.abandon(item.event_id)
