"""Markdown → mrkdwn, escaping, sources and splitting (pure functions, no Slack needed)."""

from __future__ import annotations

import pytest

from bots.slack.render import (
    format_sources,
    render_answer,
    render_partial,
    split_mrkdwn,
    to_mrkdwn,
    to_plain,
)
from core.messages import Answer, Citation


def citation(number: int, title: str, url: str | None, source: str = "returns/return-window.md") -> Citation:
    return Citation(passage_id=f"p{number}", title=title, source=source, snippet="", score=0.9, url=url, number=number)


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**Bold** and __also bold__", "*Bold* and *also bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("~~gone~~", "~gone~"),
        ("See [the policy](https://help.example/returns?a=1&b=2).", "See <https://help.example/returns?a=1&amp;b=2|the policy>."),
        ("Visit <https://help.example/x>", "Visit <https://help.example/x>"),
        ("# Returns\n## Steps ##", "*Returns*\n*Steps*"),
        ("- one\n* two\n  + nested\n1. first", "• one\n• two\n  • nested\n1. first"),
        ("> quoted **text**", ">quoted *text*"),
        ("Tom & Jerry <b>hi</b> 1 < 2 > 0", "Tom &amp; Jerry &lt;b&gt;hi&lt;/b&gt; 1 &lt; 2 &gt; 0"),
        ("Use `a<b && **c**`", "Use `a&lt;b &amp;&amp; **c**`"),
        ("```python\nif a < b:\n    print('**x**')\n```", "```\nif a &lt; b:\n    print('**x**')\n```"),
        ("Items within 30 days [1] and 15 days [2].", "Items within 30 days [1] and 15 days [2]."),
        ("2 * 3 * 4", "2 * 3 * 4"),
    ],
)
def test_markdown_becomes_mrkdwn(markdown, mrkdwn):
    assert to_mrkdwn(markdown) == mrkdwn


def test_model_text_can_never_ping_or_inject_slack_markup():
    text = to_mrkdwn("Hey <!channel> <@U123> [click](!here) [js](javascript:alert(1))")
    assert "<!" not in text and "<@" not in text and "<javascript" not in text
    assert "&lt;!channel&gt;" in text and "click (!here)" in text


def test_unclosed_code_fence_while_streaming_stays_code():
    assert to_mrkdwn("Run:\n```\nls <dir>") == "Run:\n```\nls &lt;dir&gt;\n```"


def test_sources_are_links_or_names():
    answer = Answer(text="x", citations=(citation(1, "Return window", "https://help.example/r?x=1&y=2"),
                                         citation(2, "", None, source="faq.csv")))
    assert format_sources(answer) == "*Sources*\n[1] <https://help.example/r?x=1&amp;y=2|Return window>\n[2] faq.csv"
    assert format_sources(answer, "zh").startswith("*来源*")
    assert format_sources(Answer(text="no sources")) == ""


def test_render_answer_appends_sources_and_keeps_each_message_within_the_limit():
    paragraph = "Returns are accepted within thirty days of delivery for unused items. " * 8
    long_text = "\n\n".join([paragraph] * 12)
    answer = Answer(text=long_text, citations=(citation(1, "Return window", "https://help.example/returns/window"),))
    pieces = render_answer(answer, limit=1000)
    assert len(pieces) > 1
    assert all(len(p) <= 1000 for p in pieces)
    assert pieces[-1].endswith("[1] <https://help.example/returns/window|Return window>")


def test_split_never_cuts_a_link_and_rebalances_code_fences():
    links = " ".join(f"<https://help.example/{i}|A rather long link title number {i}>" for i in range(60))
    for piece in split_mrkdwn(links, limit=300):
        assert piece.count("<") == piece.count(">")
        assert len(piece) <= 300
    code = "```\n" + "\n".join(f"line {i} of the code sample" for i in range(80)) + "\n```"
    pieces = split_mrkdwn(code, limit=400)
    assert len(pieces) > 1
    assert all(p.count("```") % 2 == 0 for p in pieces)
    assert all(len(p) <= 400 for p in pieces)


def test_partial_text_shows_progress_within_one_message():
    # No trailing marker: a preview is always the start of the final message (nothing is taken back).
    assert render_partial("Most items **can**") == "Most items *can*"
    assert render_partial("Most items **can") == "Most items"  # bold not closed yet: wait for it
    assert len(render_partial("word " * 2000, limit=500)) <= 500


def test_to_plain_undoes_slack_markup_for_the_model():
    assert to_plain("<@U1> see <https://x.example|the page> &amp; <https://y.example> &lt;3") == "see the page & https://y.example <3"
