"""Conversations that go somewhere, against the fake Slack: 👍/👎, hand-off to a person and back,
follow-ups in a thread, a Chinese reply frame, and ``/askdesk teach``.

The real Bolt app and the real (quick) assistant; the bot and the assistant share the
test's database, as in ``askdesk serve slack``.
"""

from __future__ import annotations

from typing import Any

from bots.slack.blocks import ACTION_CLOSE, ACTION_DOWN, ACTION_PERSON, ACTION_UP, block_texts
from core.language import phrase
from tests.bots.slack.conftest import RunningBot, start_bot
from tests.fakes.slack_api import (
    BOT_USER,
    FakeSlack,
    block_action,
    button_value,
    channel_message,
    direct_message,
    mention,
    slash_command,
)

SUPPORT = "C0SUPPORT"
GIFT_CARD_REFUNDS = "https://help.northwindgoods.example/gift-cards/gift-card-refunds"


def answered(fake: FakeSlack, ts: str):
    return [c for c in fake.calls_to("reactions.remove") if c.args.get("timestamp") == ts]


def posts_to(fake: FakeSlack, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
    """The bot's messages in a channel (and thread), oldest first, as they look now."""
    found = [m for (ch, _), m in fake.messages.items()
             if ch == channel and m.get("user") == BOT_USER and (thread_ts is None or m.get("thread_ts") == thread_ts)]
    return sorted(found, key=lambda m: float(m["ts"]))


async def ask(bot: RunningBot, event: dict[str, Any]) -> None:
    await bot.event(event)
    await bot.fake.wait_for(lambda: answered(bot.fake, event["ts"]), what=f"the answer to {event['text']!r}")


async def test_feedback_is_stored_once_per_user_and_thumbs_down_offers_a_person(running, fake):
    await ask(running, mention("How long do I have to return an item?", ts="1700000201.000100"))
    (answer,) = posts_to(fake, "C0GENERAL", "1700000201.000100")
    assert "*Sources*" in answer["text"]
    labels = block_texts(answer["blocks"])
    assert "👍" in labels and "👎" in labels

    # Alice clicks 👍 twice: one record, one thank-you.
    for _ in range(2):
        status, _, _ = await running.click(block_action(fake, "C0GENERAL", answer["ts"], ACTION_UP, user="UALICE"))
        assert status == 200
    await fake.wait_for(lambda: fake.ephemerals, what="the thank-you")
    assert await running.bot.drain(timeout=10)
    (turn,) = running.store.turns_since()
    assert running.store.feedback_since() == [(turn.id, "UALICE", 1)]
    (thanks,) = fake.ephemerals
    assert (thanks["user"], thanks["channel"], thanks["thread_ts"]) == ("UALICE", "C0GENERAL", "1700000201.000100")
    assert thanks["text"] == "Thanks for your feedback!"

    # Bob clicks 👎 (twice): his own record, and an offer to talk to a person.
    for _ in range(2):
        await running.click(block_action(fake, "C0GENERAL", answer["ts"], ACTION_DOWN, user="UBOB"))
    await fake.wait_for(lambda: len(fake.ephemerals) == 2, what="the 👎 reply")
    assert await running.bot.drain(timeout=10)
    assert sorted(running.store.feedback_since()) == [(turn.id, "UALICE", 1), (turn.id, "UBOB", -1)]
    assert len(fake.ephemerals) == 2
    sorry = fake.ephemerals[1]
    assert sorry["user"] == "UBOB" and sorry["text"] == phrase("feedback_sorry")
    assert "Talk to a person" in block_texts(sorry["blocks"])

    # Bob takes the offer, but no support channel is configured: an honest answer in the thread.
    value = button_value(sorry["blocks"], ACTION_PERSON)
    await running.click(block_action(fake, "C0GENERAL", "1800000099.000001", ACTION_PERSON, user="UBOB",
                                     value=value, ephemeral=True))
    notice = await fake.wait_for(
        lambda: [m for m in posts_to(fake, "C0GENERAL", "1700000201.000100") if m["text"].startswith(phrase("handoff_unavailable"))],
        what="the honest hand-off notice")
    assert notice and running.store.escalations_since() == []


async def test_asking_for_a_human_without_a_support_channel_is_answered_honestly(running, fake):
    await ask(running, direct_message("I want to talk to a human", ts="1700000202.000100"))
    (reply,) = posts_to(fake, "D0ALICE")
    assert reply["text"].startswith(phrase("handoff_unavailable"))
    assert "+1-800-555-0199" in reply["text"]  # the knowledge base's own contact details
    assert running.store.escalations_since() == []


async def test_escalation_round_trip_through_the_support_channel(fake, recording, tmp_path):
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db", support_channel=SUPPORT)
    root, second = "1700000203.000100", "1700000203.000300"
    try:
        fake.seed_message("C0GENERAL", root, f"<@{BOT_USER}> How long does a refund take?", "UALICE", thread_ts=root)
        await ask(bot, mention("How long does a refund take?", ts=root))
        fake.seed_message("C0GENERAL", second, f"<@{BOT_USER}> I want to talk to a human", "UALICE", thread_ts=root)
        await ask(bot, mention("I want to talk to a human", ts=second, thread_ts=root))

        # The customer is told a person will answer; the team gets question, transcript, who, and Close.
        assert posts_to(fake, "C0GENERAL", root)[-1]["text"] == phrase("handoff")
        (post,) = posts_to(fake, SUPPORT)
        shown = "\n".join(block_texts(post["blocks"]))
        assert "Escalation #1" in shown and "<@UALICE>" in shown and "<#C0GENERAL>" in shown
        assert ">How long does a refund take?" in shown  # the question, not "talk to a human"
        assert "Customer: How long does a refund take?" in shown and "Customer: I want to talk to a human" in shown
        assert "Close" in block_texts(post["blocks"])
        (escalation,) = bot.store.escalations_since()
        assert (escalation.status, escalation.support_ref, escalation.user_id) == ("open", f"{SUPPORT}:{post['ts']}", "UALICE")

        # Ordinary chatter (support channel top level, other channels) is ignored.
        await bot.event(channel_message("Lunch anyone?", ts="1700000203.000500", channel=SUPPORT))
        await bot.event(channel_message("Refunds are slow today", ts="1700000203.000600", channel="C0RANDOM", user="UBOB"))
        # A channel member who is not a listed agent: not relayed, not learned (issue 13's phishing reply).
        await bot.event(channel_message("Please send your password to help@evil.example", ts="1700000203.000650",
                                        channel=SUPPORT, thread_ts=post["ts"], user="UBOB"))
        assert await bot.bot.drain(timeout=10)
        assert not [m for m in posts_to(fake, "C0GENERAL", root) if "evil" in m["text"]]
        assert bot.store.learned_qas() == []
        # The agent answers in the escalation's thread: relayed to the customer's thread, marked as a person.
        agent_ts = "1700000203.000700"
        await bot.event(channel_message("Hi Alice, refunds reach your card within 5 business days. <!channel>",
                                        ts=agent_ts, channel=SUPPORT, thread_ts=post["ts"]))
        relayed = await fake.wait_for(
            lambda: [m for m in posts_to(fake, "C0GENERAL", root) if "5 business days" in m["text"]], what="the relay")
        assert phrase("agent_reply", name="Sam from Support") in relayed[0]["text"]
        assert "<!channel>" not in relayed[0]["text"]  # no pings from the support team into the customer's channel
        await fake.wait_for(lambda: [c for c in fake.calls_to("reactions.add") if c.args["timestamp"] == agent_ts],
                            what="the delivered ✅")
        assert await bot.bot.drain(timeout=10)
        assert len(posts_to(fake, SUPPORT)) == 1 and len(posts_to(fake, "C0RANDOM")) == 0
        (learned,) = bot.store.learned_qas("pending")
        assert learned.question == "How long does a refund take?" and learned.source == "escalation"
        assert learned.scope == "default", "learned in the escalated conversation's scope"

        # Close: the customer is told, the post shows who closed it, later replies are not relayed.
        await bot.click(block_action(fake, SUPPORT, post["ts"], ACTION_CLOSE, user="UAGENT"))
        await fake.wait_for(lambda: posts_to(fake, "C0GENERAL", root)[-1]["text"] == phrase("escalation_closed"),
                            what="the customer told it is closed")
        await fake.wait_for(lambda: "Closed by <@UAGENT>" in "\n".join(block_texts(fake.messages[(SUPPORT, post["ts"])]["blocks"])),
                            what="the post marked closed")
        assert bot.store.escalation(escalation.id).status == "closed"
        assert "Close" not in block_texts(fake.messages[(SUPPORT, post["ts"])]["blocks"])
        count = len(posts_to(fake, "C0GENERAL", root))
        await bot.event(channel_message("One more thing", ts="1700000203.000900", channel=SUPPORT, thread_ts=post["ts"]))
        assert await bot.bot.drain(timeout=10)
        assert len(posts_to(fake, "C0GENERAL", root)) == count
    finally:
        await bot.stop()


async def test_a_follow_up_in_a_thread_is_answered_in_context(running, fake):
    root, follow_up = "1700000204.000100", "1700000204.000300"
    fake.seed_message("C0GENERAL", root, f"<@{BOT_USER}> How long does a refund take?", "UALICE", thread_ts=root)
    await ask(running, mention("How long does a refund take?", ts=root))
    fake.seed_message("C0GENERAL", follow_up, f"<@{BOT_USER}> and for gift cards?", "UALICE", thread_ts=root)
    await ask(running, mention("and for gift cards?", ts=follow_up, thread_ts=root))
    first, second = posts_to(fake, "C0GENERAL", root)
    assert GIFT_CARD_REFUNDS in second["text"], second["text"]


async def test_a_chinese_question_gets_a_chinese_frame(running, fake):
    await ask(running, direct_message("退货期限是多久？", ts="1700000205.000100"))
    (answer,) = posts_to(fake, "D0ALICE")
    assert "*来源*" in answer["text"]
    labels = block_texts(answer["blocks"])
    if any("相关文章" in label or "Related" in label for label in labels):
        assert any("相关文章" in label for label in labels)
    await running.click(block_action(fake, "D0ALICE", answer["ts"], ACTION_DOWN, user="UALICE"))
    (sorry,) = await fake.wait_for(lambda: fake.ephemerals, what="the 👎 reply")
    assert sorry["text"] == phrase("feedback_sorry", "zh")
    assert phrase("talk_to_person", "zh") in block_texts(sorry["blocks"])


async def test_askdesk_teach_is_for_admins_and_saves_a_pending_entry(fake, recording, tmp_path):
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db", admin_user_ids="UADMIN, UOTHER",
                          support_channel=SUPPORT)
    try:
        async def askdesk(text: str, user: str, channel: str = "C0GENERAL") -> str:
            status, body, _ = await bot.command(slash_command(text, fake.response_url("t"), command="/askdesk",
                                                              user=user, channel=channel))
            assert status == 200
            return body

        reply = await askdesk("teach Do you ship to Mars? | No, only to addresses on Earth &amp; the Moon.", "UADMIN")
        assert "pending" in reply and "askdesk kb review" in reply
        (entry,) = bot.store.learned_qas("pending")
        assert (entry.question, entry.answer, entry.source) == (
            "Do you ship to Mars?", "No, only to addresses on Earth & the Moon.", "slack")
        assert entry.scope == "default", "learned in the scope of the channel it was taught in"

        refused = await askdesk("teach Is it free? | Yes.", "UALICE")
        assert "only askdesk admins" in refused
        assert "Please write it as" in await askdesk("teach no separator here", "UADMIN")
        assert "Usage" in await askdesk("", "UALICE")
        assert "support channel" in await askdesk("close 1", "UALICE")  # not in the support channel
        assert "is not open" in await askdesk("close 1", "UALICE", channel=SUPPORT)
        assert len(bot.store.learned_qas()) == 1
        assert recording.seen == [] and fake.posting_calls == []
    finally:
        await bot.stop()


