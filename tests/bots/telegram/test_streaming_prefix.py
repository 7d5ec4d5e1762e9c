"""A user never sees text that is later taken back: every preview is the start of the final message.

End to end: the real bot (long polling) against the fake Bot API, the real core pipeline on the
sample knowledge base, and a scripted generator in place of the model. Every text the fake
received for the answer's message(s) — the first ``sendMessage`` and each ``editMessageText``,
compared as Telegram shows them (tags stripped, entities unescaped) — must be the start of that
message's final text.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bots.telegram.render import render_answer, render_partial, visible_text
from core.assistant import Assistant
from core.messages import Answer, Citation
from tests.bots.telegram.conftest import FAST, running_bot
from tests.conftest import make_settings
from tests.fakes.generator import (
    MARKDOWN_RICH,
    DRAFT_INVENTED,
    DRAFT_LONG,
    DRAFT_UNSUPPORTED,
    DRAFT_ZH,
    RETURN_QUESTION,
    ZH_QUESTION,
    ScriptedGenerator,
    answers_in_time,
    generate_overrides,
    prefix_violations,
    split_deltas,
)
from tests.fakes.telegram_api import FakeTelegramAPI, check_telegram_html

PACED = replace(FAST, edit_interval=0.05, group_edit_interval=0.05)


def _shown(call) -> str:
    text = str(call.params["text"])
    if call.params.get("parse_mode") == "HTML":
        error, visible = check_telegram_html(text)
        assert error is None, (error, text)
        return visible
    return text


def shown_per_message(fake: FakeTelegramAPI, chat_id: int) -> dict[int, list[str]]:
    """Every text each bot message in ``chat_id`` showed, in order (send, then edits)."""
    ids = sorted(mid for (chat, mid) in fake.messages if chat == chat_id)
    sends = [c for c in fake.sent_to(chat_id) if c.method == "sendMessage"]
    assert len(sends) == len(ids)
    texts = {mid: [_shown(send)] for mid, send in zip(ids, sends)}
    for call in fake.sent_to(chat_id):
        if call.method == "editMessageText":
            texts[int(call.params["message_id"])].append(_shown(call))
    return texts


async def ask(fake, settings, retriever, store, question: str, generator: ScriptedGenerator, chat_id: int):
    config = make_settings(index_dir=settings.index_dir, **generate_overrides())
    assistant = Assistant(config, retriever=retriever, generator=generator, store=store)
    async with running_bot(fake, assistant, store, options=PACED):
        await fake.enqueue(fake.message_update(question, chat_id=chat_id))
        # Done when the feedback buttons are under a message: they come with the final text.
        await fake.wait_for(lambda: any(fake.buttons(c, m) for (c, m) in fake.messages if c == chat_id),
                            timeout=120, what="the final answer")
    texts = shown_per_message(fake, chat_id)
    assert texts, "nothing was sent"
    for mid, shown in texts.items():
        final = fake.messages[(chat_id, mid)]["visible"]
        assert shown[-1] == final
        assert not prefix_violations(shown, final), (prefix_violations(shown, final), final)
    return texts, "\n".join(fake.messages[(chat_id, mid)]["visible"] for mid in sorted(texts))


async def test_an_invented_second_sentence_is_never_shown(fake, settings, retriever, store):
    generator = ScriptedGenerator(DRAFT_INVENTED, delay=0.02)
    texts, final = await ask(fake, settings, retriever, store, RETURN_QUESTION, generator, chat_id=501)
    assert generator.prompts, "the generator was not asked"
    assert "365" not in final
    assert all("365" not in t for shown in texts.values() for t in shown)


async def test_a_wholly_unsupported_draft_is_never_shown(fake, settings, retriever, store):
    generator = ScriptedGenerator(DRAFT_UNSUPPORTED, delay=0.02)
    texts, final = await ask(fake, settings, retriever, store, RETURN_QUESTION, generator, chat_id=502)
    assert generator.prompts, "the generator was not asked"
    assert all("puzzle" not in t for shown in texts.values() for t in shown)


async def test_a_long_supported_answer_is_shown_while_written_and_only_grows(fake, settings, retriever, store):
    generator = ScriptedGenerator(split_deltas(DRAFT_LONG, 6), delay=0.01)
    texts, final = await ask(fake, settings, retriever, store, RETURN_QUESTION, generator, chat_id=503)
    (shown,) = texts.values()
    assert len(shown) >= 3, f"expected several previews before the final text, got {shown}"
    assert "Sources" in final and "14 days to drop off" in final
    assert "**" not in "".join(shown)  # bold is shown as bold, never as half-converted Markdown


async def test_a_chinese_answer_streams_as_a_prefix(fake, settings, retriever, store):
    probe = Assistant(make_settings(index_dir=settings.index_dir, **generate_overrides()), retriever=retriever,
                      generator=ScriptedGenerator(DRAFT_ZH), remember=False)
    assert answers_in_time(probe, ZH_QUESTION), "the core never finished answering the Chinese question"
    generator = ScriptedGenerator(split_deltas(DRAFT_ZH, 3), delay=0.01)
    texts, final = await ask(fake, settings, retriever, store, ZH_QUESTION, generator, chat_id=504)
    assert generator.prompts, "the generator was not asked"
    assert "来源" in final


# ---- the preview renderer on its own: every prefix of Markdown-rich text ---------------------
@pytest.mark.parametrize("text", [MARKDOWN_RICH, DRAFT_LONG, DRAFT_ZH])
def test_every_preview_of_every_prefix_is_the_start_of_the_final_message(text):
    citation = Citation("p1", "Returns", "returns.md", "…", 1.0, "https://help.example/returns", 1)
    final = visible_text(render_answer(Answer(text=text, citations=(citation,)), "en")[0].html)
    for end in range(1, len(text) + 1):
        preview = render_partial(text[:end])
        assert check_telegram_html(preview.html)[0] is None
        assert final.startswith(visible_text(preview.html)), (text[:end], visible_text(preview.html))
    assert visible_text(render_partial(text).html).startswith("Returns" if text is MARKDOWN_RICH else text[:2])


def test_a_preview_longer_than_one_message_shows_only_what_the_first_message_keeps():
    text = "\n\n".join(f"Paragraph {n}: " + "returns take a few days. " * 12 for n in range(40))
    pieces = render_answer(Answer(text=text), "en")
    assert len(pieces) > 1
    first = visible_text(pieces[0].html)
    for end in range(200, len(text), 97):
        assert first.startswith(visible_text(render_partial(text[:end]).html))
