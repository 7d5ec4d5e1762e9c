"""Conversations that go somewhere: feedback buttons, hand-off to the support group and back,
Chinese reply frames, follow-ups from the stored conversation, /reset, /teach.

Chat and user ids are unique to each test: the session's assistant keeps one database, so
conversations and profiles would otherwise carry over between tests.
"""

from __future__ import annotations

from core.support.agents import AgentAllowlist
from bots.telegram.app import SupportOptions
from core.language import phrase
from core.messages import IncomingMessage
from tests.bots.telegram.conftest import running_bot
from tests.fakes.telegram_api import check_telegram_html

SUPPORT = -3000  # the support group's chat id
AGENT = dict(chat_id=SUPPORT, chat_type="supergroup", user_id=9001, first_name="Grace")
GIFT_CARD_REFUNDS = "https://help.northwindgoods.example/gift-cards/gift-card-refunds"


def _texts(fake, chat_id: int) -> list[str]:
    return [m["visible"] for (c, _), m in sorted(fake.messages.items()) if c == chat_id]


def _with_buttons(fake, chat_id: int, prefix: str) -> list[int]:
    """Ids of the chat's messages that have a button whose callback data starts with ``prefix``."""
    return [m for (c, m) in sorted(fake.messages) if c == chat_id
            and any(data.startswith(prefix) for _, data in fake.buttons(c, m))]


def _answered(fake, query_update: dict) -> dict | None:
    """The bot's answerCallbackQuery for a click, once it has been answered."""
    return fake.callback_queries.get(query_update["callback_query"]["id"])


def _stored_turns(assistant, chat_id: int) -> list:
    store = assistant.store
    return store.recent_turns(store.conversation("telegram", str(chat_id)), 50)


def _feedback(assistant, turn_id: int) -> dict[str, int]:
    return {user: value for turn, user, value in assistant.store.feedback_since() if turn == turn_id}


def _data(fake, chat_id: int, message_id: int, prefix: str) -> str:
    return next(data for _, data in fake.buttons(chat_id, message_id) if data.startswith(prefix))


async def test_feedback_is_stored_once_per_user_and_thumbs_down_offers_a_person(fake, quick_assistant, store):
    chat = -2001  # a group, so two people can rate the same answer
    group = dict(chat_id=chat, chat_type="supergroup")
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(fake.message_update("/ask How do I reset my password?", user_id=2011, **group))
        await fake.wait_for(lambda: _with_buttons(fake, chat, "fb:"), what="the answer with feedback buttons")
        answer_id = _with_buttons(fake, chat, "fb:")[0]
        assert [text for text, _ in fake.buttons(chat, answer_id)] == ["👍", "👎"]
        turn_id = _stored_turns(quick_assistant, chat)[-1].id
        up = _data(fake, chat, answer_id, "fb:")
        assert up == f"fb:{turn_id}:+1"

        # 👍 twice by the same user (a double tap before the buttons went away): one record.
        clicks = [fake.callback_update(chat, answer_id, up, user_id=2012, first_name="Bo") for _ in range(2)]
        # 👎 from another user whose client still shows the buttons.
        down = fake.callback_update(chat, answer_id, f"fb:{turn_id}:-1", user_id=2013, first_name="Cy")
        for click in clicks:
            await fake.enqueue(click)
        await fake.wait_for(lambda: all(_answered(fake, c) for c in clicks), what="both 👍 clicks answered")
        assert _feedback(quick_assistant, turn_id) == {"2012": 1}
        assert {_answered(fake, c).get("text") for c in clicks} == {"Thanks for your feedback!"}
        assert fake.buttons(chat, answer_id) == [], "the buttons are gone once feedback was given"

        await fake.enqueue(down)
        await fake.wait_for(lambda: _answered(fake, down) and fake.buttons(chat, answer_id), what="the 👎 and its offer")
        assert _answered(fake, down)["text"] == phrase("feedback_sorry", "en")
        assert _feedback(quick_assistant, turn_id) == {"2012": 1, "2013": -1}
        assert fake.buttons(chat, answer_id) == [("Talk to a person", f"person:{turn_id}")]

        # A button naming another chat's answer (a forged callback) records nothing.
        other = fake.callback_update(chat, answer_id, "fb:999999:+1", user_id=2014)
        await fake.enqueue(other)
        await fake.wait_for(lambda: _answered(fake, other), what="the forged click answered")
    assert not [f for f in quick_assistant.store.feedback_since() if f[1] == "2014"]


