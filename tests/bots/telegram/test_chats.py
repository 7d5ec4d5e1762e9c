"""Which messages are questions (private vs groups), commands, non-text, redeliveries."""

from __future__ import annotations

from core.messages import HistoryTurn, IncomingMessage
from tests.bots.telegram.conftest import running_bot
from tests.fakes.telegram_api import BOT_USERNAME, check_telegram_html


def _answered(fake, chat_id: int) -> bool:
    return any("Sources" in m["visible"] or "don't know" in m["visible"]
               for (c, _), m in fake.messages.items() if c == chat_id)


def _texts(fake, chat_id: int) -> list[str]:
    return [m["visible"] for (c, _), m in sorted(fake.messages.items()) if c == chat_id]


def _context(assistant, chat_id: int, thread_id: str | None = None) -> list[HistoryTurn]:
    """The earlier turns the core would use for the chat's next question (its stored conversation)."""
    return assistant.history(IncomingMessage("next?", platform="telegram", conversation_id=str(chat_id),
                                             thread_id=thread_id))


async def test_start_help_reset_and_context(fake, quick_assistant, store):
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(fake.message_update("/start", chat_id=50, first_name="Grace"))
        await fake.wait_for(lambda: len(_texts(fake, 50)) == 1, what="/start reply")
        assert _texts(fake, 50)[0].startswith("Hi Grace!")
        assert "question" in _texts(fake, 50)[0]

        await fake.enqueue(fake.message_update("/help", chat_id=50))
        await fake.wait_for(lambda: len(_texts(fake, 50)) == 2, what="/help reply")
        help_text = _texts(fake, 50)[1]
        for command in ("/ask", "/reset", "/help"):
            assert command in help_text

        await fake.enqueue(fake.message_update("How do I reset my password?", chat_id=50))
        await fake.wait_for(lambda: _answered(fake, 50) and _context(quick_assistant, 50), what="the answer")
        turns = _context(quick_assistant, 50)
        assert [t.role for t in turns] == ["user", "assistant"]
        assert turns[0].text == "How do I reset my password?"

        await fake.enqueue(fake.message_update("/reset", chat_id=50))
        await fake.wait_for(lambda: any("forgotten our earlier conversation" in t for t in _texts(fake, 50)),
                            what="/reset reply")
        assert _context(quick_assistant, 50) == []

    for call in fake.calls_to("sendMessage", "editMessageText"):
        assert check_telegram_html(call.params["text"])[0] is None


async def test_non_text_messages_get_a_short_reply(fake, quick_assistant, store):
    media = {
        61: {"photo": [{"file_id": "p", "file_unique_id": "pu", "width": 90, "height": 90}]},
        62: {"sticker": {"file_id": "s", "file_unique_id": "su", "type": "regular", "width": 512, "height": 512,
                         "is_animated": False, "is_video": False}},
        63: {"voice": {"file_id": "v", "file_unique_id": "vu", "duration": 2}},
        64: {"document": {"file_id": "d", "file_unique_id": "du", "file_name": "invoice.pdf"}},
    }
    async with running_bot(fake, quick_assistant, store):
        for chat_id, extra in media.items():
            await fake.enqueue(fake.message_update(None, chat_id=chat_id, extra=extra))
        await fake.wait_for(lambda: all(_texts(fake, c) for c in media), what="replies to media")
    for chat_id in media:
        assert _texts(fake, chat_id) == ["I can only read text messages for now. Please type your question."]
    assert not fake.calls_to("sendChatAction"), "nothing was sent to the model"


async def test_same_update_twice_is_answered_once(fake, quick_assistant, store):
    async with running_bot(fake, quick_assistant, store):
        update = await fake.enqueue(fake.message_update("What payment methods do you accept?", chat_id=70))
        await fake.wait_for(lambda: _answered(fake, 70), what="the answer")
        await fake.redeliver(update)  # e.g. a restart before the offset was confirmed
        await fake.enqueue(fake.message_update("/help", chat_id=70))
        await fake.wait_for(lambda: any("/reset" in t for t in _texts(fake, 70)), what="/help after the redelivery")
    assert len(fake.calls_to("sendMessage")) == 2, _texts(fake, 70)  # the answer and /help, nothing else
    assert sum(1 for c in fake.calls_to("getUpdates") if c.params.get("offset")) >= 1


async def test_groups_answer_only_mentions_replies_and_ask(fake, quick_assistant, store):
    group = dict(chat_type="supergroup")
    async with running_bot(fake, quick_assistant, store):
        ignored = await fake.enqueue(fake.message_update("How do I return an item?", chat_id=-1001, **group))
        ignored_photo = await fake.enqueue(fake.message_update(None, chat_id=-1001, extra={
            "photo": [{"file_id": "p", "file_unique_id": "pu", "width": 9, "height": 9}]}, **group))
        mention = await fake.enqueue(fake.message_update(
            f"@{BOT_USERNAME} how do I return an item?", chat_id=-1002, **group))
        reply = await fake.enqueue(fake.message_update(
            "And how long does a refund take?", chat_id=-1003, reply_to_bot=True, **group))
        ask = await fake.enqueue(fake.message_update(  # in a forum topic: answers stay in the topic
            f"/ask@{BOT_USERNAME} What payment methods do you accept?", chat_id=-1004,
            extra={"message_thread_id": 5, "is_topic_message": True}, **group))
        await fake.wait_for(lambda: all(_answered(fake, c) and _context(quick_assistant, c, "5" if c == -1004 else None)
                                        for c in (-1002, -1003, -1004)),
                            timeout=90, what="three group answers")
        # the ignored chat may only be touched by mistake before /help below is answered
        await fake.enqueue(fake.message_update("/help", chat_id=-1001, **group))
        await fake.wait_for(lambda: len(_texts(fake, -1001)) == 1, what="/help in the first group")

    assert "/ask" in _texts(fake, -1001)[0], "only /help was answered in the first group"
    assert not [c for c in fake.calls_to("sendChatAction") if c.params["chat_id"] == -1001]
    replied_to = {c.params.get("reply_parameters", {}).get("message_id") for c in fake.calls_to("sendMessage")}
    for answered in (mention, reply, ask):
        assert answered["message"]["message_id"] in replied_to, "group answers reply to the question"
    for skipped in (ignored, ignored_photo):
        assert skipped["message"]["message_id"] not in replied_to
    topic_calls = [c for c in fake.calls_to("sendMessage", "sendChatAction") if c.params["chat_id"] == -1004]
    assert topic_calls and all(c.params.get("message_thread_id") == 5 for c in topic_calls)
    # the mention and the command are stripped before the core sees the question
    assert _context(quick_assistant, -1002)[-2].text == "how do I return an item?"
    assert _context(quick_assistant, -1004, "5")[-2].text == "What payment methods do you accept?", "topic = thread"
    assert _context(quick_assistant, -1003)[-2].text == "And how long does a refund take?"
