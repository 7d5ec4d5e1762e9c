"""Bad input at both HTTP endpoints: a clear 4xx with the reason, nothing read before
authentication beyond the body limit, nothing posted to the platform, and the bot keeps serving.

Includes a hypothesis fuzz of both endpoints, signed and unsigned (a moderate example count;
``python -m benchmarks ops_fuzz`` runs ten thousand and more).
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from bots.telegram.serve import Webhook, start_webhook_server
from tests.bots.slack.conftest import fake, recording, running  # noqa: F401 - the Slack bot fixtures
from tests.bots.telegram.conftest import free_port
from tests.fakes.slack_api import SIGNING_SECRET, event_callback, mention, sign

SECRET = "s3cret_Token-for-tests"


def _signed(body: bytes, timestamp: str | None = None) -> dict[str, str]:
    headers = sign(SIGNING_SECRET, body.decode("utf-8", "surrogateescape"))
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    return headers


def _signed_bytes(body: bytes) -> dict[str, str]:
    """Sign raw bytes (also ones that are not UTF-8) the way Slack would."""
    import hashlib
    import hmac

    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def _event(**event_overrides) -> bytes:
    event = mention("How do I return an item?", ts="1700000201.000100")
    event.update(event_overrides)
    return json.dumps(event_callback(event)).encode()


#: The malformed requests that used to end in a 500 (or worse), each with the status it must get.
MALFORMED: dict[str, tuple[bytes, dict[str, str] | None, str, int]] = {
    "non-numeric timestamp": (_event(), {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
                              "application/json", 400),
    "fractional timestamp": (_event(), {"X-Slack-Request-Timestamp": "1.5", "X-Slack-Signature": "v0=00"},
                             "application/json", 400),
    "invalid UTF-8": (b'{"type": "event_callback", "x": "\xff\xfe"}', None, "application/json", 400),
    "deep JSON nesting": (b"[" * 100_000 + b"]" * 100_000, None, "application/json", 400),
    "JSON array body": (b'[{"type": "event_callback"}]', None, "application/json", 400),
    "JSON string body": (b'"event_callback"', None, "application/json", 400),
    "JSON null body": (b"null", None, "application/json", 400),
    "numeric text": (_event(text=42), None, "application/json", 400),
    "event is a list": (json.dumps({"type": "event_callback", "event_id": "Ev1", "event": []}).encode(), None,
                        "application/json", 400),
    "numeric type": (json.dumps({"type": 7, "event": {}}).encode(), None, "application/json", 400),
    "interaction payload not JSON": (b"payload=%7Bnot-json", None, "application/x-www-form-urlencoded", 400),
    "interaction payload a list": (b"payload=%5B1%2C2%5D", None, "application/x-www-form-urlencoded", 400),
    "form with invalid UTF-8 escapes": (b"command=%2Fask&text=%FF%FE", None, "application/x-www-form-urlencoded", 400),
    "body over the limit": (b"x" * (1024 * 1024 + 10), None, "application/json", 413),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
async def test_slack_malformed_signed_requests_get_a_4xx_and_nothing_is_posted(running, fake, kind):
    body, headers, content_type, expected = MALFORMED[kind]
    async with running.session.post(running.url, data=body,
                                    headers={"Content-Type": content_type, **(headers or _signed_bytes(body))}) as resp:
        status, text = resp.status, await resp.text()
    assert status == expected, (kind, status, text)
    assert "error" in json.loads(text)
    assert await running.bot.drain(timeout=10)
    assert fake.posting_calls == []


async def test_slack_body_limit_is_checked_before_the_signature(running):
    """An unsigned huge body is refused on its Content-Length alone (413), not read and then 401."""
    async with running.session.post(running.url, data=b"x" * (2 * 1024 * 1024),
                                    headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413


async def _webhook(fake, quick_assistant, store, **kwargs):
    from bots.telegram.app import BotOptions, build_application

    application = build_application(fake.token, quick_assistant, store, api_urls=fake.api_urls,
                                    options=BotOptions())
    port = free_port()
    webhook = Webhook(url=f"http://127.0.0.1:{port}/telegram", secret=SECRET, host="127.0.0.1", port=port)
    runner = await start_webhook_server(application, webhook, **kwargs)
    return application, runner, webhook


@pytest.fixture()
async def telegram_webhook(quick_assistant, tmp_path):
    from core.store import Store
    from tests.fakes.telegram_api import FakeTelegramAPI

    store = Store(tmp_path / "askdesk.db")
    async with FakeTelegramAPI() as fake:
        application, runner, webhook = await _webhook(fake, quick_assistant, store, max_body=64 * 1024)
        yield application, webhook, fake
        await runner.cleanup()
    store.close()


async def test_telegram_webhook_refuses_without_the_secret_before_reading_the_body(telegram_webhook):
    application, webhook, _ = telegram_webhook
    # A client announcing 90 MB without the secret gets its 403 after sending only the headers.
    reader, writer = await asyncio.open_connection(webhook.host, webhook.port)
    writer.write(f"POST /telegram HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {90 * 1024 * 1024}\r\n\r\n".encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    writer.close()
    assert b" 403 " in status_line
    assert application.update_queue.qsize() == 0


@pytest.mark.parametrize("body, expected", [
    (b"x" * (64 * 1024 + 1), 413),
    (b"\xff\xfe", 400),
    (b"[1, 2]", 400),
    (b'{"update_id": "one"}', 400),
    (b"[" * 20_000 + b"]" * 20_000, 400),
    (b'{"update_id": 5, "message": 7}', 400),
])
async def test_telegram_webhook_bad_bodies_with_the_secret_get_a_4xx(telegram_webhook, body, expected):
    application, webhook, _ = telegram_webhook
    async with aiohttp.ClientSession() as session:
        async with session.post(webhook.url, data=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
            assert resp.status == expected
    assert application.update_queue.qsize() == 0


async def test_telegram_webhook_queues_a_good_update(telegram_webhook):
    application, webhook, fake = telegram_webhook
    update = fake.message_update("How do I return an item?", chat_id=91)
    async with aiohttp.ClientSession() as session:
        async with session.post(webhook.url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
            assert resp.status == 200
    queued = application.update_queue.get_nowait()
    assert queued.update_id == update["update_id"] and queued.message.text == "How do I return an item?"


# ---- fuzzing ---------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
slack_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["event_callback", "url_verification", "block_actions"]) | json_values},
    optional={"event": json_values | st.fixed_dictionaries({"type": st.sampled_from(["app_mention", "message"]) | json_values},
                                                           optional={"text": json_values, "user": json_values,
                                                                     "channel": json_values, "ts": json_values}),
              "event_id": json_values, "challenge": json_values},
)
bodies = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                   slack_like.map(lambda v: json.dumps(v).encode()))


@hsettings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, signed=st.booleans(), form=st.booleans())
def test_fuzz_slack_endpoint_never_5xx_and_unsigned_never_posts(fuzz_slack, body, signed, form):
    loop, running, fake = fuzz_slack
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    headers = {"Content-Type": content_type, **(_signed_bytes(body) if signed else {})}

    async def send() -> int:
        async with running.session.post(running.url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    posts_before = len(fake.posting_calls)
    status = loop.run_until_complete(send())
    assert status < 500, (body, signed, status)
    if not signed:
        assert status == 401 or status == 400
        assert len(fake.posting_calls) == posts_before


@pytest.fixture(scope="module")
def fuzz_slack(quick_assistant, tmp_path_factory):
    """One bot for all fuzz examples (hypothesis calls the test many times), on its own loop."""
    from tests.bots.slack.conftest import RecordingAssistant, start_bot
    from core.store import Store
    from tests.fakes.slack_api import FakeSlack

    loop = asyncio.new_event_loop()
    folder = tmp_path_factory.mktemp("fuzz")
    store = Store(folder / "askdesk.db")
    fake = loop.run_until_complete(FakeSlack().start())
    running = loop.run_until_complete(start_bot(fake, RecordingAssistant(quick_assistant, store=store),
                                                folder / "askdesk.db"))
    yield loop, running, fake
    loop.run_until_complete(running.stop())
    loop.run_until_complete(fake.close())
    store.close()
    loop.close()