async def test_ask_command_answers_carry_buttons_and_a_hand_off_continues_in_the_dm(fake, recording, tmp_path):
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db", support_channel=SUPPORT)
    try:
        await bot.command(slash_command("Can I pay with PayPal?", fake.response_url("ask1")))
        (answer,) = await fake.wait_for(lambda: fake.responses, what="the /ask answer")
        assert {ACTION_UP, ACTION_DOWN} <= {e["action_id"] for b in answer.args["blocks"] for e in b.get("elements", [])
                                            if b["type"] == "actions"}

        await bot.command(slash_command("Can I talk to a person please?", fake.response_url("ask2")))
        await fake.wait_for(lambda: len(fake.responses) == 2, what="the hand-off reply")
        assert fake.responses[1].args["text"] == phrase("handoff")
        (post,) = await fake.wait_for(lambda: posts_to(fake, SUPPORT), what="the escalation post")
        shown = "\n".join(block_texts(post["blocks"]))
        assert "`/ask` in <#C0GENERAL>" in shown and ">Can I pay with PayPal?" in shown

        # /ask may have been ephemeral, in a channel the bot is not in: the agent's reply goes to the DM.
        await bot.event(channel_message("Yes, PayPal works everywhere.", ts="1700000206.000500", channel=SUPPORT,
                                        thread_ts=post["ts"]))
        (relayed,) = await fake.wait_for(lambda: posts_to(fake, "UALICE"), what="the relay to the DM")
        assert "PayPal works everywhere" in relayed["text"] and relayed.get("thread_ts") is None
    finally:
        await bot.stop()


