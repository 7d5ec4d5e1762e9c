"""Events API over HTTP against the fake Slack: signatures, acks, threaded answers, idempotency, errors."""

from __future__ import annotations

import json
import time

import pytest

from tests.bots.slack.conftest import RecordingAssistant, start_bot
from tests.fakes.slack_api import (
    BOT_ID,
    BOT_USER,
    SIGNING_SECRET,
    FakeSlack,
    direct_message,
    event_callback,
    mention,
    sign,
    slash_command,
)

QUESTION = "How long do I have to return an item?"
# Slack gives up after 3 s; acks must come well inside that even while the model runs on 2 CPUs.
ACK_BUDGET_S = 1.5


def answered(fake: FakeSlack, ts: str):
    """The final reply to the question at ``ts``: posted once the 👀 reaction is removed."""
    return [c for c in fake.calls_to("reactions.remove") if c.args.get("timestamp") == ts]


def final_text(fake: FakeSlack, channel: str, placeholder_ts: str) -> str:
    return fake.messages[(channel, placeholder_ts)]["text"]


async def test_signed_mention_is_acked_at_once_and_answered_once_in_its_thread(running, fake):
    status, _, elapsed = await running.event(mention(QUESTION, ts="1700000001.000100"))
    assert status == 200
    assert elapsed < ACK_BUDGET_S, f"ack took {elapsed:.2f}s; Slack wants it within 3s"

    await fake.wait_for(lambda: answered(fake, "1700000001.000100"), what="the answer")
    posts = fake.calls_to("chat.postMessage")
    assert len(posts) == 1
    assert posts[0].args["thread_ts"] == "1700000001.000100"
    assert posts[0].args["channel"] == "C0GENERAL"
    placeholder = posts[0]
    text = final_text(fake, "C0GENERAL", post_ts(fake, "C0GENERAL"))
    assert "*Sources*" in text
    assert "<https://help.northwindgoods.example/returns/" in text
    # No placeholder: the message is posted with the first words, the start of the final text.
    assert placeholder.args["text"] and text.startswith(placeholder.args["text"])
    # 👀 added on the question while working, then removed.
    adds = fake.calls_to("reactions.add")
    assert [(c.args["timestamp"], c.args["name"]) for c in adds] == [("1700000001.000100", "eyes")]
    assert adds[0].at < fake.calls_to("reactions.remove")[0].at


async def test_requests_that_are_not_from_slack_get_401_and_nothing_is_posted(running, fake):
    payload = event_callback(mention(QUESTION, ts="1700000002.000100"))
    body = json.dumps(payload)
    good = sign(SIGNING_SECRET, body)
    cases = {
        "bad signature": {**good, "X-Slack-Signature": "v0=" + "0" * 64},
        "wrong secret": sign("not-the-secret", body),
        "stale timestamp": sign(SIGNING_SECRET, body, timestamp=int(time.time()) - 6 * 60),
        "missing headers": {},
        "missing signature": {"X-Slack-Request-Timestamp": good["X-Slack-Request-Timestamp"]},
        "body changed after signing": good,
    }
    for name, headers in cases.items():
        sent = body.replace("return", "refund") if name == "body changed after signing" else body
        status, _, _ = await running.post(sent, headers)
        assert status == 401, name
    assert await running.bot.drain(timeout=5)
    assert fake.posting_calls == []
    assert fake.calls_to("reactions.add") == []
    # The event was never claimed: the genuine delivery is still answered afterwards.
    status, _, _ = await running.post(body, good)
    assert status == 200
    await fake.wait_for(lambda: answered(fake, "1700000002.000100"), what="the genuine delivery's answer")


