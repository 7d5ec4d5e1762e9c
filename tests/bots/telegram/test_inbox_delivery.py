"""At-least-once answering through the real python-telegram-bot Application and the fake Bot API.

Updates go through the inbox before Telegram can consider them delivered; one a stopped
process left behind is answered by the next start; a redelivered update is not answered twice.
(Slack tests that a second try edits the half-sent reply; for Telegram that path has no test yet.)
"""

from __future__ import annotations

from core.inbox import Inbox
from tests.bots.telegram.conftest import running_bot


def _sent(fake, chat: int) -> list:
    return [c for c in fake.calls_to("sendMessage") if c.params.get("chat_id") == chat]


async def test_updates_are_stored_and_a_redelivery_is_not_answered_twice(fake, quick_assistant, store):
    chat = 501
    update = fake.message_update("How long does a refund take?", chat_id=chat, user_id=chat)
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(update)
        await fake.wait_for(lambda: store.inbox_item("telegram", str(update["update_id"])) is not None
                            and store.inbox_item("telegram", str(update["update_id"])).status == "answered",
                            what="the update answered and marked")
        await fake.redeliver(update)  # e.g. the offset was not confirmed before a restart
        await fake.enqueue(fake.message_update("thanks!", chat_id=chat + 1, user_id=chat + 1))
        await fake.wait_for(lambda: _sent(fake, chat + 1), what="a later update answered")
    assert len(_sent(fake, chat)) == 1


async def test_a_stopped_processs_update_is_answered_by_the_next_start(fake, quick_assistant, store):
    chat = 502
    update = fake.message_update("How do I reset my password?", chat_id=chat, user_id=chat)
    dead = Inbox(store, "telegram", lease_s=0.0)
    dead.accept(str(update["update_id"]), update, str(chat))
    async with running_bot(fake, quick_assistant, store):
        await fake.wait_for(lambda: store.inbox_pending("telegram") == 0, what="the left-over update answered")
    (message,) = _sent(fake, chat)  # one message, the answer
    assert "password" in fake.final_text(chat).lower()
    assert message.params["chat_id"] == chat
