"""A user never sees text that is later taken back: the terminal prints the answer once, in order.

End to end through :func:`bots.terminal.chat.chat` with the real core pipeline on the sample
knowledge base and a scripted generator in place of the model. What is printed while the answer
is written plus what follows it must be exactly the final answer's text: no retraction notice,
no second copy.
"""

from __future__ import annotations

import io
import logging

from bots.terminal.chat import BANNER, chat
from bots.terminal.render import format_sources
from core.assistant import Assistant
from core.messages import Answer
from tests.conftest import make_settings
from tests.fakes.generator import (
    DRAFT_INVENTED,
    DRAFT_LONG,
    DRAFT_UNSUPPORTED,
    DRAFT_ZH,
    RETURN_QUESTION,
    ZH_QUESTION,
    ScriptedGenerator,
    answers_in_time,
    generate_overrides,
    split_deltas,
)


class RecordingOut(io.StringIO):
    """The terminal: remembers every write, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


class Capturing(Assistant):
    """The real assistant, keeping the answers it returned and the deltas it streamed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answers: list[Answer] = []
        self.deltas: list[str] = []

    def answer(self, message, on_delta=None):  # type: ignore[override]
        def relay(delta: str) -> None:
            self.deltas.append(delta)
            if on_delta is not None:
                on_delta(delta)

        answer = super().answer(message, on_delta=relay)
        self.answers.append(answer)
        return answer


def run_chat(settings, retriever, tmp_path, question: str, generator: ScriptedGenerator) -> tuple[str, Capturing]:
    config = make_settings(index_dir=settings.index_dir, db_path=tmp_path / "askdesk.db", **generate_overrides())
    assistant = Capturing(config, retriever=retriever, generator=generator)
    out = RecordingOut()
    assert chat(assistant, inp=io.StringIO(question + "\n"), out=out, conversation_id="prefix-test") == 0
    return out.getvalue(), assistant


def check_printed_once(output: str, assistant: Capturing) -> Answer:
    (answer,) = assistant.answers
    sources = format_sources(answer)
    expected = f"{BANNER}\n\nyou> askdesk> {answer.text}\n" + (sources + "\n" if sources else "") + "\nyou> \n"
    assert output == expected  # the answer exactly once: streamed part, then only the rest
    streamed = "".join(assistant.deltas)
    assert answer.text.startswith(streamed.strip())
    assert "[That draft" not in output and "withdrawn" not in output
    return answer


def test_an_invented_second_sentence_is_never_printed(settings, retriever, tmp_path):
    generator = ScriptedGenerator(DRAFT_INVENTED)
    output, assistant = run_chat(settings, retriever, tmp_path, RETURN_QUESTION, generator)
    answer = check_printed_once(output, assistant)
    assert generator.prompts, "the generator was not asked"
    assert "365" not in output and answer.text


def test_a_wholly_unsupported_draft_is_never_printed(settings, retriever, tmp_path):
    generator = ScriptedGenerator(DRAFT_UNSUPPORTED)
    output, assistant = run_chat(settings, retriever, tmp_path, RETURN_QUESTION, generator)
    check_printed_once(output, assistant)
    assert generator.prompts, "the generator was not asked"
    assert "puzzle" not in output


def test_a_long_supported_answer_is_printed_as_it_is_written(settings, retriever, tmp_path):
    generator = ScriptedGenerator(split_deltas(DRAFT_LONG, 5), delay=0.005)
    output, assistant = run_chat(settings, retriever, tmp_path, RETURN_QUESTION, generator)
    answer = check_printed_once(output, assistant)
    assert len(assistant.deltas) >= 2, "the answer is printed while it is written, not all at the end"
    assert "14 days to drop off" in answer.text


def test_a_chinese_answer_is_printed_once(settings, retriever, tmp_path):
    probe = Assistant(make_settings(index_dir=settings.index_dir, **generate_overrides()), retriever=retriever,
                      generator=ScriptedGenerator(DRAFT_ZH), remember=False)
    assert answers_in_time(probe, ZH_QUESTION), "the core never finished answering the Chinese question"
    generator = ScriptedGenerator(split_deltas(DRAFT_ZH, 3))
    output, assistant = run_chat(settings, retriever, tmp_path, ZH_QUESTION, generator)
    check_printed_once(output, assistant)
    assert generator.prompts, "the generator was not asked"


class _Broken:
    """A core that breaks its promise: streams text that is not the start of its answer."""

    store = None

    def answer(self, message, on_delta=None):
        for delta in ("A draft ", "that was wrong."):
            on_delta(delta)
        return Answer(text="The real answer.", mode="generated")


def test_text_that_is_not_the_start_of_the_answer_is_not_silently_repeated(caplog):
    out = RecordingOut()
    with caplog.at_level(logging.WARNING, logger="bots.terminal.chat"):
        assert chat(_Broken(), inp=io.StringIO("hello there\n"), out=out) == 0  # type: ignore[arg-type]
    assert "askdesk> A draft that was wrong.\nThe real answer.\n" in out.getvalue()
    assert "not the start of the final answer" in caplog.text
