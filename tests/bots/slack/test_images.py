"""Pictures of the cited passages beside a Slack answer: image blocks, through the fake Slack.

The answer is fixed (tests/fakes/assistant.py), so no index or model is involved: what is
checked is the adapter — an image block per picture in the final message, none beside a
refusal, and an answer that still arrives when Slack cannot fetch a picture.
"""

from __future__ import annotations

from dataclasses import replace

from bots.slack.blocks import ConversationRef, answer_footer, image_blocks
from tests.bots.slack.conftest import start_bot
from tests.bots.test_images import ANSWER, SHOT, cite
from tests.fakes.assistant import FixedAnswerAssistant
from tests.fakes.slack_api import FakeSlack, mention, slash_command

SECOND = "https://help.example/figures/display-night-light.png"


def answered(fake: FakeSlack, ts: str):
    return [c for c in fake.calls_to("reactions.remove") if c.args.get("timestamp") == ts]


def answer_posts(fake: FakeSlack, channel: str = "C0GENERAL") -> list[dict]:
    return [m for (ch, _), m in sorted(fake.messages.items()) if ch == channel and m.get("blocks")]


def test_image_blocks_come_before_related_articles_and_buttons():
    answer = replace(ANSWER, images=(SHOT, SECOND), turn_id=3,
                     related=(cite(2, "Adjust the color temperature", "https://help.example/night-light"),))
    footer = answer_footer(answer, ConversationRef("T:C1", turn_id=3))
    assert [b["type"] for b in footer] == ["image", "image", "section", "actions"]
    assert footer[0] == {"type": "image", "image_url": SHOT, "alt_text": "Picture from “Change text size on the screen”"}
    assert image_blocks(replace(ANSWER, refused=True, mode="refusal")) == []


async def test_final_answer_message_carries_an_image_block_per_picture(fake, tmp_path):
    assistant = FixedAnswerAssistant(replace(ANSWER, images=(SHOT, SECOND)), stream_text=True)
    bot = await start_bot(fake, assistant, tmp_path / "askdesk.db")
    try:
        await bot.event(mention("How do I make the text bigger?", ts="1700000101.000100"))
        await fake.wait_for(lambda: answered(fake, "1700000101.000100"), what="the answer")
    finally:
        await bot.stop()
    (message,) = answer_posts(fake)
    images = [b for b in message["blocks"] if b["type"] == "image"]
    assert images == [{"type": "image", "image_url": url, "alt_text": "Picture from “Change text size on the screen”"}
                      for url in (SHOT, SECOND)]
    assert message["blocks"][0]["type"] == "section" and "Large Text" in message["blocks"][0]["text"]["text"]
    # the streamed previews were text only: the pictures arrive with the final message
    previews = [c for c in fake.calls_to("chat.postMessage") + fake.calls_to("chat.update") if not c.args.get("blocks")]
    assert previews


async def test_no_image_block_beside_a_refusal(fake, tmp_path):
    refusal = replace(ANSWER, text="I don't know that from our help centre.", refused=True, mode="refusal",
                      citations=(), images=(SHOT,))
    bot = await start_bot(fake, FixedAnswerAssistant(refusal), tmp_path / "askdesk.db")
    try:
        await bot.event(mention("What is the capital of Mars?", ts="1700000102.000100"))
        await fake.wait_for(lambda: answered(fake, "1700000102.000100"), what="the refusal")
    finally:
        await bot.stop()
    posts = fake.calls_to("chat.postMessage") + fake.calls_to("chat.update")
    assert posts and not any(b.get("type") == "image" for c in posts for b in (c.args.get("blocks") or []))


async def test_a_picture_slack_cannot_fetch_costs_the_picture_not_the_answer(fake, tmp_path):
    bot = await start_bot(fake, FixedAnswerAssistant(ANSWER), tmp_path / "askdesk.db")
    fake.fail_next("chat.postMessage", "invalid_blocks")  # "downloading image failed"
    try:
        await bot.event(mention("How do I make the text bigger?", ts="1700000103.000100"))
        await fake.wait_for(lambda: answered(fake, "1700000103.000100"), what="the answer")
    finally:
        await bot.stop()
    rejected, sent = fake.calls_to("chat.postMessage", ok_only=False)
    assert not rejected.ok and any(b["type"] == "image" for b in rejected.args["blocks"])
    assert sent.ok and "Large Text" in sent.args["text"]
    assert not any(b["type"] == "image" for b in sent.args["blocks"])
    assert "went wrong" not in sent.args["text"]


async def test_slash_command_answer_carries_the_image_block(fake, tmp_path):
    bot = await start_bot(fake, FixedAnswerAssistant(ANSWER), tmp_path / "askdesk.db")
    try:
        status, _, _ = await bot.command(slash_command("How do I make the text bigger?", fake.response_url("img")))
        assert status == 200
        await fake.wait_for(lambda: fake.responses, what="the /ask answer")
        await bot.bot.drain(timeout=30)
    finally:
        await bot.stop()
    (response,) = fake.responses
    assert {"type": "image", "image_url": SHOT, "alt_text": "Picture from “Change text size on the screen”"} \
        in response.args["blocks"]
