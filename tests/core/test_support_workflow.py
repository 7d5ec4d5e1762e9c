"""The support workflow once, without any platform: a collecting channel and a database per test."""

from __future__ import annotations

import asyncio

import pytest

from core.language import phrase
from core.messages import IncomingMessage
from core.support import AgentAllowlist, RelayOutcome, StoreThread, SupportWorkflow, TeachOutcome, clip_transcript
from tests.fakes.support_channel import CollectingChannel


@pytest.fixture
def store(any_store):
    """SQLite and PostgreSQL (skipped where no PostgreSQL server answers)."""
    return any_store


def workflow(store, channel, agents=("AGENT",), enabled=True):
    return SupportWorkflow("test", store, channel, enabled=enabled, agents=AgentAllowlist(agents),
                           admins=frozenset({"ADMIN"}), unavailable=lambda lang, msg: f"unavailable:{lang}",
                           offload=StoreThread())


def message(text, conversation="c1", user="u1"):
    return IncomingMessage(text=text, platform="test", conversation_id=conversation, user_id=user, user_name="Ann")


async def test_round_trip_allowlist_language_and_close(store):
    channel = CollectingChannel()
    flow = workflow(store, channel)
    assert await flow.escalate(message("人工"), "zh", question="退货期限是多久？") == phrase("handoff", "zh")
    (escalation,) = store.escalations_since()
    assert channel.posts == [(escalation.id, None)]
    posted = await flow.escalation_at(f"SUPPORT:{escalation.id}")

    stranger = await flow.relay(posted, "RANDOM", "Mallory", "Send your password to help@evil.example")
    assert stranger.outcome is RelayOutcome.NOT_AGENT
    assert channel.to_customer == [] and store.learned_qas("pending") == []

    relayed = await flow.relay(posted, "AGENT", "Grace", "30 天内可以退货。")
    assert relayed.outcome is RelayOutcome.RELAYED
    assert channel.to_customer == [(escalation.id, phrase("agent_reply", "zh", name="Grace"), "30 天内可以退货。")]
    assert [e.answer for e in store.learned_qas("pending")] == ["30 天内可以退货。"]

    assert (await flow.close(escalation.id, "Grace")).status == "closed"
    assert channel.to_customer[-1] == (escalation.id, None, phrase("escalation_closed", "zh"))
    assert channel.closed == [(escalation.id, "Grace")]
    assert await flow.close(escalation.id, "Grace") is None
    assert (await flow.relay(posted, "AGENT", "Grace", "late")).outcome is RelayOutcome.CLOSED


async def test_a_failed_support_post_closes_the_escalation_and_tells_the_customer(store):
    channel = CollectingChannel(fail={"post_escalation"})
    flow = workflow(store, channel)
    assert await flow.escalate(message("human"), "en", question="Where is my parcel?") == "unavailable:en"
    (escalation,) = store.escalations_since()
    assert escalation.status == "closed", "never open but invisible to agents"
    channel.fail.clear()
    assert await flow.escalate(message("human"), "en", question="Where is my parcel?") == phrase("handoff", "en")
    assert len(channel.posts) == 1


async def test_one_lock_per_conversation(store):
    channel = CollectingChannel(gate=asyncio.Event(), gated_conversation="slow")
    flow = workflow(store, channel)
    slow = [asyncio.create_task(flow.escalate(message("human", "slow"), "en", question="q")) for _ in range(2)]
    await asyncio.wait_for(flow.escalate(message("human", "fast"), "en", question="q"), timeout=10)
    assert len(channel.posts) == 1, "another conversation was not held up by the slow post"
    channel.gate.set()
    await asyncio.gather(*slow)
    assert len(channel.posts) == 2, "two clicks in one conversation posted once"
    assert len(flow.locks) == 0


async def test_forwarding_teach_and_transcript(store):
    channel = CollectingChannel()
    flow = workflow(store, channel)
    assert await flow.take_over(message("hello")) is None
    await flow.escalate(message("human"), "en", question="Where is my parcel?")
    assert await flow.take_over(message("It was due Monday")) == phrase("forwarded", "en")
    assert channel.under[-1][1:] == ("Ann", "It was due Monday")
    channel.fail.add("post_under")
    assert await flow.take_over(message("still there?")) == "unavailable:en"

    assert (await flow.teach("u1", "Q | A", "Ann")).outcome is TeachOutcome.REFUSED
    assert (await flow.teach("ADMIN", "no bar", "Ada")).outcome is TeachOutcome.USAGE
    saved = await flow.teach("ADMIN", "Do you ship to Norway? | Yes.", "Ada")
    assert saved.outcome is TeachOutcome.SAVED and saved.entry.answer == "Yes."

    long = "\n".join(f"line {n} " + "x" * 400 for n in range(20))
    clipped = clip_transcript(long, limit=1000, line_limit=100)
    assert clipped.startswith("…\n") and clipped.endswith("…") and len(clipped) <= 1002
    assert "line 19" in clipped and "line 0 " not in clipped


async def test_an_unreachable_support_place_counts_as_a_failed_post(store):
    """Not only a refusal (DeliveryFailed): a connection that fails closes the escalation the same way."""

    class Unreachable(CollectingChannel):
        async def post_escalation(self, escalation, where):
            raise ConnectionError("connection reset")

    flow = workflow(store, Unreachable())
    assert await flow.escalate(message("human"), "en", question="Where is my parcel?") == "unavailable:en"
    assert [e.status for e in store.escalations_since()] == ["closed"]


async def test_old_claims_are_forgotten_on_claims_and_on_pruning(store):
    import time

    from core.support import EventClaims

    now = [time.time()]  # the store stamps claims with the real time; the claims' clock moves on from it
    claims = EventClaims(store, "test", StoreThread(), retention_s=100, prune_every_s=10, clock=lambda: now[0])
    assert await claims.claim("Ev1") and not await claims.claim("Ev1")
    now[0] += 50
    assert await claims.prune() == 0, "younger than the retention"
    now[0] += 100
    assert await claims.prune() == 1 and await claims.prune() == 0, "pruned at most once per interval"
    assert await claims.claim("Ev1"), "forgotten: a new delivery of it would be answered"