async def test_redeliveries_and_a_restart_still_give_exactly_one_answer(fake, recording, tmp_path):
    db = tmp_path / "askdesk.db"
    payload = event_callback(mention(QUESTION, ts="1700000003.000100"))
    first = await start_bot(fake, recording, db)
    try:
        for retry in (None, 1, 2):
            status, _, elapsed = await first.deliver(payload, retry=retry)
            assert status == 200 and elapsed < ACK_BUDGET_S
        await fake.wait_for(lambda: answered(fake, "1700000003.000100"), what="the answer")
    finally:
        await first.stop()

    second = await start_bot(fake, recording, db)  # a restart on the same database
    try:
        status, _, _ = await second.deliver(payload, retry=3)
        assert status == 200
        assert await second.bot.drain(timeout=10)
    finally:
        await second.stop()
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert len(recording.seen) == 1


async def test_ack_does_not_wait_for_the_database_and_a_concurrent_redelivery_is_not_answered_twice(running, fake, recording):
    """The ack waits only for the inbox write, on its own thread: not for Bolt's middleware nor
    the store thread (held busy here); the inbox still lets exactly one of two deliveries through."""
    import asyncio
    import threading

    release = threading.Event()
    running.bot._store_thread.submit(release.wait)  # noqa: SLF001 - hold the database thread
    payload = event_callback(mention(QUESTION, ts="1700000009.000100"))
    try:
        first, retry = await asyncio.wait_for(
            asyncio.gather(running.deliver(payload), running.deliver(payload, retry=1)), timeout=ACK_BUDGET_S * 2
        )
        assert first[0] == retry[0] == 200
        assert recording.seen == []  # acked while nothing could be claimed yet
    finally:
        release.set()
    await fake.wait_for(lambda: answered(fake, "1700000009.000100"), what="the answer")
    assert await running.bot.drain(timeout=60)
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert len(recording.seen) == 1


async def test_direct_message_is_answered_in_the_dm(running, fake, recording):
    await running.event(direct_message("Which countries do you ship to?", ts="1700000004.000100"))
    await fake.wait_for(lambda: answered(fake, "1700000004.000100"), what="the DM answer")
    (post,) = fake.calls_to("chat.postMessage")
    assert post.args["channel"] == "D0ALICE"
    assert "thread_ts" not in post.args  # top level of the DM, like a chat
    assert recording.seen[0].is_direct and recording.seen[0].text == "Which countries do you ship to?"
    assert "<https://help.northwindgoods.example/shipping/" in fake.messages[("D0ALICE", post_ts(fake, "D0ALICE"))]["text"]


def post_ts(fake: FakeSlack, channel: str) -> str:
    return next(ts for (ch, ts), m in fake.messages.items() if ch == channel and m.get("bot_id") == BOT_ID)


async def test_mention_inside_a_thread_passes_the_earlier_turns_to_the_core(running, fake, recording):
    root = "1700000005.000100"
    fake.seed_message("C0GENERAL", root, "I bought headphones three weeks ago.", "UALICE", thread_ts=root)
    fake.seed_message("C0GENERAL", "1700000005.000200", "Sorry to hear that! What would you like to do?", BOT_USER,
                      thread_ts=root, bot_id=BOT_ID)
    current = "1700000005.000300"
    fake.seed_message("C0GENERAL", current, f"<@{BOT_USER}> Can I still return them?", "UALICE", thread_ts=root)

    await running.event(mention("Can I still return them?", ts=current, thread_ts=root))
    await fake.wait_for(lambda: answered(fake, current), what="the threaded answer")

    (replies,) = fake.calls_to("conversations.replies")
    assert replies.args["channel"] == "C0GENERAL" and replies.args["ts"] == root
    (seen,) = recording.seen
    assert [(t.role, t.text) for t in seen.history] == [
        ("user", "I bought headphones three weeks ago."),
        ("assistant", "Sorry to hear that! What would you like to do?"),
    ]
    assert seen.text == "Can I still return them?"
    (post,) = fake.calls_to("chat.postMessage")
    assert post.args["thread_ts"] == root  # answered in the existing thread


