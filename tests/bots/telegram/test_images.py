"""Pictures of the cited passages after a Telegram answer: sendPhoto / sendMediaGroup by URL.

Through the fake Bot API with a fixed answer (tests/fakes/assistant.py): no index or model.
"""

from __future__ import annotations

from dataclasses import replace

from tests.bots.telegram.conftest import running_bot
from tests.bots.test_images import ANSWER, SHOT
from tests.fakes.assistant import FixedAnswerAssistant

SECOND = "https://help.example/figures/display-night-light.png"
ALT = "Picture from “Change text size on the screen”"


def answer_sent(fake, chat_id: int) -> bool:
    return any("Sources" in m["visible"] for (c, _), m in fake.messages.items() if c == chat_id)


def picture_calls(fake, ok_only: bool = True):
    return fake.calls_to("sendPhoto", "sendMediaGroup", ok_only=ok_only)


async def test_one_picture_follows_the_answer_as_a_photo(fake, store):
    async with running_bot(fake, FixedAnswerAssistant(ANSWER, stream_text=True), store):
        await fake.enqueue(fake.message_update("How do I make the text bigger?", chat_id=42))
        await fake.wait_for(lambda: fake.photos, what="the picture")
    assert answer_sent(fake, 42)
    (call,) = fake.calls_to("sendPhoto")
    assert call.params["chat_id"] == 42 and call.params["photo"] == SHOT and call.params["caption"] == ALT
    last_text = max(c.at for c in fake.sent_to(42))
    assert call.at >= last_text, "the picture comes after the answer's final text"
    assert fake.photos == [{"chat_id": 42, "url": SHOT, "caption": ALT, "message_thread_id": None,
                            "media_group_id": None, "message_id": fake.photos[0]["message_id"]}]


async def test_several_pictures_are_one_album_in_the_forum_topic(fake, store):
    assistant = FixedAnswerAssistant(replace(ANSWER, images=(SHOT, SECOND)))
    async with running_bot(fake, assistant, store):
        update = fake.message_update("/ask How do I make the text bigger?", chat_id=-100, chat_type="supergroup",
                                     extra={"message_thread_id": 9, "is_topic_message": True})
        await fake.enqueue(update)
        await fake.wait_for(lambda: len(fake.photos) == 2, what="the album")
    (call,) = fake.calls_to("sendMediaGroup")
    assert call.params["message_thread_id"] == 9
    assert [(m["type"], m["media"], m["caption"]) for m in call.params["media"]] == [
        ("photo", SHOT, ALT), ("photo", SECOND, ALT)]
    assert {p["media_group_id"] for p in fake.photos} == {"album-1"}
    assert not fake.calls_to("sendPhoto")


async def test_no_pictures_beside_a_refusal(fake, store):
    refusal = replace(ANSWER, text="I don't know that from our help centre.", refused=True, mode="refusal",
                      citations=(), images=(SHOT,))
    async with running_bot(fake, FixedAnswerAssistant(refusal), store):
        await fake.enqueue(fake.message_update("What is the capital of Mars?", chat_id=43))
        await fake.wait_for(lambda: any("help centre" in m["visible"] for (c, _), m in fake.messages.items() if c == 43),
                            what="the refusal")
        await fake.enqueue(fake.message_update("/help", chat_id=43))  # handled after the refusal finished
        await fake.wait_for(lambda: any("Commands" in m["visible"] for (c, _), m in fake.messages.items() if c == 43),
                            what="the help text")
    assert picture_calls(fake, ok_only=False) == []


async def test_a_chat_without_photo_rights_still_gets_the_answer(fake, store):
    fake.fail_next("sendMediaGroup", 400, "Bad Request: not enough rights to send photos to the chat")
    assistant = FixedAnswerAssistant(replace(ANSWER, images=(SHOT, SECOND)))
    async with running_bot(fake, assistant, store):
        await fake.enqueue(fake.message_update("@askdesk_test_bot how do I make the text bigger?", chat_id=-200,
                                               chat_type="group"))
        await fake.wait_for(lambda: picture_calls(fake, ok_only=False), what="the album attempt")
        await fake.enqueue(fake.message_update("/help", chat_id=-200, chat_type="group"))
        await fake.wait_for(lambda: any("Commands" in m["visible"] for (c, _), m in fake.messages.items() if c == -200),
                            what="the help text")
    assert answer_sent(fake, -200)
    assert "went wrong" not in fake.final_text(-200)
    assert len(picture_calls(fake, ok_only=False)) == 1, "no picture is tried one by one where photos are not allowed"
    assert fake.photos == []


async def test_an_album_with_a_picture_telegram_cannot_fetch_sends_the_others(fake, store):
    fake.fail_next("sendMediaGroup", 400, "Bad Request: failed to get HTTP URL content")
    fake.fail_next("sendPhoto", 400, "Bad Request: wrong file identifier/HTTP URL specified",
                   when=lambda params: params.get("photo") == SHOT)
    assistant = FixedAnswerAssistant(replace(ANSWER, images=(SHOT, SECOND)))
    async with running_bot(fake, assistant, store):
        await fake.enqueue(fake.message_update("How do I make the text bigger?", chat_id=44))
        await fake.wait_for(lambda: fake.photos, what="the picture that could be fetched")
    assert [p["url"] for p in fake.photos] == [SECOND]
    assert answer_sent(fake, 44)