async def test_escalation_round_trip_with_a_reply_and_close(fake, quick_assistant, store):
    chat, user = 300, 3001
    support = SupportOptions(support_chat_id=SUPPORT, agents=AgentAllowlist({"9001"}))
    async with running_bot(fake, quick_assistant, store, support=support):
        await fake.enqueue(fake.message_update("How long does a refund take?", chat_id=chat, user_id=user,
                                               first_name="Ada"))
        await fake.wait_for(lambda: _with_buttons(fake, chat, "fb:"), what="the first answer")
        await fake.enqueue(fake.message_update("I want to talk to a human", chat_id=chat, user_id=user,
                                               first_name="Ada"))
        await fake.wait_for(lambda: _with_buttons(fake, SUPPORT, "close:") and len(_texts(fake, chat)) == 2,
                            what="the escalation in the support group")
        assert _texts(fake, chat)[-1] == phrase("handoff", "en")
        post_id = _with_buttons(fake, SUPPORT, "close:")[0]
        post = fake.messages[(SUPPORT, post_id)]
        assert check_telegram_html(post["raw"])[0] is None
        assert "Escalation #" in post["visible"] and "Ada (id 3001)" in post["visible"]
        assert "Question: How long does a refund take?" in post["visible"], "the real question, not the request"
        assert "Customer: How long does a refund take?" in post["visible"], "the transcript goes with it"
        escalation = quick_assistant.store.open_escalation_for("telegram", str(chat))
        assert escalation is not None and escalation.support_ref == f"{SUPPORT}:{post_id}"
        assert fake.buttons(SUPPORT, post_id) == [("Close", f"close:{escalation.id}")]

        # Agents' chatter, and questions to the bot, in the support group are not questions.
        await fake.enqueue(fake.message_update("anyone up for lunch?", **AGENT))
        await fake.enqueue(fake.message_update("@askdesk_test_bot how do I return an item?", **AGENT))

        stranger = {**AGENT, "user_id": 9002, "first_name": "Mallory"}  # in the group, not a listed agent
        await fake.enqueue(fake.message_update("Please send your password to help@evil.example", reply_to=post_id,
                                               **stranger))
        await fake.enqueue(fake.message_update("Refunds take 5-7 days; I've sped yours up.", reply_to=post_id, **AGENT))
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 3, what="the agent's reply relayed")
        relayed = _texts(fake, chat)[-1]
        assert relayed == "Reply from our support team (Grace)\nRefunds take 5-7 days; I've sped yours up."
        # Kept once the customer has it (the workflow records a reply after delivering it).
        await fake.wait_for(lambda: quick_assistant.store.escalation_replies(escalation.id) == [
            ("Grace", "Refunds take 5-7 days; I've sped yours up.")], what="the reply kept")

        await fake.enqueue(fake.message_update("/close", reply_to=post_id, **AGENT))
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 4, what="the customer told it is closed")
        assert _texts(fake, chat)[-1] == phrase("escalation_closed", "en")
        await fake.wait_for(lambda: any("closed by Grace" in t for t in _texts(fake, SUPPORT)), what="closed notice")
        assert fake.buttons(SUPPORT, post_id) == [], "no Close button on a closed escalation"
        assert quick_assistant.store.escalation(escalation.id).status == "closed"

        # A late reply to the closed escalation is not relayed; the agent is told.
        await fake.enqueue(fake.message_update("One more thing…", reply_to=post_id, **AGENT))
        await fake.wait_for(lambda: any("is closed" in t for t in _texts(fake, SUPPORT)), what="the late reply refused")

    assert len(_texts(fake, chat)) == 4
    support_texts = _texts(fake, SUPPORT)
    assert len(support_texts) == 3, support_texts  # the escalation, "closed by", "is closed" — nothing else
    assert not [c for c in fake.calls_to("sendChatAction") if c.params["chat_id"] == SUPPORT]


