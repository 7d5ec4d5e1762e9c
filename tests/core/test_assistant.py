"""The pipeline around generation: input checks, the confidence gate, streaming, fallback."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import InvalidMessageError
from core.messages import Answer, IncomingMessage


@pytest.mark.parametrize("question", ["What is the capital of Mars?", "Write me a poem about cats"])
def test_out_of_scope_questions_are_refused_without_generation(quick_assistant, question, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("the generator must not run for a refused question")

    monkeypatch.setattr(quick_assistant.generator, "stream", no_generation)
    answer = quick_assistant.answer(IncomingMessage(text=question))
    assert answer.refused and answer.mode == "refusal"
    assert "don't know" in answer.text and "person" in answer.text
    assert answer.citations == ()
    assert answer.confidence < quick_assistant.settings.threshold


def test_chinese_out_of_scope_question_is_refused_in_chinese(quick_assistant):
    answer = quick_assistant.answer(IncomingMessage(text="火星的首都是哪里？"))
    assert answer.refused and "人工" in answer.text


@pytest.mark.parametrize("text, expected", [("", "type a question"), ("   \n ", "type a question"), ("x" * 5000, "too long")])
def test_empty_and_huge_messages_get_a_clear_error(quick_assistant, text, expected):
    with pytest.raises(InvalidMessageError, match=expected):
        quick_assistant.answer(IncomingMessage(text=text))


def test_verification_failure_returns_the_extractive_answer(settings, retriever):
    """A fabricated, unsupported draft goes through the real check and is replaced by a composed answer."""
    from core.assistant import Assistant

    fabricated = "You can return items within 90 days, and Australia has free returns with code NW-777."

    class Fabricator:
        name = "fabricator"

        def stream(self, messages, max_new_tokens):
            yield from fabricated.split(" ")[:1]
            yield fabricated[len(fabricated.split(" ")[0]) :]

        def warm_up(self):
            pass

    assistant = Assistant(settings.model_copy(update={"answer_mode": "generate"}), retriever=retriever, generator=Fabricator(), remember=False)
    shown: list[str] = []
    answer = assistant.answer(IncomingMessage(text="How long do I have to return an item?"), on_delta=shown.append)
    assert "90" not in "".join(shown)  # the rejected draft was never shown
    assert answer.mode == "extractive" and not answer.refused
    assert "90" in answer.rejected_reason
    assert "90 days" not in answer.text
    assert "30 days" in answer.text and answer.text.endswith("[1]")
    assert answer.citations[0].url.endswith("/returns/return-window")


def test_an_answer_says_where_its_time_went_stage_by_stage(settings, retriever):
    """Retrieval, the rejected draft, the composed fallback and the stored turn each get their time."""
    import time

    from core.assistant import Assistant
    from core.timeline import STAGES

    class SlowFabricator:
        name = "slow"

        def stream(self, messages, max_new_tokens):
            time.sleep(0.2)
            yield "You can return items within 90 days."

        def warm_up(self):
            pass

    assistant = Assistant(settings.model_copy(update={"answer_mode": "generate"}), retriever=retriever,
                          generator=SlowFabricator(), remember=False)
    answer = assistant.answer(IncomingMessage(text="How long do I have to return an item?"))
    stages = dict(answer.stages)
    assert [name for name, _ in answer.stages] == ["retrieval", "generation", "composition", "record", "other"]
    assert [name for name, _ in answer.stages] == [s for s in STAGES if s in stages], "pipeline order"
    assert stages["generation"] >= 0.2, "the generator's time is the generation stage's"
    assert all(seconds >= 0 for seconds in stages.values())
    assert sum(stages.values()) >= answer.latency_s - 0.01  # the stages account for the whole answer

    composed = Assistant(settings.model_copy(update={"answer_mode": "compose"}), retriever=retriever, remember=False)
    assert "generation" not in dict(composed.answer(IncomingMessage(text="Which countries do you ship to?")).stages)


async def test_a_streamed_answer_counts_its_wait_for_a_worker_as_the_queue_stage(settings, retriever):
    from core.assistant import Assistant

    assistant = Assistant(settings.model_copy(update={"answer_mode": "compose"}), retriever=retriever, remember=False)
    events = [e async for e in assistant.stream(IncomingMessage(text="Which countries do you ship to?"))]
    assert events[-1].stages[0][0] == "queue"


async def test_stream_yields_deltas_then_the_answer(quick_assistant):
    events = [e async for e in quick_assistant.stream(IncomingMessage(text="Which countries do you ship to?"))]
    assert isinstance(events[-1], Answer)
    deltas = [e for e in events[:-1]]
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert events[-1].citations


async def test_stream_does_not_block_the_event_loop(settings, retriever):
    import time

    from core.assistant import Assistant

    class Slow:
        name = "slow"

        def stream(self, messages, max_new_tokens):
            for word in "To reset your password, select Forgot password? on the sign-in page.".split(" "):
                time.sleep(0.05)
                yield word + " "

        def warm_up(self):
            pass

    assistant = Assistant(settings.model_copy(update={"answer_mode": "generate"}), retriever=retriever, generator=Slow(), remember=False)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    async for _ in assistant.stream(IncomingMessage(text="How do I reset my password?")):
        pass
    task.cancel()
    assert ticks >= 3


async def test_stream_raises_input_errors(quick_assistant):
    with pytest.raises(InvalidMessageError):
        async for _ in quick_assistant.stream(IncomingMessage(text="")):
            pass
