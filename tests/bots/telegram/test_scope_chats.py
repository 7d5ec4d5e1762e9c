"""Scopes through the real Telegram bot: private chats get the help centre, an unknown group a refusal."""

from __future__ import annotations

import pytest

from tests.bots.telegram.conftest import running_bot
from tests.conftest import make_settings
from tests.fakes.telegram_api import BOT_USERNAME


def _texts(fake, chat_id: int) -> list[str]:
    return [m["visible"] for (c, _), m in sorted(fake.messages.items()) if c == chat_id]


@pytest.fixture()
def scoped_assistant(tmp_path, sample_index):
    """One scope (the sample help centre) for private chats and one partner group; other groups unknown."""
    from core.assistant import Assistant
    from tests.conftest import SAMPLE_KB

    path = tmp_path / "scopes.yaml"
    path.write_text(f"""
unknown: refuse
scopes:
  - name: customers
    kb_dir: {SAMPLE_KB}
    index_dir: {sample_index}
    audiences:
      - {{platform: telegram, chat_types: [private]}}
      - {{platform: telegram, chats: [-1009]}}
""", encoding="utf-8")
    return Assistant(make_settings(scopes_file=path, answer_mode="compose"), remember=False)


async def test_private_and_partner_group_answered_other_groups_refused(fake, scoped_assistant, store):
    question = "How do I return an item?"
    async with running_bot(fake, scoped_assistant, store):
        await fake.enqueue(fake.message_update(question, chat_id=81))
        await fake.enqueue(fake.message_update(f"@{BOT_USERNAME} {question}", chat_id=-1009, chat_type="supergroup"))
        await fake.enqueue(fake.message_update(f"@{BOT_USERNAME} {question}", chat_id=-1005, chat_type="group"))
        await fake.wait_for(lambda: any("Sources" in t for t in _texts(fake, 81))
                            and any("Sources" in t for t in _texts(fake, -1009))
                            and any("isn't set up" in t for t in _texts(fake, -1005)), what="three replies")
    refused = _texts(fake, -1005)
    assert not any("Sources" in t or "return" in t.lower() for t in refused), refused
    buttons = [c for c in fake.calls_to("sendMessage", "editMessageText")
               if str(c.params.get("chat_id")) == "-1005" and c.params.get("reply_markup")]
    assert not any("person" in str(c.params["reply_markup"]).lower() for c in buttons)  # no hand-off offered
