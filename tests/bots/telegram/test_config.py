"""TELEGRAM_* settings: read in one place, checked with messages an admin can act on."""

from __future__ import annotations

import pytest

from bots.telegram.config import TelegramSettings
from core.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_API_BASE_URL", "TELEGRAM_SUPPORT_CHAT_ID",
                "TELEGRAM_ADMIN_USER_IDS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env


def test_token_from_environment_and_never_printed(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc_DEF-ghi")
    settings = TelegramSettings()
    assert settings.token() == "123:abc_DEF-ghi"
    assert "abc_DEF" not in repr(settings)


@pytest.mark.parametrize(("value", "message"), [(None, "is not set"), ("not a token", "does not look like")])
def test_token_problems(monkeypatch, value, message):
    if value is not None:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", value)
    with pytest.raises(ConfigError, match=message):
        TelegramSettings().token()


def test_webhook_secret_required_and_shaped(monkeypatch):
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramSettings().webhook_secret_token()
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "has spaces!")
    with pytest.raises(ConfigError, match="letters, digits"):
        TelegramSettings().webhook_secret_token()
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "ok_Secret-1")
    assert TelegramSettings().webhook_secret_token() == "ok_Secret-1"


@pytest.mark.parametrize(
    ("value", "urls"),
    [
        (None, None),
        ("http://127.0.0.1:8081", ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot")),
        ("http://127.0.0.1:8081/bot/", ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot")),
        ("https://api.example/x/bot{token}", ("https://api.example/x/bot{token}", "https://api.example/x/bot{token}")),
    ],
)
def test_api_base_url(monkeypatch, value, urls):
    if value is not None:
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", value)
    assert TelegramSettings().api_urls() == urls


def test_support_group_and_admins(monkeypatch):
    assert TelegramSettings().support_chat() is None
    assert TelegramSettings().admins() == frozenset()
    monkeypatch.setenv("TELEGRAM_SUPPORT_CHAT_ID", " -1001234567890 ")
    monkeypatch.setenv("TELEGRAM_ADMIN_USER_IDS", "111, 222,333")
    assert TelegramSettings().support_chat() == -1001234567890
    assert TelegramSettings().admins() == frozenset({111, 222, 333})
    monkeypatch.setenv("TELEGRAM_SUPPORT_CHAT_ID", "@support")
    with pytest.raises(ConfigError, match="TELEGRAM_SUPPORT_CHAT_ID must be a Telegram chat id"):
        TelegramSettings().support_chat()
    monkeypatch.setenv("TELEGRAM_ADMIN_USER_IDS", "111,@ana")
    with pytest.raises(ConfigError, match="numeric Telegram user ids"):
        TelegramSettings().admins()
