"""Fair turns: round-robin between users, per-user limits, a bounded queue with a clear reason."""

from __future__ import annotations

import asyncio

import pytest

from core.fairness import BUSY, SLOW_DOWN, Busy, FairQueue, Limits


async def _ask(queue: FairQueue, user: str, order: list[str], release: asyncio.Event) -> None:
    async with queue.turn(user):
        order.append(user)
        await release.wait()


def test_a_second_user_is_not_starved_by_a_flood():
    async def main() -> list[str]:
        queue = FairQueue(Limits(slots=1, max_waiting=1000, per_user_active=1, per_user_waiting=1000,
                                 per_user_per_minute=10_000))
        order: list[str] = []
        gates = [asyncio.Event() for _ in range(12)]
        tasks = [asyncio.ensure_future(_ask(queue, "flood", order, gates[i])) for i in range(10)]
        await asyncio.sleep(0)
        tasks.append(asyncio.ensure_future(_ask(queue, "other", order, gates[10])))
        await asyncio.sleep(0)
        for gate in gates:  # finish one answer at a time
            gate.set()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(main())
    assert order.index("other") <= 1  # right after the answer already running, not after all ten


def test_round_robin_between_three_users():
    async def main() -> list[str]:
        queue = FairQueue(Limits(slots=1, per_user_waiting=10, per_user_per_minute=1000))
        order: list[str] = []
        go = asyncio.Event()
        tasks = [asyncio.ensure_future(_ask(queue, user, order, go)) for user in "aaabbbccc"]
        await asyncio.sleep(0)  # all queued behind the first
        go.set()
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(main())
    assert order == list("abcabcabc")


def test_per_user_waiting_limit_says_slow_down():
    async def main() -> None:
        queue = FairQueue(Limits(slots=1, per_user_active=1, per_user_waiting=2, per_user_per_minute=1000))
        hold = asyncio.Event()
        tasks = [asyncio.ensure_future(_ask(queue, "u", [], hold)) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(Busy) as busy:
            async with queue.turn("u"):
                pass
        assert busy.value.reason == SLOW_DOWN
        async with asyncio.timeout(1):  # someone else still gets queued
            waiting = asyncio.ensure_future(_ask(queue, "v", [], hold))
            await asyncio.sleep(0)
            assert queue.waiting_for("v") == 1
            hold.set()
            await asyncio.gather(*tasks, waiting)

    asyncio.run(main())


def test_full_queue_says_busy():
    async def main() -> None:
        queue = FairQueue(Limits(slots=1, max_waiting=2, per_user_per_minute=1000))
        hold = asyncio.Event()
        tasks = [asyncio.ensure_future(_ask(queue, f"u{i}", [], hold)) for i in range(3)]
        await asyncio.sleep(0)
        assert queue.running == 1 and queue.waiting == 2
        with pytest.raises(Busy) as busy:
            async with queue.turn("late"):
                pass
        assert busy.value.reason == BUSY
        hold.set()
        await asyncio.gather(*tasks)
        assert queue.running == 0 and queue.waiting == 0

    asyncio.run(main())


def test_rate_limit_per_user():
    async def main() -> None:
        queue = FairQueue(Limits(slots=4, per_user_waiting=100, per_user_per_minute=3))
        for _ in range(3):
            async with queue.turn("fast"):
                pass
        with pytest.raises(Busy) as busy:
            async with queue.turn("fast"):
                pass
        assert busy.value.reason == SLOW_DOWN
        async with queue.turn("someone else"):
            pass

    asyncio.run(main())


def test_a_cancelled_waiter_frees_its_place():
    async def main() -> None:
        queue = FairQueue(Limits(slots=1, per_user_per_minute=1000))
        hold = asyncio.Event()
        first = asyncio.ensure_future(_ask(queue, "a", [], hold))
        second = asyncio.ensure_future(_ask(queue, "b", [], hold))
        await asyncio.sleep(0)
        second.cancel()
        await asyncio.sleep(0)
        assert queue.waiting == 0
        hold.set()
        await first
        assert queue.running == 0

    asyncio.run(main())


def test_a_user_turned_away_again_within_a_minute_is_not_told_again():
    """Someone who pastes a hundred questions gets one "please ask again", not one per message."""
    from core.fairness import NOTICE_WINDOW_S

    now = [0.0]

    async def main() -> list[bool]:
        queue = FairQueue(Limits(slots=1, per_user_active=1, per_user_waiting=0, per_user_per_minute=1000),
                          clock=lambda: now[0])
        hold = asyncio.Event()
        first = asyncio.ensure_future(_ask(queue, "u", [], hold))
        await asyncio.sleep(0)
        told: list[bool] = []
        for at in (1.0, 2.0, NOTICE_WINDOW_S + 1.5):
            now[0] = at
            with pytest.raises(Busy) as busy:
                async with queue.turn("u"):
                    pass
            told.append(busy.value.tell)
        hold.set()
        await first
        return told

    assert asyncio.run(main()) == [True, False, True]


def test_turned_away_questions_are_counted_on_metrics():
    """An operator sees how many were turned away, and how many without a reply in words."""
    from core.metrics import Metrics

    def count(told: str) -> float:
        sample = f'askdesk_turned_away_total{{reason="slow_down",told="{told}"}} '
        lines = [line for line in Metrics().render().decode().splitlines() if line.startswith(sample)]
        return float(lines[0].split()[-1]) if lines else 0.0

    before = count("yes"), count("no")

    async def main() -> None:
        queue = FairQueue(Limits(slots=1, per_user_active=1, per_user_waiting=0, per_user_per_minute=1000))
        hold = asyncio.Event()
        first = asyncio.ensure_future(_ask(queue, "metrics-user", [], hold))
        await asyncio.sleep(0)
        for _ in range(3):
            with pytest.raises(Busy):
                async with queue.turn("metrics-user"):
                    pass
        hold.set()
        await first

    asyncio.run(main())
    assert (count("yes") - before[0], count("no") - before[1]) == (1.0, 2.0)


def test_a_ticket_counts_as_waiting_until_its_turn_and_frees_its_place_if_never_used():
    async def main() -> None:
        queue = FairQueue(Limits(slots=1, per_user_active=1, per_user_waiting=1, per_user_per_minute=1000))
        async with queue.ticket("u") as first, queue.ticket("u"):
            assert queue.waiting_for("u") == 2 and queue.waiting == 2
            with pytest.raises(Busy):  # two admitted already: the limit holds before any turn is asked for
                async with queue.ticket("u"):
                    pass
            async with first.turn():
                assert queue.running == 1 and queue.waiting_for("u") == 1
            with pytest.raises(RuntimeError):
                async with first.turn():
                    pass
        assert queue.waiting == 0 and queue.running == 0  # the unused ticket gave its place back

    asyncio.run(main())
