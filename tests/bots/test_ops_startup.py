"""Start-up errors are one clear line: an unreachable Telegram API, an invalid ASKDESK_* value."""

from __future__ import annotations

import pytest

from bots.telegram.serve import initialize
from core.errors import ConfigError
from tests.bots.telegram.conftest import free_port


async def test_unreachable_telegram_api_is_a_config_error_naming_the_token(quick_assistant, tmp_path):
    from bots.telegram.app import BotOptions, build_application
    from core.store import Store

    store = Store(tmp_path / "askdesk.db")
    root = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    application = build_application("123456789:TEST-token", quick_assistant, store,
                                     api_urls=(f"{root}/bot", f"{root}/file/bot"), options=BotOptions())
    try:
        with pytest.raises(ConfigError, match="Could not reach the Telegram Bot API at http://127.0.0.1") as caught:
            await initialize(application)
        assert "TELEGRAM_BOT_TOKEN" in str(caught.value) and "\n" not in str(caught.value)
    finally:
        store.close()


def test_invalid_askdesk_setting_is_one_line_naming_the_variable(monkeypatch, capsys):
    from bots import cli
    from core.config import get_settings

    monkeypatch.setenv("ASKDESK_OPS_PORT", "not-a-port")
    get_settings.cache_clear()
    try:
        assert cli.main(["stats", "--no-grouping"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid setting ASKDESK_OPS_PORT:") and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    from bots import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"askdesk {version('askdesk')}"
