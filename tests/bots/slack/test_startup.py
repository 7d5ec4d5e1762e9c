"""Start-up checks: missing or invalid tokens stop `askdesk serve slack` with a message naming the token."""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time

import pytest

from bots.slack.serve import run
from core.errors import ConfigError
from tests.bots.slack.conftest import slack_settings
from tests.fakes.slack_api import FakeSlack


def args(http: bool = True) -> argparse.Namespace:
    return argparse.Namespace(http=http, host="127.0.0.1", port=0)


async def start_fails(fake, settings, tmp_path, http: bool = True, **overrides) -> str:
    slack = slack_settings(fake, **overrides)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        await run(args(http), settings.model_copy(update={"db_path": tmp_path / "db.sqlite"}), slack)
    assert time.perf_counter() - started < 5, "token checks must run before the models load"
    return str(caught.value)


async def test_invalid_bot_token_names_slack_bot_token_and_the_reason(fake, settings, tmp_path):
    message = await start_fails(fake, settings, tmp_path, bot_token="xoxb-revoked-or-wrong")
    assert "SLACK_BOT_TOKEN" in message and "invalid_auth" in message
    assert [c.method for c in fake.calls] == ["auth.test"]


async def test_missing_or_wrong_kind_of_bot_token(fake, settings, tmp_path):
    assert "SLACK_BOT_TOKEN is not set" in await start_fails(fake, settings, tmp_path, bot_token=None)
    assert "xoxb-" in await start_fails(fake, settings, tmp_path, bot_token="xapp-1-not-a-bot-token")
    assert fake.calls == []


async def test_invalid_app_token_names_slack_app_token(fake, settings, tmp_path):
    message = await start_fails(fake, settings, tmp_path, http=False, app_token="xapp-wrong")
    assert "SLACK_APP_TOKEN" in message and "invalid_auth" in message
    assert "SLACK_APP_TOKEN" in await start_fails(fake, settings, tmp_path, http=False, app_token="xoxb-wrong-kind")


async def test_http_mode_needs_the_signing_secret_and_some_mode_is_needed(fake, settings, tmp_path):
    assert "SLACK_SIGNING_SECRET" in await start_fails(fake, settings, tmp_path, signing_secret=None)
    message = await start_fails(fake, settings, tmp_path, http=False, app_token=None)
    assert "SLACK_APP_TOKEN" in message and "--http" in message


async def test_unreachable_slack_is_reported(fake, settings, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    message = await start_fails(fake, settings, tmp_path, api_base_url=f"http://127.0.0.1:{closed_port}/api/")
    assert "Could not reach" in message and "SLACK_BOT_TOKEN" in message


@pytest.fixture
def fake_in_thread():
    """The fake on its own loop, for the synchronous CLI (which runs its own event loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(FakeSlack().start(), loop).result(10)
    yield server
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_cli_prints_the_token_problem_and_exits_2(fake_in_thread, monkeypatch, capsys, tmp_path):
    from bots.cli import main

    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-wrong")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("SLACK_API_BASE_URL", fake_in_thread.api_url)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert main(["serve", "slack", "--http", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "error: Slack rejected SLACK_BOT_TOKEN: auth.test answered 'invalid_auth'" in err
    assert "Traceback" not in err
