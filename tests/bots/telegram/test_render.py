"""Telegram HTML: escaping, the Markdown subset, splitting long answers, through the real send path."""

from __future__ import annotations

import pytest

from bots.telegram.app import build_application
from bots.telegram.delivery import StreamedReply
from bots.telegram.render import MESSAGE_LIMIT, markdown_to_html, render_answer, split_markdown, telegram_length
from core.messages import Answer, Citation
from tests.bots.telegram.conftest import running_bot
from tests.conftest import make_settings
from tests.fakes.telegram_api import check_telegram_html, utf16_len


@pytest.mark.parametrize(
    ("source", "html", "visible"),
    [
        ("a < b & c > d", "a &lt; b &amp; c &gt; d", "a < b & c > d"),
        ("<b>not a tag</b>", "&lt;b&gt;not a tag&lt;/b&gt;", "<b>not a tag</b>"),
        ("**bold** and *it*", "<b>bold</b> and <i>it</i>", "bold and it"),
        ("snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4"),
        ("[Returns](https://h.example/r?a=1&b=2)", '<a href="https://h.example/r?a=1&amp;b=2">Returns</a>', "Returns"),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))", "[x](javascript:alert(1))"),
        ("use `a<b && c`", "use <code>a&lt;b &amp;&amp; c</code>", "use a<b && c"),
        ("- one\n* two", "• one\n• two", "• one\n• two"),
        ("## Heading", "<b>Heading</b>", "Heading"),
        ("```py\nif a < b:\n```", '<pre><code class="language-py">if a &lt; b:</code></pre>', "if a < b:"),
        ("**unclosed <b", "**unclosed &lt;b", "**unclosed <b"),
    ],
)
def test_markdown_to_html(source, html, visible):
    converted = markdown_to_html(source)
    assert converted == html
    error, shown = check_telegram_html(converted)
    assert error is None and shown == visible


def test_split_never_cuts_tags_and_fits_after_escaping():
    paragraph = "Return **items** within 30 days & keep the <receipt>. " * 12
    text = "\n\n".join(f"{n}. {paragraph}" for n in range(40)) + "\n\n```\n" + "x < y\n" * 900 + "```"
    chunks = split_markdown(text)
    assert len(chunks) > 3
    for chunk in chunks:
        assert telegram_length(chunk.html) <= MESSAGE_LIMIT
        assert check_telegram_html(chunk.html)[0] is None


@pytest.fixture(scope="module")
def tricky_assistant(tmp_path_factory):
    """The real pipeline on a KB whose title and text hold HTML-special characters."""
    from core.assistant import Assistant
    from core.retrieval.build import build_index

    root = tmp_path_factory.mktemp("tricky")
    kb = root / "kb"
    kb.mkdir()
    (kb / "returns.md").write_text(
        "---\ntitle: Returns <b>&</b> refunds\nurl: https://help.example/returns?lang=en&src=kb\n---\n"
        "## Return window\nYou can return items within 30 days of delivery. Items marked <b>Final sale</b> "
        "cannot be returned. Refunds & exchanges: if a < b then the smaller refund applies. "
        "Use *Return items* in your_account_page.\n",
        encoding="utf-8",
    )
    settings = make_settings(kb_dir=kb, index_dir=root / "index", max_new_tokens=24, threshold=0.0)
    build_index(settings, kb, root / "index")
    return Assistant(settings)


async def test_kb_html_characters_arrive_escaped(fake, tricky_assistant, store):
    async with running_bot(fake, tricky_assistant, store):
        await fake.enqueue(fake.message_update("Can I return Final sale items within 30 days?", chat_id=90))
        await fake.wait_for(lambda: any("Sources" in m["visible"] for (c, _), m in fake.messages.items() if c == 90),
                            timeout=90, what="the answer")
    calls = [c for c in fake.calls_to("sendMessage", "editMessageText") if c.params["chat_id"] == 90]
    for call in calls:
        assert call.params["parse_mode"] == "HTML"
        error, _ = check_telegram_html(call.params["text"])
        assert error is None, (error, call.params["text"])
    final = calls[-1].params["text"]
    _, visible = check_telegram_html(final)
    assert "Returns <b>&</b> refunds" in visible, "the KB title is shown literally, not as markup"
    assert "Returns &lt;b&gt;&amp;&lt;/b&gt; refunds" in final
    assert 'href="https://help.example/returns?lang=en&amp;src=kb"' in final


async def test_long_answer_is_split_into_valid_messages(fake, store):
    """A 10,000-character answer through the real sending code: several messages ≤ 4096."""
    paragraphs = [
        f"Step {n}: open **Account > Orders** & choose *Return items* for order #{n} if a < b. " * 3
        for n in range(1, 42)
    ]
    text = "\n\n".join(paragraphs)
    assert len(text) >= 10_000
    answer = Answer(
        text=text,
        citations=(Citation(passage_id="p", title="Start a return <now>", source="returns/start.md", snippet="",
                            score=0.9, url="https://help.example/returns/start", number=1),),
        confidence=0.9,
    )

    async def events():
        for n in range(0, len(text), 700):  # streamed like the core does: deltas, then the Answer
            yield text[n : n + 700]
        yield answer

    from core.assistant import Assistant

    # The assistant is not asked anything here (models load lazily): the answer is given.
    application = build_application(fake.token, Assistant(make_settings()), store, api_urls=fake.api_urls)
    async with application.bot:
        reply = StreamedReply(application.bot, 91, interval=0)
        result = await reply.relay(events(), "en")
    assert result is answer

    sends = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == 91]
    assert len(sends) >= 3, "split into several messages"
    messages = [m for (c, _), m in sorted(fake.messages.items()) if c == 91]
    assert len(messages) == len(sends)
    for message in messages:
        assert utf16_len(message["raw"]) <= 4096
        assert check_telegram_html(message["raw"])[0] is None
    shown = "\n\n".join(m["visible"] for m in messages)
    for n in (1, 20, 39):
        assert f"order #{n} if a < b" in shown
    assert messages[-1]["visible"].endswith("[1] Start a return <now>")
    assert [c.params["text"] for c in fake.calls_to("editMessageText")][-1] == messages[0]["raw"]
    assert render_answer(answer, "en")[0].html == messages[0]["raw"]


def test_related_articles_follow_the_sources_in_the_answer_language():
    def cite(n: int, title: str, url: str | None) -> Citation:
        return Citation(passage_id=f"p{n}", title=title, source=f"{n}.md", snippet="", score=0.5, url=url, number=n)

    answer = Answer(text="退货期限为 30 天 [1]", citations=(cite(1, "退货期限", "https://h.example/zh/return"),),
                    related=(cite(0, "退款 <时间>", "https://h.example/zh/refund"), cite(0, "No link", None)),
                    language="zh")
    [chunk] = render_answer(answer, "zh")
    error, visible = check_telegram_html(chunk.html)
    assert error is None
    assert visible == "退货期限为 30 天 [1]\n\n来源\n[1] 退货期限\n\n相关文章\n• 退款 <时间>\n• No link"
    assert '<a href="https://h.example/zh/refund">退款 &lt;时间&gt;</a>' in chunk.html
    assert chunk.plain.endswith("相关文章:\n• 退款 <时间> — https://h.example/zh/refund\n• No link")
    assert "Related" not in render_answer(Answer(text="x", language="en"), "en")[0].html, "none: no label"
