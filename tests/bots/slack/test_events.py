"""Which Slack events are answered, and how they become IncomingMessage with history (pure functions)."""

from __future__ import annotations

from bots.slack.app import dedupe_key
from bots.slack.events import (
    BotIdentity,
    incoming_message,
    question_text,
    reply_thread,
    skip_reason,
    thread_history,
)
from core.messages import HistoryTurn

ME = BotIdentity(user_id="UBOT", bot_id="BBOT", team_id="T1")


def test_question_text_drops_mentions_and_unwraps_links():
    assert question_text("<@UBOT> how do I return <https://shop.example/o/1|order 1>?", ME) == "how do I return order 1?"
    assert question_text("<@UBOT>", ME) == ""
    assert question_text("ask <@UOTHER|bob> about <#C1|general> &amp; more", ME) == "ask about & more"


def test_skip_reasons():
    base = {"channel": "C1", "ts": "1.1", "user": "UALICE", "text": "hi"}
    assert skip_reason(base, ME) is None
    assert skip_reason({**base, "user": "UBOT"}, ME) == "own message"
    assert skip_reason({**base, "user": None, "bot_id": "BBOT"}, ME) == "own message"
    assert skip_reason({**base, "subtype": "message_changed"}, ME) == "subtype message_changed"
    assert skip_reason({**base, "bot_id": "BOTHER"}, ME) == "another bot"
    assert skip_reason({**base, "bot_id": "BOTHER"}, ME, ignore_bots=False) is None
    assert skip_reason({**base, "bot_id": "BBOT", "user": "UOTHER"}, ME, ignore_bots=False) == "own message"


def test_reply_goes_to_the_thread_in_channels_and_the_dm_itself():
    assert reply_thread({"ts": "5.0"}, direct=False) == "5.0"
    assert reply_thread({"ts": "5.0", "thread_ts": "4.0"}, direct=False) == "4.0"
    assert reply_thread({"ts": "5.0"}, direct=True) is None
    assert reply_thread({"ts": "5.0", "thread_ts": "4.0"}, direct=True) == "4.0"


def test_thread_history_roles_order_and_exclusions():
    messages = [
        {"ts": "10.000001", "user": "UALICE", "text": "<@UBOT> my parcel is late"},
        {"ts": "10.000002", "user": "UBOT", "bot_id": "BBOT",
         "text": "Orders take 3-5 days &amp; more.\n\n*Sources*\n[1] <https://x|Shipping>"},
        {"ts": "10.000003", "user": "UBOB", "subtype": "channel_join", "text": "joined"},
        {"ts": "10.000004", "user": "UBOT", "bot_id": "BBOT", "text": "…"},  # another answer in progress
        {"ts": "10.000005", "user": "UBOB", "text": "same for me"},
        {"ts": "10.000006", "user": "UALICE", "text": "<@UBOT> what now?"},  # the current message
        {"ts": "10.000007", "user": "UBOB", "text": "later message"},
    ]
    assert thread_history(messages, "10.000006", ME, limit=10) == (
        HistoryTurn("user", "my parcel is late"),
        HistoryTurn("assistant", "Orders take 3-5 days & more."),
        HistoryTurn("user", "same for me"),
    )
    assert thread_history(messages, "10.000006", ME, limit=1) == (HistoryTurn("user", "same for me"),)
    assert thread_history(messages, "10.000006", ME, limit=0) == ()


def test_incoming_message_fields():
    event = {"type": "app_mention", "team": "T1", "channel": "C1", "ts": "7.1", "thread_ts": "6.1", "user": "UALICE"}
    message = incoming_message(event, "question", direct=False, history=(HistoryTurn("user", "earlier"),))
    assert (message.platform, message.conversation_id, message.thread_id, message.message_id) == ("slack", "T1:C1", "6.1", "7.1")
    assert message.mentioned_bot and not message.is_direct and message.history


def test_dedupe_keys():
    assert dedupe_key({"type": "event_callback", "event_id": "Ev1"}) == "Ev1"
    assert dedupe_key({"command": "/ask", "trigger_id": "t.1"}) == "command:t.1"
    assert dedupe_key({"type": "url_verification"}) is None
