"""Slack settings, read from ``SLACK_*`` environment variables (and ``.env``) in one place.

``core.config.Settings`` must not know about any platform, so the Slack adapter keeps
its own small settings class. Tokens are :class:`~pydantic.SecretStr` so they never
end up in logs or reprs.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bots.secrets import secret_text
from core.errors import ConfigError


class SlackSettings(BaseSettings):
    """Everything the Slack adapter can be told; every field is ``SLACK_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SLACK_", env_file=".env", extra="ignore")

    bot_token: SecretStr | None = Field(None, description="Bot User OAuth Token (xoxb-…); always required.")
    app_token: SecretStr | None = Field(None, description="App-level token (xapp-…) with connections:write; enables Socket Mode.")
    signing_secret: SecretStr | None = Field(None, description="Signing Secret; required for HTTP mode (--http).")
    api_base_url: str | None = Field(None, description="Web API base URL (default https://slack.com/api/); for tests and proxies.")
    ignore_bots: bool = Field(True, description="Ignore messages written by other bots (the bot's own are always ignored).")
    ask_visibility: Literal["ephemeral", "in_channel"] = Field(
        "ephemeral", description="/ask answers: only to the asking user (ephemeral) or to the whole channel (in_channel)."
    )
    stream_interval: float = Field(1.0, ge=0.0, description="Seconds between chat.update edits while an answer streams.")
    message_limit: int = Field(3000, ge=200, le=40000, description="Characters per Slack message; longer answers are split.")
    thread_history: int = Field(20, ge=0, le=200, description="Earlier thread messages read for context (conversations.replies).")
    rate_limit_retries: int = Field(3, ge=0, description="How often a `ratelimited` Web API call is retried after Retry-After.")
    support_channel: str | None = Field(
        None, description="Channel id (C…/G…) where hand-offs to a person are posted; without it the bot says no one is available."
    )
    admin_user_ids: str = Field("", description="Comma-separated Slack user ids allowed to `/askdesk teach` and close any escalation.")
    support_agent_ids: str = Field(
        "", description="Slack user ids whose replies in escalation threads reach customers ('*': any member of the "
        "support channel; unset: nobody's, admins excepted)."
    )
    support_agent_group: str = Field(
        "", description="A Slack user group id (S…) whose members also count as support agents; its members are "
        "looked up (usergroups.users.list, scope usergroups:read) and again every 5 minutes, so joining or leaving "
        "the group needs no restart."
    )

    @property
    def admins(self) -> frozenset[str]:
        """The admin user ids, from ``SLACK_ADMIN_USER_IDS`` (commas or spaces between them)."""
        return frozenset(part for part in re.split(r"[\s,]+", self.admin_user_ids) if part)

    @property
    def support_channel_id(self) -> str | None:
        channel = (self.support_channel or "").strip().lstrip("#")
        return channel or None

    def require_bot_token(self) -> str:
        """The bot token, or a :class:`ConfigError` that tells the operator where to find it."""
        token = secret_text(self.bot_token)
        if not token:
            raise ConfigError(
                "SLACK_BOT_TOKEN is not set. Copy the Bot User OAuth Token (xoxb-…) from your Slack app's "
                "'OAuth & Permissions' page into the environment or .env (see 'Run on Slack' in README.md)."
            )
        if not token.startswith("xoxb-"):
            raise ConfigError(
                "SLACK_BOT_TOKEN does not look like a bot token (it should start with 'xoxb-'). Use the Bot User "
                "OAuth Token from 'OAuth & Permissions', not the app-level or a user token."
            )
        return token

    def app_token_value(self) -> str | None:
        """The app-level token when Socket Mode is configured, checked for the right kind."""
        token = secret_text(self.app_token)
        if not token:
            return None
        if not token.startswith("xapp-"):
            raise ConfigError(
                "SLACK_APP_TOKEN does not look like an app-level token (it should start with 'xapp-'). Create one "
                "under 'Basic Information → App-Level Tokens' with the connections:write scope."
            )
        return token

    def require_signing_secret(self) -> str:
        secret = secret_text(self.signing_secret)
        if not secret:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is not set; HTTP mode needs it to verify that requests come from Slack. "
                "Copy it from your Slack app's 'Basic Information → App Credentials'."
            )
        return secret