async def test_own_other_bot_and_subtype_messages_are_ignored(running, fake, recording):
    events = [
        direct_message("I am the bot", ts="1700000006.000100", user=BOT_USER, bot_id=BOT_ID),
        direct_message("beep from another bot", ts="1700000006.000200", user="UOTHERBOT", bot_id="BOTHER"),
        direct_message("edited", ts="1700000006.000300", subtype="message_changed"),
        direct_message("", ts="1700000006.000400", subtype="channel_join"),
        direct_message("deleted", ts="1700000006.000500", subtype="message_deleted"),
        {"type": "message", "channel_type": "channel", "user": "UALICE", "text": "chatter", "ts": "1700000006.000600",
         "channel": "C0GENERAL"},
        mention("ping from a bot", ts="1700000006.000700", user="UOTHERBOT", bot_id="BOTHER"),
    ]
    for event in events:
        status, _, _ = await running.event(event)
        assert status == 200
    assert await running.bot.drain(timeout=10)
    assert recording.seen == []
    assert fake.posting_calls == [] and fake.calls_to("reactions.add") == []


async def test_other_bots_are_answered_when_configured(fake, recording, tmp_path):
    bot = await start_bot(fake, recording, tmp_path / "db.sqlite", ignore_bots=False)
    try:
        await bot.event(direct_message("Which countries do you ship to?", ts="1700000007.000100",
                                       user="UOTHERBOT", bot_id="BOTHER"))
        await bot.event(direct_message("me again", ts="1700000007.000200", user=BOT_USER, bot_id=BOT_ID))
        await fake.wait_for(lambda: answered(fake, "1700000007.000100"), what="the answer to the other bot")
        assert await bot.bot.drain(timeout=30)
    finally:
        await bot.stop()
    assert [m.text for m in recording.seen] == ["Which countries do you ship to?"]  # never its own


async def test_empty_mention_gets_a_hint_without_calling_the_model(running, fake, recording):
    await running.event({"type": "app_mention", "user": "UALICE", "text": f"<@{BOT_USER}>  ", "ts": "1700000008.000100",
                         "channel": "C0GENERAL"})
    (post,) = await fake.wait_for(lambda: fake.calls_to("chat.postMessage"), what="the hint")
    assert post.args["text"] == "Please type a question."
    assert post.args["thread_ts"] == "1700000008.000100"
    assert await running.bot.drain(timeout=5)
    assert recording.seen == []


async def test_slash_command_is_acked_at_once_and_answered_through_the_response_url(running, fake):
    fields = slash_command("Can I pay with PayPal?", fake.response_url("ask1"))
    status, body, elapsed = await running.command(fields)
    assert status == 200 and elapsed < ACK_BUDGET_S
    assert "Can I pay with PayPal?" in body  # the ack (plain text = ephemeral) echoes the question
    (response,) = await fake.wait_for(lambda: fake.responses, what="the /ask answer")
    assert response.args["response_type"] == "ephemeral"
    assert response.args["replace_original"] is True
    assert "*Sources*" in response.args["text"] and "<https://help.northwindgoods.example/" in response.args["text"]
    assert fake.calls_to("chat.postMessage") == []


async def test_slash_command_can_answer_the_whole_channel(fake, recording, tmp_path):
    bot = await start_bot(fake, recording, tmp_path / "db.sqlite", ask_visibility="in_channel")
    try:
        status, body, _ = await bot.command(slash_command("Can I pay with PayPal?", fake.response_url("ask2")))
        assert status == 200 and json.loads(body)["response_type"] == "in_channel"
        (response,) = await fake.wait_for(lambda: fake.responses, what="the /ask answer")
        assert response.args["response_type"] == "in_channel"
    finally:
        await bot.stop()


async def test_empty_slash_command_gets_a_hint(running, fake, recording):
    status, body, _ = await running.command(slash_command("   ", fake.response_url("ask3")))
    assert status == 200 and body == "Please type a question."
    assert await running.bot.drain(timeout=5)
    assert recording.seen == [] and fake.responses == []


async def test_streaming_edits_one_message_instead_of_posting_many(running, fake):
    await running.event(mention("Which countries do you ship to?", ts="1700000009.000100"))
    await fake.wait_for(lambda: answered(fake, "1700000009.000100"), what="the answer")
    (post,) = fake.calls_to("chat.postMessage")
    updates = fake.calls_to("chat.update")
    # The message is posted with the first words (or whole, when nothing streamed) and then only edited.
    answer_ts = post_ts(fake, "C0GENERAL")
    assert {u.args["ts"] for u in updates} <= {answer_ts}
    assert fake.messages[("C0GENERAL", answer_ts)]["thread_ts"] == "1700000009.000100"


