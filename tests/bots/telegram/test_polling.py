"""Long polling against the fake Bot API with the real pipeline: the main path end to end."""

from __future__ import annotations

import pytest

from tests.bots.telegram.conftest import running_bot
from tests.fakes.telegram_api import check_telegram_html

QUESTION = "How many days do I have to return an item?"


def _link_targets(html_text: str) -> list[str]:
    import re

    return re.findall(r'<a href="([^"]+)">', html_text)


async def test_polling_question_streams_and_ends_with_sources(fake, quick_assistant, store):
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(fake.message_update(QUESTION, chat_id=42))
        await fake.wait_for(lambda: any("Sources" in m["visible"] for (c, _), m in fake.messages.items() if c == 42),
                            what="the final answer with sources")

    actions = fake.calls_to("sendChatAction")
    assert actions and all(c.params["action"] == "typing" and c.params["chat_id"] == 42 for c in actions)
    sends = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == 42]
    edits = [c for c in fake.calls_to("editMessageText") if c.params["chat_id"] == 42]
    assert len(sends) == 1, "one message, then edits"
    assert edits, "the message is edited as text arrives (at least once: the final text)"
    assert all(c.params["parse_mode"] == "HTML" for c in sends + edits)
    for call in sends + edits:
        error, _ = check_telegram_html(call.params["text"])
        assert error is None, (error, call.params["text"])
    final = edits[-1].params["text"]
    assert "<b>Sources</b>" in final
    assert any(url.startswith("https://help.northwindgoods.example/returns/") for url in _link_targets(final))
    # typing started before the first message
    assert actions[0].at <= sends[0].at


@pytest.mark.slow
async def test_full_length_real_model_end_to_end(fake, assistant, store):
    """The bundled model at its configured length: several preview edits, then the final text."""
    from dataclasses import replace

    from tests.bots.telegram.conftest import FAST

    # Paced at 0.05 s: on its 4-bit weights the bundled model writes a short answer in well under 0.2 s.
    async with running_bot(fake, assistant, store, options=replace(FAST, edit_interval=0.05)):
        await fake.enqueue(fake.message_update(QUESTION, chat_id=43))
        await fake.wait_for(lambda: any("Sources" in m["visible"] for (c, _), m in fake.messages.items() if c == 43),
                            timeout=120, what="the full answer")
    edits = [c for c in fake.calls_to("editMessageText") if c.params["chat_id"] == 43]
    sends = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == 43]
    # Previews have no cursor: every one is the start of the final text (nothing shown is taken back).
    previews = [c for c in sends + edits if "Sources" not in c.params["text"]]
    # The text is shown while it is written (how many previews depends on how long the model writes) ...
    assert previews, "the answer is shown while it is written"
    # ... and edits are paced (0.05 s here), never a burst per token.
    gaps = [b.at - a.at for a, b in zip(previews, previews[1:])]
    assert all(gap >= 0.04 for gap in gaps), gaps
    message = next(m for (c, _), m in fake.messages.items() if c == 43)
    assert "30 days" in message["visible"] or "return" in message["visible"].lower()
