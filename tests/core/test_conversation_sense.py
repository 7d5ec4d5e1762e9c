"""Greetings, thanks, yes/no to the bot's own offers, and follow-ups that never replay answers."""

from __future__ import annotations

import pytest

from core.conversation import small_talk
from core.messages import IncomingMessage


@pytest.fixture()
def assistant(settings, retriever, tmp_path):
    from core.assistant import Assistant
    from core.store import Store

    return Assistant(settings, retriever=retriever, store=Store(tmp_path / "db.sqlite"))


@pytest.mark.parametrize(
    "text, kind",
    [("hello", "greeting"), ("Hi!", "greeting"), ("thanks!", "thanks"), ("Thank you so much", "thanks"),
     ("yes", "yes"), ("yes please", "yes"), ("no thanks", "no"), ("谢谢", "thanks"), ("你好", "greeting"),
     ("hi, how do I return an item?", None), ("thanks, but how long does a refund take?", None)],
)
def test_small_talk_is_recognised_only_on_the_whole_message(text, kind):
    assert small_talk(text) == kind


@pytest.mark.parametrize("text", ["hello", "thanks!", "yes"])
def test_greetings_thanks_and_a_bare_yes_are_not_refused(assistant, text):
    answer = assistant.answer(IncomingMessage(text=text, conversation_id=f"chat-{text}"))
    assert not answer.refused and answer.mode == "smalltalk"
    assert "don't know" not in answer.text


def test_yes_to_the_offer_of_a_person_starts_the_handoff(assistant):
    first = assistant.answer(IncomingMessage(text="What is the capital of Mars?", conversation_id="offer"))
    assert first.refused and first.offers_person
    answer = assistant.answer(IncomingMessage(text="yes", conversation_id="offer"))
    assert answer.handoff
    no = assistant.answer(IncomingMessage(text="What is the capital of Mars?", conversation_id="offer-no"))
    assert no.refused
    declined = assistant.answer(IncomingMessage(text="no thanks", conversation_id="offer-no"))
    assert not declined.handoff and declined.mode == "smalltalk"


@pytest.mark.parametrize("text", ["translate keyboard into french", "tell me a joke about printers",
                                  "who invented bluetooth", "what is 15% of 80", "write a python function to reverse a string"])
def test_requests_no_help_centre_answers_are_refused_before_retrieval(assistant, text):
    answer = assistant.answer(IncomingMessage(text=text, conversation_id=f"off-{text}"))
    assert answer.refused and answer.offers_person


def test_handoff_carries_the_knowledge_bases_own_contact_details(assistant):
    answer = assistant.answer(IncomingMessage(text="I want to talk to a human", conversation_id="human"))
    assert answer.handoff
    assert answer.contact and "+1-800-555-0199" in answer.contact


def test_follow_ups_rewrite_the_search_but_never_replay_earlier_answers(settings, retriever, tmp_path):
    from core.assistant import Assistant
    from core.store import Store

    prompts: list[str] = []

    class Recorder:
        name = "recorder"

        def stream(self, messages, max_new_tokens):
            prompts.append("\n".join(m["content"] for m in messages))
            yield "A refund takes 1 hour."

        def warm_up(self):
            pass

    bot = Assistant(settings.model_copy(update={"answer_mode": "generate"}), retriever=retriever, generator=Recorder(), store=Store(tmp_path / "db.sqlite"))
    bot.answer(IncomingMessage(text="How long does a refund take?", conversation_id="c"))
    second = bot.answer(IncomingMessage(text="and for gift cards?", conversation_id="c"))
    # Only the new question is asked: no earlier answer, no earlier question, no assistant turns.
    assert "How long does a refund take?" not in prompts[-1] and "A refund takes 1 hour" not in prompts[-1]
    assert "A refund takes 1 hour" not in second.text
    assert any("gift-card" in c.source or "gift" in c.title.lower() for c in second.citations)
