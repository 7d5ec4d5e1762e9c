"""Reading the adapters' secret settings (tokens, signing secrets) the same way everywhere."""

from __future__ import annotations

from pydantic import SecretStr


def secret_text(value: SecretStr | None) -> str:
    """The secret's text without surrounding spaces, or "" when it is not set."""
    return value.get_secret_value().strip() if value else ""
