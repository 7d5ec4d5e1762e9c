"""The Telegram adapter's settings: ``TELEGRAM_*`` environment variables (and ``.env``).

Kept out of ``core/config.py`` on purpose: the core must not know which platforms exist.
This is the only place that reads Telegram variables; everything else receives values.
"""

from __future__ import annotations

import re

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bots.secrets import secret_text
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
    # The support group where escalations are posted and agents reply (a negative chat id,
    # e.g. -1001234567890). Unset: the bot says honestly that no person is available.
    support_chat_id: str | None = None
    # Telegram user ids allowed to /teach, comma-separated (e.g. "11111111,22222222").
    admin_user_ids: str | None = None
    # Whose replies in the support group reach customers ('*': any member; unset: nobody's, admins excepted).
    support_agent_ids: str | None = None

    def token(self) -> str:
        """The bot token, or :class:`ConfigError` saying where to get one."""
        value = secret_text(self.bot_token)
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
        value = secret_text(self.webhook_secret)
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

    def support_chat(self) -> int | None:
        """The support group's chat id, or None when hand-off to people is not set up."""
        value = (self.support_chat_id or "").strip()
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            raise ConfigError(
                f"TELEGRAM_SUPPORT_CHAT_ID must be a Telegram chat id (a number such as -1001234567890), not "
                f"{value!r}. Add the bot to the support group, send a message there and read the chat id from "
                "getUpdates (or from a bot such as @RawDataBot); leave it empty to turn hand-off off."
            ) from None

    def admins(self) -> frozenset[int]:
        """Telegram user ids that may /teach (empty: nobody)."""
        ids: set[int] = set()
        for part in re.split(r"[,\s]+", self.admin_user_ids or ""):
            if not part:
                continue
            if not part.isdigit():
                raise ConfigError(
                    f"TELEGRAM_ADMIN_USER_IDS must be numeric Telegram user ids separated by commas, not {part!r} "
                    "(usernames can change; ids do not). A user sees their id with @userinfobot."
                )
            ids.add(int(part))
        return frozenset(ids)