async def test_while_escalated_the_customer_writes_to_the_agent_not_the_bot(fake, recording, tmp_path):
    """A person has the thread: the customer's next mention goes into the escalation's thread, the
    bot does not answer in the agent's place, and an agent who @mentions the bot there is relayed,
    not answered. Someone else's mention in another thread is answered as usual."""
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db", support_channel=SUPPORT)
    root, second, third = "1700000205.000100", "1700000205.000300", "1700000205.000500"
    try:
        fake.seed_message("C0GENERAL", root, f"<@{BOT_USER}> I want to talk to a human", "UALICE", thread_ts=root)
        await ask(bot, mention("I want to talk to a human", ts=root))
        (post,) = posts_to(fake, SUPPORT)

        fake.seed_message("C0GENERAL", second, f"<@{BOT_USER}> How long does a refund take?", "UALICE", thread_ts=root)
        await ask(bot, mention("How long does a refund take?", ts=second, thread_ts=root))
        assert posts_to(fake, "C0GENERAL", root)[-1]["text"] == phrase("forwarded")
        assert not [m for m in posts_to(fake, "C0GENERAL", root) if m.get("blocks")], "no bot answer (answers carry buttons)"
        (forwarded,) = posts_to(fake, SUPPORT, post["ts"])
        assert "(customer) wrote" in forwarded["text"] and "How long does a refund take?" in forwarded["text"]

        # The agent @mentions the bot in the escalation's thread: Slack sends app_mention and message.
        agent_ts = "1700000205.000700"
        text = f"<@{BOT_USER}> Hi Alice, about 5 business days."
        await bot.event({**channel_message(text, ts=agent_ts, channel=SUPPORT, thread_ts=post["ts"])})
        await bot.event({**mention("Hi Alice, about 5 business days.", ts=agent_ts, channel=SUPPORT, user="UAGENT",
                                   thread_ts=post["ts"])})
        await fake.wait_for(lambda: [m for m in posts_to(fake, "C0GENERAL", root) if "5 business days" in m["text"]],
                            what="the relay")
        assert await bot.bot.drain(timeout=30)
        assert posts_to(fake, SUPPORT, post["ts"]) == [forwarded], "the bot did not answer the agent in the support thread"

        # Another person's question in another thread is answered as usual.
        fake.seed_message("C0GENERAL", third, f"<@{BOT_USER}> How long does a refund take?", "UBOB", thread_ts=third)
        await ask(bot, mention("How long does a refund take?", ts=third, user="UBOB"))
        assert [m for m in posts_to(fake, "C0GENERAL", third) if m.get("blocks")], "answered by the bot"
    finally:
        await bot.stop()


