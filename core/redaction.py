"""Logs that can be shared: no tokens or secrets at any level, no users' words unless asked for.

Secrets leak into logs indirectly: the Telegram Bot API puts the token in every URL (httpx
logs them), libraries log request headers and bodies at DEBUG, a traceback quotes a
connection string. So redaction happens where a record becomes text — in the formatter of
every handler — and covers the message, its arguments and any traceback alike. It masks:

- the values of secret-looking settings in the environment (``*TOKEN*``, ``*SECRET*``, ``*KEY*``,
  ``*PASSWORD*``, database URLs), whatever their shape;
- well-known token shapes even when they are not configured here (Slack ``xox…-``/``xapp-``,
  Telegram ``123456:ABC…``, ``Bearer …``, passwords in URLs).

What people write is kept out by level: the libraries that log payloads (PTB, bolt, the HTTP
clients) stay at INFO even when askdesk runs at DEBUG, unless ``ASKDESK_LOG_MESSAGE_TEXT`` is set.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|SIGNING|DATABASE_URL|DSN", re.I)
_SHAPES = [
    re.compile(r"\bxox[a-z]-[A-Za-z0-9-]{8,}"),  # Slack bot/user/config tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{8,}"),  # Slack app-level tokens
    re.compile(r"(?<![0-9])\d{5,12}:[A-Za-z0-9_-]{30,}"),  # Telegram bot tokens (also inside /bot…/ URLs)
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style API keys
]
#: Libraries that log request and update payloads (people's messages) at DEBUG.
PAYLOAD_LOGGERS = ("telegram", "slack_bolt", "slack_sdk", "httpx", "httpcore", "aiohttp", "urllib3",
                   "websockets", "hpack", "openai")
#: Shorter values are not treated as secrets: masking "1" or "true" would garble every log line.
MIN_SECRET_CHARS = 6


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking variables; longest first, so overlapping values mask fully."""
    environ = os.environ if environ is None else environ
    values = {value for name, value in environ.items() if _SECRET_NAME.search(name) and len(value) >= MIN_SECRET_CHARS}
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Masks known secret values and token shapes in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = [value for value in secrets if value and len(value) >= MIN_SECRET_CHARS]
        self._known = re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True)))) if values else None

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(MASK, text)
        for shape in _SHAPES:
            text = shape.sub(MASK, text)
        return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose output never holds a secret: message, arguments and traceback included."""

    def __init__(self, fmt: str | None = None, redactor: Redactor | None = None) -> None:
        super().__init__(fmt)
        self.redactor = redactor or Redactor(secrets_from_env())

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int, *, message_text: bool = False, secrets: Iterable[str] | None = None) -> None:
    """Set up the root logger for the CLI: redacted output, payload loggers held at INFO."""
    redactor = Redactor(secrets_from_env() if secrets is None else secrets)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(RedactingFormatter(LOG_FORMAT, redactor))
    root.setLevel(level)
    if level < logging.INFO and not message_text:
        for name in PAYLOAD_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level < logging.INFO:
                logger.setLevel(logging.INFO)

