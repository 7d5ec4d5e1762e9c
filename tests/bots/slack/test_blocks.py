"""Block Kit layouts and button values (pure functions, no Slack needed)."""

from __future__ import annotations

from bots.slack.blocks import (
    ACTION_CLOSE,
    ACTION_DOWN,
    ACTION_PERSON,
    ACTION_UP,
    SECTION_LIMIT,
    ConversationRef,
    answer_blocks,
    answer_footer,
    block_texts,
    feedback_ack,
    sections,
    support_blocks,
)
from bots.slack.events import command_message, reply_target
from core.messages import Answer, Citation
from core.store import Escalation


def citation(title: str, url: str | None) -> Citation:
    return Citation(passage_id=title, title=title, source="x.md", snippet="", score=0.8, url=url)


def actions(blocks):
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def escalation(**overrides) -> Escalation:
    values = dict(id=7, platform="slack", conversation_id="T1:C1", thread_id="171.1", user_id="UALICE", user_name="alice",
                  question="Where is my <order>?", transcript="Customer: hi\naskdesk: hello", turn_id=3, status="open",
                  support_ref=None, created_at=0.0)
    values.update(overrides)
    return Escalation(**values)


def test_conversation_ref_survives_a_button_value_and_knows_where_to_reply():
    for ref, target in [
        (ConversationRef("T1:C1", "171.1", 5, "zh"), ("C1", "171.1")),
        (ConversationRef("T1:D1", None, None, "en"), ("D1", None)),
        (ConversationRef("C1", "ask:UALICE", 9), ("UALICE", None)),  # /ask continues in the DM
        # the answer's scope: an escalation from the button is learned in that knowledge base
        (ConversationRef("T1:C1", "171.1", 5, "en", "internal"), ("C1", "171.1")),
    ]:
        again = ConversationRef.from_value(ref.to_value())
        assert again == ref
        assert (again.channel, again.thread_ts) == target
        assert len(ref.to_value()) < 2000  # Slack's limit for a button value
    assert ConversationRef.from_value("not json") is None
    assert ConversationRef.from_value('{"x": 1}') is None
    assert command_message({"team_id": "T1", "channel_id": "C1", "user_id": "UBOB", "text": "hi"}).thread_id == "ask:UBOB"
    assert reply_target("T1:C1", "ask:UBOB") == ("UBOB", None)


def test_every_stored_answer_gets_feedback_buttons_and_refusals_a_person():
    ref = ConversationRef("T1:C1", "171.1", 5)
    assert actions(answer_footer(Answer(text="ok"), ref)) == [ACTION_UP, ACTION_DOWN]
    refused = Answer(text="no", refused=True, mode="refusal")
    assert actions(answer_footer(refused, ref)) == [ACTION_UP, ACTION_DOWN, ACTION_PERSON]
    # Nothing stored (no turn id): no feedback to attach, but a refusal still offers a person.
    assert actions(answer_footer(Answer(text="ok"), ConversationRef("C1"))) == []
    assert actions(answer_footer(refused, ConversationRef("C1"))) == [ACTION_PERSON]


def test_related_articles_are_links_under_a_localised_label_only_when_there_are_some():
    ref = ConversationRef("C1", None, 1, "zh")
    answer = Answer(text="好", language="zh", related=(citation("退款多久到账", "https://help.example/zh/refund"),
                                                       citation("Plain", None)))
    texts = block_texts(answer_footer(answer, ref))
    assert texts[0] == "*相关文章*\n• <https://help.example/zh/refund|退款多久到账>\n• Plain"
    assert not any("Related" in t or "相关" in t for t in block_texts(answer_footer(Answer(text="x"), ref)))


def test_feedback_replies_are_in_the_answers_language():
    text, blocks = feedback_ack(ConversationRef("C1", None, 1, "zh"), positive=True)
    assert text == "感谢您的反馈！" and block_texts(blocks) == ["感谢您的反馈！"]
    text, blocks = feedback_ack(ConversationRef("C1", None, 1, "en"), positive=False)
    assert text.startswith("Sorry this didn't help") and actions(blocks) == [ACTION_PERSON]
    assert "Talk to a person" in block_texts(blocks)


def test_long_text_is_split_into_valid_sections():
    blocks = answer_blocks("word " * 2000)
    assert len(blocks) >= 4 and all(len(b["text"]["text"]) <= SECTION_LIMIT for b in blocks)
    assert sections("") == []


def test_support_post_shows_who_what_where_and_closes():
    headline, blocks = support_blocks(escalation())
    shown = "\n".join(block_texts(blocks))
    assert headline == "Escalation #7: <@UALICE> asked for a person in <#C1>"
    assert "&lt;order&gt;" in shown and "Customer: hi" in shown  # customer text is escaped
    assert actions(blocks) == [ACTION_CLOSE]
    _, closed = support_blocks(escalation(), closed_by="UAGENT")
    assert actions(closed) == [] and "Closed by <@UAGENT>" in "\n".join(block_texts(closed))
    assert "a direct message" in support_blocks(escalation(conversation_id="T1:D9", thread_id=""))[0]
    assert "`/ask` in <#C1>" in support_blocks(escalation(thread_id="ask:UALICE"))[0]


def test_a_transcript_that_escaping_makes_too_long_is_cut_by_whole_lines():
    lines = [f"Customer: line {n} " + "<" * 200 for n in range(30)]  # each '<' is four characters escaped
    _, blocks = support_blocks(escalation(transcript="\n".join(lines)))
    (transcript,) = [b["text"]["text"] for b in blocks if b.get("text", {}).get("text", "").startswith("*Transcript*")]
    assert len(transcript) <= SECTION_LIMIT
    shown = transcript.removeprefix("*Transcript*\n```\n").removesuffix("\n```").splitlines()
    assert shown[0] == "…" and shown[-1].startswith("Customer: line 29 ")
    assert all(line.replace("&lt;", "<") in lines for line in shown[1:]), "whole lines only"