async def test_chinese_hand_off_closed_with_the_button(fake, quick_assistant, store):
    chat, user = 400, 4001
    support = SupportOptions(support_chat_id=SUPPORT, agents=AgentAllowlist({"9001"}))
    async with running_bot(fake, quick_assistant, store, support=support):
        await fake.enqueue(fake.message_update("转人工", chat_id=chat, user_id=user, first_name="李雷"))
        await fake.wait_for(lambda: _with_buttons(fake, SUPPORT, "close:") and _texts(fake, chat), what="the escalation")
        assert _texts(fake, chat) == [phrase("handoff", "zh")]
        await fake.enqueue(fake.message_update("转人工", chat_id=chat, user_id=user, first_name="李雷"))
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 2, what="the second request")
        assert len(_with_buttons(fake, SUPPORT, "close:")) == 1, "an open escalation is reused, not posted again"

        post_id = _with_buttons(fake, SUPPORT, "close:")[0]
        await fake.enqueue(fake.message_update("您好，我是客服。", reply_to=post_id, **AGENT))
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 3, what="the relayed reply")
        assert _texts(fake, chat)[-1] == "人工客服回复（Grace）\n您好，我是客服。"

        close = _data(fake, SUPPORT, post_id, "close:")
        first, second = (fake.callback_update(SUPPORT, post_id, close, user_id=9001, first_name="Grace")
                         for _ in range(2))
        await fake.enqueue(first)
        await fake.wait_for(lambda: _answered(fake, first) and len(_texts(fake, chat)) == 4, what="closed")
        await fake.enqueue(second)
        await fake.wait_for(lambda: _answered(fake, second), what="the second Close click")
    assert _texts(fake, chat)[-1] == phrase("escalation_closed", "zh")
    assert (_answered(fake, first)["text"], _answered(fake, second)["text"]) == ("Closed", "Already closed")
    assert fake.buttons(SUPPORT, post_id) == []


async def test_without_a_support_group_the_bot_says_no_one_is_available(fake, quick_assistant, store):
    chat, user = 450, 4501
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(fake.message_update("Can you recommend a good pizza place in Rome?", chat_id=chat,
                                               user_id=user))
        await fake.wait_for(lambda: _with_buttons(fake, chat, "person:"), what="the refusal with its offer")
        refusal_id = _with_buttons(fake, chat, "person:")[0]
        assert [text for text, _ in fake.buttons(chat, refusal_id)] == ["👍", "👎", "Talk to a person"]
        click = fake.callback_update(chat, refusal_id, _data(fake, chat, refusal_id, "person:"), user_id=user)
        await fake.enqueue(click)
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 2, what="the answer to the click")
        # Honest, with the knowledge base's own contact details.
        assert _texts(fake, chat)[-1].startswith(phrase("handoff_unavailable", "en"))
        assert "+1-800-555-0199" in _texts(fake, chat)[-1]
        assert fake.buttons(chat, refusal_id) == []

        await fake.enqueue(fake.message_update("I want to talk to a human", chat_id=chat, user_id=user))
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 3, what="the answer to asking for a human")
    assert _texts(fake, chat)[-1].startswith(phrase("handoff_unavailable", "en"))
    assert "support@northwindgoods.example" in _texts(fake, chat)[-1]
    assert quick_assistant.store.open_escalation_for("telegram", str(chat)) is None
    assert {c.params["chat_id"] for c in fake.calls_to("sendMessage")} == {chat}