async def test_url_verification_malformed_json_and_unknown_events(running, fake):
    body = json.dumps({"token": "x", "challenge": "c-123", "type": "url_verification"})
    status, text, _ = await running.post(body, sign(SIGNING_SECRET, body))
    assert status == 200 and "c-123" in text

    broken = '{"type": "event_callback", "event": '
    status, _, _ = await running.post(broken, sign(SIGNING_SECRET, broken))
    assert status == 400
    status, _, _ = await running.post(broken, {})
    assert status == 401

    for event in (
        {"type": "reaction_added", "user": "UALICE", "reaction": "+1", "item": {"type": "message"}},
        {"type": "team_join", "user": {"id": "UNEW"}},
        {"type": "made_up_event"},
    ):
        status, _, _ = await running.event(event)
        assert status == 200

    # Still serving after all that.
    await running.event(mention(QUESTION, ts="1700000010.000100"))
    await fake.wait_for(lambda: answered(fake, "1700000010.000100"), what="an answer after the odd requests")
    assert len(fake.calls_to("chat.postMessage")) == 1


async def test_ratelimited_once_is_retried_after_retry_after(running, fake):
    fake.fail_next("chat.postMessage", "ratelimited")
    await running.event(mention(QUESTION, ts="1700000011.000100"))
    await fake.wait_for(lambda: answered(fake, "1700000011.000100"), what="the answer despite the rate limit")
    attempts = fake.calls_to("chat.postMessage", ok_only=False)
    assert [c.ok for c in attempts] == [False, True]
    assert attempts[1].at - attempts[0].at >= 0.9  # Retry-After: 1 honoured
    reply = fake.messages[("C0GENERAL", post_ts(fake, "C0GENERAL"))]
    assert "*Sources*" in reply["text"]


async def test_a_failure_while_answering_ends_in_an_apology_and_the_bot_keeps_serving(fake, settings, retriever, tmp_path):
    from core.assistant import Assistant
    from tests.conftest import make_settings
    from tests.fakes.generator import DRAFT_LONG, ScriptedGenerator, generate_overrides

    # A scripted draft, so the answer surely streams: its first words are posted, then edited.
    config = make_settings(index_dir=settings.index_dir, **generate_overrides())
    scripted = Assistant(config, retriever=retriever, generator=ScriptedGenerator(DRAFT_LONG), remember=False)
    bot = await start_bot(fake, scripted, tmp_path / "db.sqlite", stream_interval=3600.0)  # one streamed post
    try:
        for _ in range(2):  # the final edit and the apology edit both fail
            fake.fail_next("chat.update", "internal_error")
        await bot.event(mention(QUESTION, ts="1700000012.000100"))
        await fake.wait_for(lambda: answered(fake, "1700000012.000100"), what="the apology")
        placeholder, apology = fake.calls_to("chat.postMessage")
        assert apology.args["thread_ts"] == "1700000012.000100"
        assert apology.args["text"] == "Sorry, something went wrong while answering. Please try again in a moment."

        await bot.event(mention(QUESTION, ts="1700000013.000100"))
        await fake.wait_for(lambda: answered(fake, "1700000013.000100"), what="the next answer")
        last = fake.calls_to("chat.update")[-1]
        assert "*Sources*" in fake.messages[("C0GENERAL", last.args["ts"])]["text"]
        assert not fake.calls_to("chat.update", ok_only=False)[-1].error
    finally:
        await bot.stop()


