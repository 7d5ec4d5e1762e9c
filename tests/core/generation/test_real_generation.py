"""End to end with the real bundled model (slow, still run in CI)."""

from __future__ import annotations

import pytest

from core.generation.prompt import INSTRUCTIONS, build_messages
from core.generation.verification import verify_answer
from core.messages import IncomingMessage
from tests.conftest import eval_questions

pytestmark = pytest.mark.slow

QUESTIONS = [
    "How long do I have to return an item?",
    "Do you deliver to Australia?",
    "When will I get my money back after returning something?",
    "I forgot my password and can't log in",
    "Do gift cards have an expiry date?",
    "How much is express delivery?",
]


@pytest.fixture(scope="module")
def expected_urls():
    return dict(eval_questions())


def _passage(assistant, passage_id):
    return next(p for p in assistant.retriever.index.passages if p.passage_id == passage_id)


def test_answers_cite_the_right_article_and_are_verified(assistant, expected_urls):
    """At least 5 of 6 questions cite the expected article; every answer is either generated and
    verified, or the extractive fallback quoting its cited passage — the output shows which."""
    right = 0
    for question in QUESTIONS:
        streamed: list[str] = []
        answer = assistant.answer(IncomingMessage(text=question), on_delta=streamed.append)
        print(f"\n{question}\n  mode={answer.mode} reason={answer.rejected_reason}\n  {answer.text}")
        assert not answer.refused and answer.citations
        right += expected_urls[question] in {c.url for c in answer.citations}
        cited = [_passage(assistant, c.passage_id) for c in answer.citations]
        if answer.mode == "generated":
            # Streamed as produced (possibly cut back to its verified start), and it passes the check.
            assert "".join(streamed).strip().startswith(answer.text)
            assert verify_answer(answer.text, cited, question, INSTRUCTIONS).ok
        else:
            # The draft was rejected: the answer quotes the cited passage and records why.
            assert answer.mode == "extractive" and answer.rejected_reason
            quote = answer.text.split("“", 1)[1].rsplit("”", 1)[0]
            words = " ".join(cited[0].text.split())
            assert all(sentence.strip() in words for sentence in quote.split(". ") if sentence.strip())
    assert right >= 5


def test_the_model_streams_text_for_a_grounded_prompt(assistant):
    hits = assistant.retriever.search("Which countries do you ship to?", 3)
    deltas = list(assistant.generator.stream(build_messages("Which countries do you ship to?", [h.passage for h in hits]), 24))
    assert len(deltas) > 3 and "".join(deltas).strip()
    assert "Passage" not in "".join(deltas)
