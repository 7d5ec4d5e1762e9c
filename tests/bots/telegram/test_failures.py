"""Things going wrong: flood control, rejected HTML, another instance, bad token, failed answers,
and a clean stop (no tasks or sockets left behind)."""

from __future__ import annotations

import asyncio
import os

import pytest

from bots import cli
from bots.telegram.app import build_application
from bots.telegram.serve import AnotherInstanceError, run_bot
from core.config import get_settings
from core.errors import ConfigError
from tests.bots.telegram.conftest import running_bot
from tests.conftest import SAMPLE_KB, make_settings
from tests.fakes.telegram_api import TOKEN

QUESTION = "How do I reset my password?"


def _final(fake, chat_id: int) -> dict | None:
    return next((m for (c, _), m in sorted(fake.messages.items()) if c == chat_id and "Sources" in m["visible"]), None)


async def test_flood_control_is_waited_out(fake, quick_assistant, store):
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", parameters={"retry_after": 1})
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(fake.message_update(QUESTION, chat_id=100))
        await fake.wait_for(lambda: _final(fake, 100) is not None, what="the answer after flood control")
    attempts = [c for c in fake.calls if c.method == "sendMessage"]
    assert attempts[0].status == 429
    assert attempts[1].status == 200 and attempts[1].params["text"] == attempts[0].params["text"]
    assert attempts[1].at - attempts[0].at >= 1.0, "waited retry_after before retrying"


async def test_rejected_html_is_resent_as_plain_text(fake, quick_assistant, store):
    def is_html(params: dict) -> bool:
        return params.get("parse_mode") == "HTML"

    rejection = "Bad Request: can't parse entities: Unsupported start tag \"b\" at byte offset 0"
    fake.fail_next("sendMessage", 400, rejection, when=is_html, times=100)
    fake.fail_next("editMessageText", 400, rejection, when=is_html, times=100)
    async with running_bot(fake, quick_assistant, store):
        await fake.enqueue(fake.message_update(QUESTION, chat_id=101))
        await fake.wait_for(lambda: _final(fake, 101) is not None, what="the plain-text answer")
    final = _final(fake, 101)
    assert final["parse_mode"] is None
    assert "Sources:\n[1" in final["visible"] and "https://help.northwindgoods.example/" in final["visible"]
    assert [c.status for c in fake.calls if c.method == "sendMessage"][:2] == [400, 200]


async def test_conflict_stops_with_another_instance_message(fake, quick_assistant, store):
    fake.conflict = True
    application = build_application(fake.token, quick_assistant, store, api_urls=fake.api_urls)
    with pytest.raises(AnotherInstanceError, match="another instance of this bot is running"):
        await asyncio.wait_for(run_bot(application, poll_timeout=1), timeout=30)
    assert not application.running
    # stopped at the first conflict (PTB's shutdown makes one more offset-confirming call)
    assert len(fake.calls_to("getUpdates", ok_only=False)) <= 2


async def test_bad_token_is_a_config_error(fake, quick_assistant, store):
    fake.reject_token = True
    application = build_application(fake.token, quick_assistant, store, api_urls=fake.api_urls)
    with pytest.raises(ConfigError, match="rejected TELEGRAM_BOT_TOKEN") as caught:
        await run_bot(application, warm_up=lambda: pytest.fail("models must not load with a bad token"))
    assert TOKEN not in str(caught.value)
    assert [c.method for c in fake.calls] == ["getMe"]


@pytest.fixture()
def cli_env(monkeypatch, tmp_path, sample_index, fake):
    """Environment for ``askdesk serve telegram`` pointed at the fake and the sample index."""
    for key in list(os.environ):
        if key.startswith(("ASKDESK_", "TELEGRAM_")):
            monkeypatch.delenv(key)
    settings = make_settings(index_dir=sample_index)
    monkeypatch.setenv("ASKDESK_KB_DIR", str(SAMPLE_KB))
    monkeypatch.setenv("ASKDESK_INDEX_DIR", str(sample_index))
    monkeypatch.setenv("ASKDESK_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("ASKDESK_DB_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake.token)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", fake.root_url)
    monkeypatch.chdir(tmp_path)  # no stray .env
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_cli_exits_non_zero_on_conflict(fake, cli_env, capsys):
    fake.conflict = True
    code = await asyncio.wait_for(asyncio.to_thread(cli.main, ["serve", "telegram"]), timeout=120)
    assert code != 0
    err = capsys.readouterr().err
    assert "another instance of this bot is running" in err and "Traceback" not in err


async def test_cli_bad_and_missing_token(fake, cli_env, capsys, monkeypatch):
    fake.reject_token = True
    assert await asyncio.to_thread(cli.main, ["serve", "telegram"]) == 2
    err = capsys.readouterr().err
    assert "rejected TELEGRAM_BOT_TOKEN" in err and fake.token not in err

    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    assert await asyncio.to_thread(cli.main, ["serve", "telegram"]) == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in capsys.readouterr().err

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake.token)
    code = await asyncio.to_thread(cli.main, ["serve", "telegram", "--webhook-url", "https://bot.example/tg"])
    assert code == 2
    assert "TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err


async def test_failure_while_answering_apologises_and_keeps_serving(fake, settings, store):
    from core.assistant import Assistant

    broken = Assistant(settings.model_copy(update={"generator_model": "/nonexistent/model.gguf"}))
    async with running_bot(fake, broken, store):
        await fake.enqueue(fake.message_update(QUESTION, chat_id=102))
        await fake.enqueue(fake.message_update("x" * 4050, chat_id=103))
        await fake.wait_for(lambda: {c for c, _ in fake.messages} >= {102, 103}, what="both replies")
        await fake.enqueue(fake.message_update("/help", chat_id=102))
        await fake.wait_for(lambda: len([k for k in fake.messages if k[0] == 102]) == 2, what="/help afterwards")
    texts = {c: m["visible"] for (c, _), m in sorted(fake.messages.items(), reverse=True)}
    by_chat = [m["visible"] for (c, _), m in sorted(fake.messages.items()) if c == 102]
    assert by_chat[0] == "Sorry, something went wrong while answering. Please try again in a moment."
    assert "/reset" in by_chat[1]
    assert "too long" in texts[103] and "4050" in texts[103]


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


async def test_clean_shutdown_leaves_no_tasks_or_sockets(fake, quick_assistant, store):
    baseline_sockets = _open_sockets()
    baseline_tasks = asyncio.all_tasks()
    async with running_bot(fake, quick_assistant, store) as bot:
        await fake.enqueue(fake.message_update(QUESTION, chat_id=104))
        await fake.wait_for(lambda: _final(fake, 104) is not None, what="an answer")
        assert _open_sockets() > baseline_sockets
        assert await bot.shutdown() == 0
    assert not bot.application.running and not bot.application.updater.running

    def leftovers() -> set[asyncio.Task]:
        return {t for t in asyncio.all_tasks() - baseline_tasks if t is not asyncio.current_task()}

    # The fake's own handler for the abandoned long poll may take a moment to notice.
    await fake.wait_for(lambda: not leftovers() and _open_sockets() <= baseline_sockets, timeout=10,
                        what=f"tasks and sockets to close (tasks {leftovers()})")
