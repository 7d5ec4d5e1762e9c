"""Fair turns for answering: one busy user cannot starve everyone else.

A single semaphore serves questions first come, first served, so someone who sends a hundred
direct messages holds the whole bot until they are all answered. Here every user has their
own queue, free slots go round-robin between users with something waiting, and each user
may have only a few questions running or waiting at once and only so many per minute (a
leaky bucket from aiolimiter, the library PTB's rate limiter is built on). Beyond the limits
the question is turned away at once with a polite reason, so the adapter can say so instead
of leaving the person waiting in silence.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from core.config import Settings
from core.errors import AskdeskError

BUSY = "busy"  # everyone's queue is full
SLOW_DOWN = "slow_down"  # this user has too many questions waiting, or asks too fast

#: Idle per-user rate limiters are dropped once there are this many, so memory stays bounded.
MAX_TRACKED_USERS = 10_000


#: A user turned away again within this many seconds is not told again in words: someone who pastes
#: a hundred questions gets one "please ask again" reply, not eighty-eight (the adapters mark the
#: others, e.g. with a reaction, so none looks answered).
NOTICE_WINDOW_S = 60.0


#: Questions turned away in this process, by (reason, told in words); read by core.metrics on scrape.
TURNED_AWAY: Counter[tuple[str, bool]] = Counter()


class Busy(AskdeskError):
    """The question is not queued; ``reason`` is the phrase key to answer with (busy, slow_down).

    ``tell`` is False when this user was already told within :data:`NOTICE_WINDOW_S`.
    """

    def __init__(self, reason: str, detail: str, tell: bool = True) -> None:
        super().__init__(detail)
        self.reason = reason
        self.tell = tell


@dataclass(frozen=True, slots=True)
class Limits:
    """How many questions run and wait, overall and per user (see ``core/config.py``)."""

    slots: int = 8
    max_waiting: int = 100
    per_user_active: int = 1
    per_user_waiting: int = 5
    per_user_per_minute: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            slots=settings.max_concurrent_answers, max_waiting=settings.max_waiting_questions,
            per_user_active=settings.per_user_concurrent, per_user_waiting=settings.per_user_waiting,
            per_user_per_minute=settings.per_user_per_minute,
        )


class FairQueue:
    """Round-robin admission to a fixed number of answering slots, with per-user limits.

    Must be used from one event loop (the adapter's); it is not thread-safe and need not be.
    """

    def __init__(self, limits: Limits = Limits(), clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._told: dict[str, float] = {}  # when each user was last told "please ask again"
        self._active: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._held: dict[str, int] = {}  # admitted, not yet asking for a slot (see ticket())
        self._running = 0
        self._rates: dict[str, AsyncLimiter] = {}
        self._served: dict[str, int] = {}  # when each user last got a slot (a counter, not a clock)
        self._tick = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values()) + sum(self._held.values())

    def waiting_for(self, user: str) -> int:
        return len(self._waiting.get(user, ())) + self._held.get(user, 0)

    @asynccontextmanager
    async def turn(self, user: str) -> AsyncIterator[None]:
        """Wait for this user's turn and hold a slot while answering; raises :class:`Busy` at once
        when the question cannot even be queued."""
        async with self.ticket(user) as ticket:
            async with ticket.turn():
                yield

    @asynccontextmanager
    async def ticket(self, user: str) -> AsyncIterator["Ticket"]:
        """Admit a question now, before it waits behind something else (its chat's answer in
        progress), so that wait counts against the user's and the queue's limits; its turn comes
        with :meth:`Ticket.turn`. Raises :class:`Busy` at once when it cannot be queued."""
        await self._admit(user)
        self._held[user] = self._held.get(user, 0) + 1
        ticket = Ticket(self, user)
        try:
            yield ticket
        finally:
            if not ticket.used:
                self._unhold(user)

    def _unhold(self, user: str) -> None:
        left = self._held.get(user, 1) - 1
        if left:
            self._held[user] = left
        else:
            self._held.pop(user, None)

    @asynccontextmanager
    async def _slot(self, user: str) -> AsyncIterator[None]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(user, deque()).append(future)
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(user)  # granted just before the cancel: give the slot back
            else:
                self._drop_waiting(user, future)
            raise
        try:
            yield
        finally:
            self._release(user)

    async def _admit(self, user: str) -> None:
        limits = self.limits
        mine = self._active.get(user, 0) + self.waiting_for(user)
        if mine >= limits.per_user_active + limits.per_user_waiting:
            raise self._refusal(user, SLOW_DOWN, f"user {user} already has {mine} question(s) running or waiting")
        if self._running >= limits.slots and self.waiting >= limits.max_waiting:
            raise self._refusal(user, BUSY, f"all {limits.slots} slots busy and {self.waiting} question(s) waiting")
        rate = self._rate(user)
        if not rate.has_capacity():
            raise self._refusal(user, SLOW_DOWN, f"user {user} asked more than {limits.per_user_per_minute:g} per minute")
        await rate.acquire()  # immediate: capacity was just checked, and nothing awaits in between

    def _refusal(self, user: str, reason: str, detail: str) -> Busy:
        now = self._clock()
        last = self._told.get(user)
        tell = last is None or now - last >= NOTICE_WINDOW_S
        if tell:
            if len(self._told) >= MAX_TRACKED_USERS:
                self._told = {u: t for u, t in self._told.items() if now - t < NOTICE_WINDOW_S}
            self._told[user] = now
        TURNED_AWAY[(reason, tell)] += 1
        return Busy(reason, detail, tell=tell)

    def _rate(self, user: str) -> AsyncLimiter:
        rate = self._rates.get(user)
        if rate is None:
            if len(self._rates) >= MAX_TRACKED_USERS:
                self._rates = {u: r for u, r in self._rates.items() if not r.has_capacity(r.max_rate)}
            rate = self._rates[user] = AsyncLimiter(self.limits.per_user_per_minute, 60.0)
        return rate

    def _dispatch(self) -> None:
        """Give free slots to waiting users, the one served longest ago first (round robin)."""
        while self._running < self.limits.slots:
            eligible = [u for u in self._waiting if self._active.get(u, 0) < self.limits.per_user_active]
            if not eligible:
                return  # nobody waiting, or everyone waiting is at their own limit
            user = min(eligible, key=lambda u: self._served.get(u, -1))
            queue = self._waiting[user]
            future = queue.popleft()
            if not queue:
                del self._waiting[user]
            self._tick += 1
            self._served[user] = self._tick
            self._active[user] = self._active.get(user, 0) + 1
            self._running += 1
            future.set_result(None)

    def _release(self, user: str) -> None:
        self._running -= 1
        left = self._active.get(user, 1) - 1
        if left:
            self._active[user] = left
        else:
            self._active.pop(user, None)
            if user not in self._waiting and len(self._served) > MAX_TRACKED_USERS:
                self._served.pop(user, None)
        self._dispatch()

    def _drop_waiting(self, user: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._waiting[user]


class Ticket:
    """A question admitted to a :class:`FairQueue` that asks for its slot later, once."""

    def __init__(self, queue: FairQueue, user: str) -> None:
        self._queue = queue
        self._user = user
        self.used = False

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for the slot (round robin) and hold it while answering."""
        if self.used:
            raise RuntimeError("a ticket's turn is taken once")
        self.used = True
        self._queue._unhold(self._user)
        async with self._queue._slot(self._user):
            yield
