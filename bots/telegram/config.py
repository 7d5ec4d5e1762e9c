"""The Telegram adapter's settings: ``TELEGRAM_*`` environment variables (and ``.env``).

Kept out of ``core/config.py`` on purpose: the core must not know which platforms exist.
This is the only place that reads Telegram variables; everything else receives values.
"""

from __future__ import annotations

import re

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

# "<bot id>:<secret>" as issued by @BotFather; anything else cannot form a valid API URL.
_TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
# Telegram's rule for setWebhook's secret_token: 1-256 characters A-Z, a-z, 0-9, _ and -.
_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TelegramSettings(BaseSettings):
    """What an admin configures for Telegram. Secrets stay ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_prefix="TELEGRAM_", env_file=".env", extra="ignore")

    bot_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    # Another Bot API server (a local telegram-bot-api, or a test fake): its root URL,
    # e.g. http://127.0.0.1:8081. A value ending in /bot or holding {token} is used as is.
    api_base_url: str | None = None

    def token(self) -> str:
        """The bot token, or :class:`ConfigError` saying where to get one."""
        value = self.bot_token.get_secret_value().strip() if self.bot_token else ""
        if not value:
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather in Telegram (/newbot), "
                "then put its token in TELEGRAM_BOT_TOKEN (environment or .env)."
            )
        if not _TOKEN_SHAPE.match(value):
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN does not look like a Telegram bot token (expected '123456789:AA…' "
                "from @BotFather). Copy it again without spaces or quotes."
            )
        return value

    def webhook_secret_token(self) -> str:
        """The webhook secret (required in webhook mode so forged updates are refused)."""
        value = self.webhook_secret.get_secret_value().strip() if self.webhook_secret else ""
        if not value:
            raise ConfigError(
                "Webhook mode needs TELEGRAM_WEBHOOK_SECRET: a random string Telegram sends with every "
                "update so askdesk can refuse requests that do not come from Telegram. "
                "Generate one with `openssl rand -hex 32`."
            )
        if not _SECRET_SHAPE.match(value):
            raise ConfigError(
                "TELEGRAM_WEBHOOK_SECRET may only contain letters, digits, '_' and '-' (1-256 characters); "
                "Telegram rejects anything else. Generate one with `openssl rand -hex 32`."
            )
        return value

    def api_urls(self) -> tuple[str, str] | None:
        """``(base_url, base_file_url)`` for python-telegram-bot, or None for api.telegram.org."""
        if not self.api_base_url or not self.api_base_url.strip():
            return None
        root = self.api_base_url.strip().rstrip("/")
        if "{token}" in root:
            return root, root  # a full template; askdesk never downloads files
        if root.endswith("/bot"):
            root = root[: -len("/bot")]
        return f"{root}/bot", f"{root}/file/bot"