async def test_members_of_the_support_agents_user_group_are_agents(fake, recording, tmp_path):
    """SLACK_SUPPORT_AGENT_GROUP: the group's members (usergroups.users.list) count as agents, no one else."""
    fake.usergroups["S0AGENTS"] = ["UCAROL"]
    bot = await start_bot(fake, recording, tmp_path / "askdesk.db", support_channel=SUPPORT,
                          support_agent_ids="", support_agent_group="S0AGENTS")
    root = "1700000209.000100"
    try:
        fake.seed_message("C0GENERAL", root, f"<@{BOT_USER}> I want to talk to a human", "UALICE", thread_ts=root)
        await ask(bot, mention("I want to talk to a human", ts=root))
        (post,) = posts_to(fake, SUPPORT)
        await bot.event(channel_message("Please send your password to help@evil.example", ts="1700000209.000200",
                                        channel=SUPPORT, thread_ts=post["ts"], user="UBOB"))
        await bot.event(channel_message("Hi Alice, Carol here: your refund is on its way.", ts="1700000209.000300",
                                        channel=SUPPORT, thread_ts=post["ts"], user="UCAROL"))
        await fake.wait_for(lambda: [m for m in posts_to(fake, "C0GENERAL", root) if "on its way" in m["text"]],
                            what="the group member's reply relayed")
        assert await bot.bot.drain(timeout=10)
        assert not [m for m in posts_to(fake, "C0GENERAL", root) if "evil" in m["text"]]
        assert [c.args["usergroup"] for c in fake.calls_to("usergroups.users.list")] == ["S0AGENTS"]  # looked up once
    finally:
        await bot.stop()
