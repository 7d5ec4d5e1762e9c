"""The OpenAI-compatible backend against a fake server: streaming, retries, clear errors, and the whole Assistant."""

from __future__ import annotations

import socket
import time

import pytest

from core.errors import ConfigError, GenerationError
from core.generation.factory import create_generator
from core.generation.openai_backend import OpenAIGenerator
from core.messages import IncomingMessage
from tests.conftest import make_settings
from tests.fakes.openai_api import FakeOpenAI

MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Passage [1] (Returns):\nYou can return items within 30 days. Keep the receipt.\n\nQuestion: returns?"}]


@pytest.fixture
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def client(fake, **kwargs):
    options = {"backoff": 0.01, "read_timeout": 5.0}
    options.update(kwargs)
    return OpenAIGenerator(fake.base_url, fake.model, api_key="sk-test", **options)


def test_streams_deltas_from_sse_chunks(fake):
    deltas = list(client(fake).stream(MESSAGES, 64))
    assert len(deltas) > 3
    assert "".join(deltas) == "You can return items within 30 days [1]."
    request = fake.requests[-1]
    assert request["stream"] is True and request["max_tokens"] == 64 and request["temperature"] == 0
    assert request["model"] == "fake-model" and request["messages"] == MESSAGES


def test_max_tokens_is_passed_on(fake):
    assert "".join(client(fake).stream(MESSAGES, 3)) == "You can return "


def test_a_500_once_is_retried(fake):
    fake.fail_first = 1
    assert "".join(client(fake).stream(MESSAGES, 64)).endswith("[1].")
    assert fake.attempts == 2


def test_always_500_gives_a_clear_error(fake):
    fake.always_fail = True
    with pytest.raises(GenerationError, match=r"kept failing \(HTTP 500.*after 3 attempts"):
        list(client(fake, attempts=3).stream(MESSAGES, 64))
    assert fake.attempts == 3


def test_a_hanging_server_times_out_with_a_clear_error(fake):
    fake.hang = True
    started = time.monotonic()
    with pytest.raises(GenerationError, match="did not answer in time.*ASKDESK_OPENAI_READ_TIMEOUT"):
        list(client(fake, read_timeout=0.3, attempts=2).stream(MESSAGES, 64))
    assert time.monotonic() - started < 5
    assert fake.attempts == 2


def test_an_unreachable_server_gives_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    generator = OpenAIGenerator(f"http://127.0.0.1:{port}/v1", "m", attempts=2, backoff=0.01)
    with pytest.raises(GenerationError, match="Could not reach.*ASKDESK_OPENAI_BASE_URL"):
        list(generator.stream(MESSAGES, 8))


def test_a_client_error_is_not_retried(fake):
    generator = OpenAIGenerator(fake.base_url + "/missing", fake.model, backoff=0.01)
    with pytest.raises(GenerationError, match="refused the request \\(HTTP 404"):
        list(generator.stream(MESSAGES, 8))
    assert fake.attempts == 0


def test_a_failure_after_the_first_token_is_not_retried(fake):
    fake.break_after = 2  # the connection drops after two words
    deltas: list[str] = []
    with pytest.raises(GenerationError, match="in the middle of an answer"):
        for delta in client(fake).stream(MESSAGES, 64):
            deltas.append(delta)
    assert "".join(deltas) == "You can " and fake.attempts == 1


def test_factory_needs_url_and_model():
    with pytest.raises(ConfigError, match="ASKDESK_OPENAI_BASE_URL"):
        create_generator(make_settings(generator_backend="openai"))


def test_the_assistant_answers_through_the_openai_backend(fake, settings, retriever):
    from core.assistant import Assistant

    s = settings.model_copy(update={"generator_backend": "openai", "openai_base_url": fake.base_url,
                                    "openai_model": fake.model})
    assistant = Assistant(s, retriever=retriever)
    assert isinstance(assistant.generator, OpenAIGenerator)
    assistant.warm_up()
    deltas: list[str] = []
    answer = assistant.answer(IncomingMessage(text="Which countries do you ship to?"), on_delta=deltas.append)
    assert answer.mode == "generated" and not answer.refused, answer.rejected_reason
    assert answer.text == "".join(deltas).strip() and answer.text.endswith("[1].")
    assert answer.citations and answer.citations[0].number == 1
    prompt = fake.requests[-1]["messages"][-1]["content"]
    assert "Passage [1]" in prompt and "ship" in prompt.lower()


def test_the_assistant_falls_back_to_a_quote_when_the_server_invents(fake, settings, retriever):
    from core.assistant import Assistant

    fake.reply = lambda body: "Returns are accepted within 90 days in Australia [1]."
    s = settings.model_copy(update={"generator_backend": "openai", "openai_base_url": fake.base_url,
                                    "openai_model": fake.model})
    answer = Assistant(s, retriever=retriever).answer(IncomingMessage(text="How long do I have to return an item?"))
    assert answer.mode == "extractive" and "90" in answer.rejected_reason
