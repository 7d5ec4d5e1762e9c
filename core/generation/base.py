"""The generator interface every backend implements (local transformers, OpenAI-compatible…)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypedDict


class ChatMessage(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


class Generator(Protocol):
    """Writes text for a chat prompt, yielding it piece by piece as it is produced."""

    name: str

    def stream(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        """Yield text deltas; the concatenation is the whole reply."""
        ...

    def warm_up(self) -> None:
        """Load weights now (at serve start) instead of on the first question."""
        ...
