"""At-least-once answering in the store: accept before ack, leases, take-over after a crash.

On both backends; several processes on one PostgreSQL database: ``tests/core/test_store.py``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time

import pytest

from core.inbox import Inbox
from core.store import Store


@pytest.fixture()
def store(any_store) -> Store:
    """Each test runs on SQLite and on PostgreSQL (skipped where no PostgreSQL server answers)."""
    return any_store


def test_a_question_is_answered_once_across_redeliveries(store):
    inbox = Inbox(store, "slack")
    assert inbox.accept("Ev1", {"text": "hi"}, "U1").outcome == "new"
    assert not inbox.accept("Ev1", {"text": "hi"}, "U1").answer_now  # Slack's retry while answering
    inbox.replied("Ev1", "C1:1700000000.1")
    inbox.done("Ev1")
    again = inbox.accept("Ev1", {"text": "hi"}, "U1")
    assert again.outcome == "answered" and not again.answer_now
    item = store.inbox_item("slack", "Ev1")
    assert item.status == "answered" and item.payload == {}  # the text is not kept once answered
    assert item.reply_ref == "C1:1700000000.1"


def test_a_dead_processs_question_is_taken_over_with_its_reply(store):
    dead = Inbox(store, "telegram", lease_s=0.05)
    dead.accept("42", {"update_id": 42}, "7")
    dead.replied("42", "100:5")  # it had posted the first message, then died
    time.sleep(0.06)
    alive = Inbox(store, "telegram")
    (item,) = alive.due()
    assert item.event_id == "42" and item.payload == {"update_id": 42} and item.attempts == 2
    assert item.reply_ref == "100:5"  # the resume edits this message instead of posting a second
    assert alive.due() == []  # leased now: nobody else takes it
    assert not Inbox(store, "telegram").accept("42", {}, "7").answer_now


def test_a_redelivery_after_the_lease_ran_out_is_answered(store):
    Inbox(store, "slack", lease_s=0.01).accept("Ev2", {"n": 1})
    time.sleep(0.02)
    assert Inbox(store, "slack").accept("Ev2", {"n": 1}).outcome == "taken_over"


def test_renewed_leases_are_not_taken_over(store):
    busy = Inbox(store, "slack", lease_s=0.2)
    busy.accept("Ev3", {})
    for _ in range(3):
        time.sleep(0.1)
        assert busy.renew() == 1
    assert Inbox(store, "slack").due() == []


def test_graceful_release_hands_questions_over_at_once(store):
    stopping = Inbox(store, "slack", lease_s=600)
    stopping.accept("Ev4", {"q": 1})
    stopping.accept("Ev5", {"q": 2})
    stopping.done("Ev5")
    assert stopping.release() == 1
    assert [i.event_id for i in Inbox(store, "slack").due()] == ["Ev4"]
    assert store.inbox_pending("slack") == 1


def test_platforms_do_not_share_event_ids(store):
    assert Inbox(store, "slack").accept("1", {}).answer_now
    assert Inbox(store, "telegram").accept("1", {}).answer_now


def test_exhausted_questions_are_recognised(store):
    inbox = Inbox(store, "slack", lease_s=0.0, max_attempts=2)
    inbox.accept("Ev6", {})
    inbox.due()
    (item,) = inbox.due()
    assert item.attempts == 3 and inbox.exhausted(item)


def test_run_resumes_and_renews_until_stopped(store):
    Inbox(store, "slack", lease_s=0.0).accept("Ev7", {"text": "left over"})
    inbox = Inbox(store, "slack", lease_s=30)
    answered: list[str] = []

    async def answer(item):
        answered.append(item.payload["text"])
        inbox.done(item.event_id)

    async def main():
        stop = asyncio.Event()
        runner = asyncio.ensure_future(inbox.run(answer, stop, interval=0.01))
        for _ in range(200):
            if answered:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(runner, 5)

    asyncio.run(main())
    assert answered == ["left over"]
    assert store.inbox_pending() == 0


def test_a_failed_resume_is_retried_later(store):
    Inbox(store, "slack", lease_s=0.0).accept("Ev8", {})
    inbox = Inbox(store, "slack", lease_s=0.05)
    tries: list[int] = []

    async def answer(item):
        tries.append(item.attempts)
        if len(tries) == 1:
            raise RuntimeError("platform down")
        inbox.done(item.event_id)

    async def main():
        stop = asyncio.Event()
        runner = asyncio.ensure_future(inbox.run(answer, stop, interval=0.02))
        for _ in range(300):
            if len(tries) >= 2:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(runner, 5)

    asyncio.run(main())
    assert tries[:2] == [2, 3] and store.inbox_pending() == 0


def _accept_forever(path: str, ready) -> None:
    store = Store(path)
    inbox = Inbox(store, "slack")
    n = 0
    while True:
        inbox.accept(f"K{n}", {"n": n})
        n += 1
        if n == 20:
            ready.set()


def test_sigkill_while_writing_keeps_the_database_whole(tmp_path):
    path = str(tmp_path / "askdesk.db")
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    for _ in range(3):
        ready = ctx.Event()
        writer = ctx.Process(target=_accept_forever, args=(path, ready))
        writer.start()
        assert ready.wait(30)
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        store = Store(path)
        assert store.integrity_ok()
        store.close()
