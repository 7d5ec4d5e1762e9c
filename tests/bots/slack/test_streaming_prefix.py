"""A user never sees text that is later taken back: every streamed edit is the start of the final message.

End to end: the real bot (Events API over HTTP) against the fake Slack, the real core pipeline on the
sample knowledge base, and a scripted generator in place of the model. Every text the fake received
for the answer's message(s) — ``chat.postMessage`` and each ``chat.update``, their ``text`` and the text
of their section blocks — must be the start of that message's final text.
"""

from __future__ import annotations

import json

import pytest

from bots.slack.render import render_answer, render_partial
from core.assistant import Assistant
from core.messages import Answer, Citation
from core.store import Store
from tests.bots.slack.conftest import start_bot
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
from tests.fakes.slack_api import BOT_ID, FakeSlack, mention

CHANNEL = "C0GENERAL"


def _sections(call) -> list[str]:
    blocks = call.args.get("blocks")
    if isinstance(blocks, str):  # form-encoded calls send blocks as a JSON string
        blocks = json.loads(blocks)
    return [b["text"]["text"] for b in blocks or [] if b.get("type") == "section"]


def shown_per_message(fake: FakeSlack) -> dict[str, list[str]]:
    """Every ``text`` each bot message in the channel showed, in order (post, then updates).

    A call with blocks must show the same: its section blocks start with its text (the footer's
    sections, e.g. related articles, come after it)."""
    ids = [ts for (ch, ts), m in fake.messages.items() if ch == CHANNEL and m.get("bot_id") == BOT_ID]
    posts = [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == CHANNEL]
    assert len(posts) == len(ids)
    calls = {ts: [post] for ts, post in zip(ids, posts)}
    for call in fake.calls_to("chat.update"):
        if call.args.get("channel") == CHANNEL:
            calls[str(call.args["ts"])].append(call)
    for message_calls in calls.values():
        for call in message_calls:
            sections = _sections(call)
            if sections:
                assert "".join(sections).startswith(str(call.args["text"]))
    return {ts: [str(c.args.get("text", "")) for c in message_calls] for ts, message_calls in calls.items()}


async def ask(fake, settings, retriever, tmp_path, question: str, generator: ScriptedGenerator, ts: str):
    store = Store(tmp_path / "askdesk.db")
    config = make_settings(index_dir=settings.index_dir, **generate_overrides())
    assistant = Assistant(config, retriever=retriever, generator=generator, store=store)
    bot = await start_bot(fake, assistant, tmp_path / "askdesk.db", stream_interval=0.05)
    try:
        status, _, _ = await bot.event(mention(question, ts=ts))
        assert status == 200
        await fake.wait_for(lambda: [c for c in fake.calls_to("reactions.remove") if c.args.get("timestamp") == ts],
                            timeout=120, what="the answer")
    finally:
        await bot.stop()
        store.close()
    shown = shown_per_message(fake)
    assert shown, "nothing was posted"
    for message_ts, texts in shown.items():
        final = fake.messages[(CHANNEL, message_ts)]["text"]
        assert texts[-1] == final
        assert not prefix_violations(texts, final), (prefix_violations(texts, final), final)
    return shown, "\n".join(fake.messages[(CHANNEL, t)]["text"] for t in shown)


async def test_an_invented_second_sentence_is_never_shown(fake, settings, retriever, tmp_path):
    generator = ScriptedGenerator(DRAFT_INVENTED, delay=0.02)
    shown, final = await ask(fake, settings, retriever, tmp_path, RETURN_QUESTION, generator, "1700000701.000100")
    assert generator.prompts, "the generator was not asked"
    assert "365" not in final
    assert all("365" not in t for texts in shown.values() for t in texts)


async def test_a_wholly_unsupported_draft_is_never_shown(fake, settings, retriever, tmp_path):
    generator = ScriptedGenerator(DRAFT_UNSUPPORTED, delay=0.02)
    shown, final = await ask(fake, settings, retriever, tmp_path, RETURN_QUESTION, generator, "1700000702.000100")
    assert generator.prompts, "the generator was not asked"
    assert all("puzzle" not in t for texts in shown.values() for t in texts)


async def test_a_long_supported_answer_is_shown_while_written_and_only_grows(fake, settings, retriever, tmp_path):
    generator = ScriptedGenerator(split_deltas(DRAFT_LONG, 6), delay=0.01)
    shown, final = await ask(fake, settings, retriever, tmp_path, RETURN_QUESTION, generator, "1700000703.000100")
    (texts,) = shown.values()
    assert len(set(texts)) >= 3, f"expected several previews before the final text, got {texts}"
    assert "*Sources*" in final and "14 days to drop off" in final
    assert "**" not in "".join(texts)  # bold is sent as mrkdwn bold, never as half-converted Markdown
    assert not any(t.endswith("…") for t in texts)


async def test_a_chinese_answer_streams_as_a_prefix(fake, settings, retriever, tmp_path):
    probe = Assistant(make_settings(index_dir=settings.index_dir, **generate_overrides()), retriever=retriever,
                      generator=ScriptedGenerator(DRAFT_ZH), remember=False)
    assert answers_in_time(probe, ZH_QUESTION), "the core never finished answering the Chinese question"
    generator = ScriptedGenerator(split_deltas(DRAFT_ZH, 3), delay=0.01)
    shown, final = await ask(fake, settings, retriever, tmp_path, ZH_QUESTION, generator, "1700000704.000100")
    assert generator.prompts, "the generator was not asked"
    assert "*来源*" in final


# ---- the preview renderer on its own: every prefix of Markdown-rich text ---------------------
@pytest.mark.parametrize("text", [MARKDOWN_RICH, DRAFT_LONG, DRAFT_ZH])
def test_every_preview_of_every_prefix_is_the_start_of_the_final_message(text):
    citation = Citation("p1", "Returns", "returns.md", "…", 1.0, "https://help.example/returns", 1)
    final = render_answer(Answer(text=text, citations=(citation,)), "en")[0]
    for end in range(1, len(text) + 1):
        preview = render_partial(text[:end])
        assert final.startswith(preview), (text[:end], preview)
    assert render_partial(text)


def test_a_preview_longer_than_one_message_shows_only_what_the_first_message_keeps():
    text = "\n\n".join(f"Paragraph {n}: " + "returns take a few days. " * 12 for n in range(30))
    pieces = render_answer(Answer(text=text), "en", limit=3000)
    assert len(pieces) > 1
    for end in range(200, len(text), 97):
        preview = render_partial(text[:end], limit=3000)
        assert pieces[0].startswith(preview) and len(preview) <= 3000
