"""The grounding check: invented specifics, unsupported sentences, degenerate output."""

from __future__ import annotations

import pytest

from core.generation.verification import verify_answer
from core.retrieval.passages import Passage

RETURNS = Passage(
    passage_id="returns.md#0", doc_id="returns.md", title="Return window", source="returns.md",
    text="Most items can be returned within 30 days of delivery. Electronics have a shorter window of 15 days. "
    "Items must be unused and in their original packaging.",
)
SHIPPING = Passage(
    passage_id="shipping.md#0", doc_id="shipping.md", title="Shipping destinations", source="shipping.md",
    text="We ship only to the United States, Canada and the European Union. Standard shipping costs $5.99.",
)
PASSAGES = [RETURNS, SHIPPING]


def test_supported_answer_passes_and_cites():
    verdict = verify_answer("You can return most items within 30 days of delivery [1].", PASSAGES, "How long to return?")
    assert verdict.ok, verdict.reason
    assert verdict.cited == [1]


def test_uncited_supported_answer_gets_the_matching_passage():
    verdict = verify_answer("We ship to the United States, Canada and the European Union.", PASSAGES)
    assert verdict.ok and verdict.cited == [2]


@pytest.mark.parametrize(
    "answer, invented",
    [
        ("We ship to the United States, Canada and Australia [2].", "australia"),
        ("Returns are accepted within 45 days of delivery [1].", "45"),
        ("There is a 1.5% restocking fee on returns [1].", "1.5"),
        ("Standard shipping costs $7.99 [2].", "7.99"),
        ("Use the order code NW-1234 when returning [1].", "1234"),
        ("Email returns@example.com to return items within 30 days [1].", "returns@example.com"),
        ("Returns are accepted within sixty days of delivery [1].", "60"),
    ],
)
def test_invented_specifics_are_caught(answer, invented):
    verdict = verify_answer(answer, PASSAGES, "How do returns work?")
    assert not verdict.ok
    assert "specifics" in verdict.reason and invented in verdict.unsupported


def test_each_sentence_is_bound_to_its_own_passage_and_cited():
    verdict = verify_answer("Most items can be returned within 30 days of delivery. Standard shipping costs $5.99.", PASSAGES)
    assert verdict.ok, verdict.reason
    assert verdict.cited == [1, 2]


def test_one_sentence_joining_claims_of_two_passages_is_not_supported_by_either():
    verdict = verify_answer("Returns take 30 days [1], and standard shipping costs $5.99.", PASSAGES)
    assert not verdict.ok


def test_specifics_only_in_the_question_are_not_support():
    verdict = verify_answer("Yes, 3 weeks is within the 30 days of delivery for most items [1].", PASSAGES, "Can I return after 3 weeks?")
    assert not verdict.ok and "3" in verdict.unsupported


def test_unsupported_sentence_is_rejected():
    verdict = verify_answer(
        "Most items can be returned within 30 days [1]. Our loyalty programme gives members priority treatment always.",
        PASSAGES,
    )
    assert not verdict.ok and "not supported" in verdict.reason


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("", "empty"),
        ("[1]", "empty"),
        ("return return return return return return return return return return return return", "repeats"),
        ("Items can be returned. Items can be returned. Items can be returned.", "repeat"),
        ("You are a helpful customer support assistant for the store.", "instructions"),
    ],
)
def test_degenerate_answers_are_rejected(answer, reason):
    instructions = "You are a helpful customer support assistant. If you do not know, say so."
    verdict = verify_answer(answer, PASSAGES, instructions=instructions)
    assert not verdict.ok and reason in verdict.reason


def test_citation_of_a_passage_not_given_is_rejected():
    verdict = verify_answer("Most items can be returned within 30 days [4].", PASSAGES)
    assert not verdict.ok and "not given" in verdict.reason


def test_answer_that_only_restates_the_question_is_rejected():
    verdict = verify_answer("火星的首都是", PASSAGES, "火星的首都是哪里？")
    assert not verdict.ok and "restates" in verdict.reason


def test_list_numbering_is_not_a_specific():
    verdict = verify_answer("1. Items can be returned within 30 days of delivery.\n2. Electronics within 15 days.", PASSAGES)
    assert verdict.ok, verdict.reason


def test_talk_about_the_passages_is_not_an_answer():
    verdict = verify_answer("Passages [1] and [2] are for the return of items.", PASSAGES)
    assert not verdict.ok and "passages" in verdict.reason


def test_how_long_question_needs_a_number_in_the_answer():
    question = "How long do I have to return an item?"
    assert not verify_answer("Items must be unused and in their original packaging [1].", PASSAGES, question).ok
    assert verify_answer("Most items can be returned within 30 days of delivery [1].", PASSAGES, question).ok
    assert not verify_answer("退货需要保持原包装。", PASSAGES, "退货期限是多久？").ok


def test_prompt_carries_earlier_questions_not_answers():
    from core.generation.prompt import build_messages
    from core.messages import HistoryTurn

    history = [HistoryTurn("user", "How long does a refund take?"), HistoryTurn("assistant", "5-10 business days.")]
    messages = build_messages("and for gift cards?", PASSAGES, history)
    assert len(messages) == 2
    assert "Previous question: How long does a refund take?" in messages[-1]["content"]
    assert "5-10 business days." not in messages[-1]["content"]


@pytest.mark.parametrize("answer", ["[1] (Return window)\n[2] (Shipping destinations)", "Passphrase [4] (Return window): 30 days"])
def test_copied_passage_headers_are_not_an_answer(answer):
    verdict = verify_answer(answer, PASSAGES)
    assert not verdict.ok and "headers" in verdict.reason


@pytest.mark.parametrize("answer", ["Question: How do I return an item?", "Article: Return window. Items within 30 days."])
def test_copied_prompt_labels_are_not_an_answer(answer):
    assert not verify_answer(answer, PASSAGES, "How do I return an item?").ok


def test_restating_the_question_in_other_words_order_is_rejected():
    verdict = verify_answer("Can I return items within the window?", PASSAGES, "How do I return items within the window?")
    assert not verdict.ok and "restates" in verdict.reason


def test_prompt_layouts():
    from core.generation.prompt import build_messages, resolve_layout
    from tests.conftest import make_settings

    numbered = build_messages("How long?", PASSAGES, layout="numbered")[-1]["content"]
    plain = build_messages("How long?", PASSAGES, layout="plain")[-1]["content"]
    assert "Passage [1] (Return window)" in numbered and "Passage [2]" in numbered and "[1]" in numbered
    assert "Article: Return window" in plain and "[1]" not in plain
    assert numbered.rstrip().endswith("Question: How long?") and plain.rstrip().endswith("Question: How long?")
    assert resolve_layout(make_settings()) == "plain"  # the bundled 135M model follows it better
    assert resolve_layout(make_settings(generator_model="Qwen/Qwen2.5-1.5B-Instruct")) == "numbered"
    assert resolve_layout(make_settings(generator_backend="openai")) == "numbered"
    assert resolve_layout(make_settings(prompt_layout="numbered")) == "numbered"


@pytest.mark.parametrize(
    "answer",
    ["The answer to this is: Which countries do you ship to?", "Which countries do you ship to? I'm here to help.",
     "We're here to help with orders, shipping and returns."],
)
def test_preamble_and_filler_around_the_question_are_not_an_answer(answer):
    verdict = verify_answer(answer, PASSAGES, "Which countries do you ship to? orders returns")
    assert not verdict.ok


def test_phone_question_needs_a_number():
    assert not verify_answer("We ship to the United States, Canada and the European Union.", PASSAGES,
                             "What's your support phone number?").ok