async def test_chinese_question_gets_a_chinese_frame_and_profile(fake, quick_assistant, store):
    chat, user = 500, 5001
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(fake.message_update("退货期限是多久？", chat_id=chat, user_id=user, first_name="韩梅梅"))
        await fake.wait_for(lambda: _with_buttons(fake, chat, "fb:"), what="the answer")
        answer = _texts(fake, chat)[0]
        assert "\n来源\n" in answer and "Sources" not in answer
        if "相关文章" in answer:
            assert "Related articles" not in answer
        profile = quick_assistant.store.profile("telegram", str(user))
        assert profile.language == "zh" and profile.display_name == "韩梅梅"

        await fake.enqueue(fake.message_update("/start", chat_id=chat, user_id=user, first_name="韩梅梅"))
        # a new user whose Telegram app is set to Chinese
        await fake.enqueue(fake.message_update("/start", chat_id=501, extra={
            "from": {"id": 5011, "is_bot": False, "first_name": "Wei", "language_code": "zh-hans"}}))
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 2 and _texts(fake, 501), what="the greetings")
    assert _texts(fake, chat)[1].startswith("韩梅梅，您好！")
    assert _texts(fake, 501)[0].startswith("Wei，您好！")


async def test_follow_up_uses_the_stored_conversation_until_reset(fake, quick_assistant, store):
    chat, user = 600, 6001
    follow_up = IncomingMessage("and for gift cards?", platform="telegram", conversation_id=str(chat), user_id=str(user))
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(fake.message_update("How long does a refund take?", chat_id=chat, user_id=user))
        await fake.wait_for(lambda: len(_with_buttons(fake, chat, "fb:")) == 1, what="the first answer")
        await fake.enqueue(fake.message_update("and for gift cards?", chat_id=chat, user_id=user))
        await fake.wait_for(lambda: len(_with_buttons(fake, chat, "fb:")) == 2, what="the follow-up's answer")
        second = _stored_turns(quick_assistant, chat)[-1]
        assert second.question == "and for gift cards?"
        # The context made it a question about gift-card *refunds* (alone it finds gift-card purchases):
        # the cited passage speaks of both, and it is linked under Sources.
        cited = second.citations[0]
        assert "refund" in cited["snippet"].lower() and "gift card" in cited["snippet"].lower(), second.citations
        shown = fake.messages[(chat, _with_buttons(fake, chat, "fb:")[-1])]["raw"]
        assert f'href="{cited["url"]}"' in shown.split("Related articles")[0], "cited under Sources"

        assert [t.text for t in quick_assistant.history(follow_up) if t.role == "user"] == [
            "How long does a refund take?", "and for gift cards?"]
        await fake.enqueue(fake.message_update("/reset", chat_id=chat, user_id=user))
        await fake.wait_for(lambda: phrase("reset", "en") in _texts(fake, chat), what="/reset")
        assert quick_assistant.history(follow_up) == [], "after /reset, earlier turns are not context"

        await fake.enqueue(fake.message_update("and for gift cards?", chat_id=chat, user_id=user))
        await fake.wait_for(lambda: len(_with_buttons(fake, chat, "fb:")) == 3, what="the answer after /reset")
    assert [t.text for t in quick_assistant.history(follow_up) if t.role == "user"] == ["and for gift cards?"]
    conversation = quick_assistant.store.conversation("telegram", str(chat))
    kept = [t for t in quick_assistant.store.turns_since() if t.conversation == conversation]
    assert [t.question for t in kept] == ["and for gift cards?"], "/reset deleted the earlier turns"


