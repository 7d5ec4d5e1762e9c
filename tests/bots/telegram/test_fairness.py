"""A flood from one Telegram user: one "please ask again", not one per message turned away.

Through the fake Bot API with a fixed answer (tests/fakes/assistant.py): no index or model.
"""

from __future__ import annotations

import asyncio

from core.language import phrase
from tests.bots.telegram.conftest import running_bot
from tests.bots.test_images import ANSWER
from tests.conftest import make_settings
from tests.fakes.assistant import FixedAnswerAssistant


async def test_a_user_over_the_limit_is_told_once_not_once_per_message(fake, store):
    assistant = FixedAnswerAssistant(ANSWER, settings=make_settings(per_user_per_minute=2))
    async with running_bot(fake, assistant, store):
        for n in range(5):  # a chat's messages are handled in order: 2 answered, 3 over the limit
            await fake.enqueue(fake.message_update(f"question number {n}", chat_id=42, user_id=7))
        # Another user in the same chat, after them: once it is answered, all five were handled.
        await fake.enqueue(fake.message_update("and mine?", chat_id=42, user_id=8))
        await fake.wait_for(lambda: len(_answers(fake)) == 3, what="two of the flood and the other user answered")
    texts = [m["visible"] for (chat, _), m in sorted(fake.messages.items()) if chat == 42]
    assert texts.count(phrase("slow_down")) == 1
    assert len(texts) == 4  # 3 answers and one "please ask again"; the last two are not replied to


def _answers(fake) -> list[str]:
    return [m["visible"] for (chat, _), m in fake.messages.items() if chat == 42 and "Sources" in m["visible"]]


class _HeldAssistant(FixedAnswerAssistant):
    """Answers only once ``go`` is set, so questions pile up behind the first."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.go = asyncio.Event()

    async def stream(self, message):  # type: ignore[override]
        await self.go.wait()
        async for part in super().stream(message):
            yield part


async def test_questions_waiting_behind_their_chats_answer_count_against_the_users_waiting_limit(fake, store):
    """A private chat's questions wait for the chat's answer in progress; that wait must count
    against the per-user waiting limit, or one person queues without bound (only the per-minute
    limit ever turned anyone away on Telegram)."""
    assistant = _HeldAssistant(ANSWER, settings=make_settings(per_user_concurrent=1, per_user_waiting=2,
                                                              per_user_per_minute=1000))
    async with running_bot(fake, assistant, store):
        for n in range(6):  # one answering, two waiting, three over the limit (the first of them told)
            await fake.enqueue(fake.message_update(f"question number {n}", chat_id=42, user_id=7))
        await fake.wait_for(lambda: phrase("slow_down") in _texts(fake), what="the user told to slow down")
        assistant.go.set()
        await fake.wait_for(lambda: len(_answers(fake)) == 3, what="the three admitted questions answered")
        await asyncio.sleep(0.3)
    assert _texts(fake).count(phrase("slow_down")) == 1
    assert len(_answers(fake)) == 3 and len(_texts(fake)) == 4


def _texts(fake) -> list[str]:
    return [m["visible"] for (chat, _), m in sorted(fake.messages.items()) if chat == 42]