async def test_core_errors_are_logged_and_apologised_for(fake, quick_assistant, tmp_path, caplog):
    class Broken(RecordingAssistant):
        async def stream(self, message):  # type: ignore[override]
            raise RuntimeError("index exploded")
            yield  # pragma: no cover

    bot = await start_bot(fake, Broken(quick_assistant), tmp_path / "db.sqlite")
    try:
        await bot.event(mention(QUESTION, ts="1700000014.000100"))
        await fake.wait_for(lambda: answered(fake, "1700000014.000100"), what="the apology")
    finally:
        await bot.stop()
    # Nothing was shown yet, so the apology is posted (no placeholder to edit).
    assert fake.calls_to("chat.update") == []
    (post,) = fake.calls_to("chat.postMessage")
    assert post.args["text"] == "Sorry, something went wrong while answering. Please try again in a moment."
    assert "index exploded" in caplog.text  # details in the log, not in Slack


async def test_too_long_question_gets_the_cores_message(running, fake, recording):
    await running.event(mention("why " * 1100, ts="1700000015.000100"))
    await fake.wait_for(lambda: answered(fake, "1700000015.000100"), what="the reply")
    assert fake.calls_to("chat.update") == []
    (post,) = fake.calls_to("chat.postMessage")
    assert post.args["text"].startswith("That message is too long for me")


@pytest.mark.slow
async def test_real_model_end_to_end_streams_into_one_message_about_once_per_interval(fake, assistant, tmp_path):
    """The bundled model at full length: edits of one placeholder, spaced by the interval, then the final answer."""
    interval = 0.5
    bot = await start_bot(fake, assistant, tmp_path / "db.sqlite", stream_interval=interval)
    try:
        started = time.monotonic()
        status, _, elapsed = await bot.event(mention("When will I get my money back after returning something?",
                                                     ts="1700000020.000100"))
        assert status == 200 and elapsed < ACK_BUDGET_S
        await fake.wait_for(lambda: answered(fake, "1700000020.000100"), timeout=180, what="the full answer")
        duration = time.monotonic() - started
    finally:
        await bot.stop()
    (post,) = fake.calls_to("chat.postMessage")
    updates = fake.calls_to("chat.update")
    # The message is posted with the first streamed words; the final edit comes after it.
    assert len(updates) >= 1, f"expected the streamed message to be edited over {duration:.1f}s, got {len(updates)}"
    assert {u.args["ts"] for u in updates} == {post_ts(fake, "C0GENERAL")}
    partial, final = [post, *updates[:-1]], updates[-1]
    # Nothing shown is taken back: every streamed text is the start of the final one, without a marker.
    assert all(final.args["text"].startswith(u.args["text"]) for u in partial)
    gaps = [b.at - a.at for a, b in zip(partial, partial[1:])]
    assert all(gap >= interval * 0.8 for gap in gaps), gaps
    assert len(updates) <= duration / interval + 2
    assert "*Sources*" in final.args["text"]
    assert "<https://help.northwindgoods.example/returns/" in final.args["text"]
    assert not final.args["text"].endswith(" …")


async def test_long_threads_are_paged_and_the_latest_turns_kept(running, fake, recording, monkeypatch):
    import bots.slack.app as slack_app

    monkeypatch.setattr(slack_app, "REPLIES_PAGE_SIZE", 4)
    root = "1700000030.000001"
    for i in range(1, 11):
        user, extra = ("UALICE", {}) if i % 2 else (BOT_USER, {"bot_id": BOT_ID})
        fake.seed_message("C0GENERAL", f"1700000030.{i:06d}", f"turn {i}", user, thread_ts=root, **extra)
    current = "1700000030.000011"
    fake.seed_message("C0GENERAL", current, f"<@{BOT_USER}> and the refund?", "UALICE", thread_ts=root)
    fake.seed_message("C0GENERAL", "1700000030.000012", "a later message", "UBOB", thread_ts=root)

    await running.event(mention("and the refund?", ts=current, thread_ts=root))
    await fake.wait_for(lambda: answered(fake, current), what="the answer")
    assert len(fake.calls_to("conversations.replies")) == 3  # 11 messages up to the current one, 4 per page
    (seen,) = recording.seen
    assert [t.text for t in seen.history] == [f"turn {i}" for i in range(1, 11)]
    assert [t.role for t in seen.history[:2]] == ["user", "assistant"]