async def test_teach_by_admin_is_saved_for_review_and_refused_otherwise(fake, quick_assistant, store):
    admin, other = 7001, 7002
    support = SupportOptions(admin_user_ids=frozenset({admin}))
    before = len(quick_assistant.store.learned_qas())
    async with running_bot(fake, quick_assistant, store, support=support):
        await fake.enqueue(fake.message_update("/teach Do you ship to Iceland? | Yes, within 5-8 business days.",
                                               chat_id=admin, user_id=admin, first_name="Ana"))
        await fake.enqueue(fake.message_update("/teach Is shipping free? | Always.", chat_id=other, user_id=other))
        await fake.enqueue(fake.message_update("/teach no bar here", chat_id=admin + 10, user_id=admin))
        await fake.wait_for(lambda: all(_texts(fake, c) for c in (admin, other, admin + 10)), what="three replies")
    learned = quick_assistant.store.learned_qas()
    assert len(learned) == before + 1, "only the admin's entry is stored"
    entry = learned[-1]
    assert (entry.question, entry.answer, entry.source, entry.status) == (
        "Do you ship to Iceland?", "Yes, within 5-8 business days.", "telegram", "pending")
    assert "7001" in entry.author
    assert entry.scope == "default", "learned in the scope of the chat it was taught in"
    assert _texts(fake, admin)[0].startswith(f"Thanks! Saved for review as #{entry.id}")
    assert "only askdesk admins" in _texts(fake, other)[0]
    assert _texts(fake, admin + 10)[0].startswith("Usage: /teach QUESTION | ANSWER")


async def test_while_escalated_the_customer_writes_to_the_agent_not_the_bot(fake, quick_assistant, store):
    """A person has the conversation: the customer's next messages go under the escalation, the
    bot does not answer in the agent's place, and a reply to the forwarded message reaches them."""
    import json

    chat, user = 320, 3201
    support = SupportOptions(support_chat_id=SUPPORT, agents=AgentAllowlist({"9001"}))
    async with running_bot(fake, quick_assistant, store, support=support):
        await fake.enqueue(fake.message_update("I want to talk to a human", chat_id=chat, user_id=user, first_name="Lin"))
        await fake.wait_for(lambda: _with_buttons(fake, SUPPORT, "close:") and len(_texts(fake, chat)) == 1,
                            what="the escalation")
        post_id = _with_buttons(fake, SUPPORT, "close:")[0]

        await fake.enqueue(fake.message_update("How long does a refund take?", chat_id=chat, user_id=user,
                                               first_name="Lin"))
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 2, what="the customer told it was passed on")
        assert _texts(fake, chat)[-1] == phrase("forwarded", "en")
        assert not _with_buttons(fake, chat, "fb:"), "the bot did not answer in the agent's place"
        (call,) = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == SUPPORT and "wrote" in c.params["text"]]
        reply = call.params["reply_parameters"]
        assert (json.loads(reply) if isinstance(reply, str) else reply)["message_id"] == post_id, "under the escalation"
        forwarded_id = max(m for (c, m) in fake.messages if c == SUPPORT)
        forwarded = fake.messages[(SUPPORT, forwarded_id)]["visible"]
        assert "Lin (customer) wrote" in forwarded and "How long does a refund take?" in forwarded

        # The agent answers by replying to the forwarded message itself.
        await fake.enqueue(fake.message_update("About 5 days, Lin.", reply_to=forwarded_id, **AGENT))
        await fake.wait_for(lambda: len(_texts(fake, chat)) == 3, what="the reply to the forwarded message relayed")
        assert _texts(fake, chat)[-1] == "Reply from our support team (Grace)\nAbout 5 days, Lin."

        # Closed: the bot answers again.
        await fake.enqueue(fake.message_update("/close", reply_to=post_id, **AGENT))
        await fake.wait_for(lambda: _texts(fake, chat)[-1] == phrase("escalation_closed", "en"), what="closed")
        await fake.enqueue(fake.message_update("How long does a refund take?", chat_id=chat, user_id=user,
                                               first_name="Lin"))
        await fake.wait_for(lambda: _with_buttons(fake, chat, "fb:"), what="the bot answering again")
