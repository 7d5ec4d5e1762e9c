"""An assistant that gives one fixed :class:`Answer`: adapters driven without an index or a model.

The real :class:`core.assistant.Assistant` around it (settings, scopes, store, hand-off text), so
the adapters take their usual path; only :meth:`stream` is replaced: it yields the answer's text
word by word (when asked to) and then the answer itself, and remembers every message it got.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from core.assistant import Assistant
from core.messages import Answer, IncomingMessage
from core.store import Store
from tests.fakes.generator import split_deltas


class _NoRetriever:
    """Never searched: the answer is fixed."""


class FixedAnswerAssistant(Assistant):
    def __init__(self, answer: Answer, store: Store | None = None, stream_text: bool = False, settings=None) -> None:
        from tests.conftest import make_settings

        super().__init__(settings or make_settings(), retriever=_NoRetriever(), store=store, remember=store is not None)
        self.fixed = answer
        self.stream_text = stream_text
        self.seen: list[IncomingMessage] = []

    def contact_details(self, language: str = "en", scope=None) -> str | None:  # type: ignore[override]
        return None  # no knowledge base to find them in: a hand-off nobody takes says so plainly

    async def stream(self, message: IncomingMessage) -> AsyncIterator[str | Answer]:  # type: ignore[override]
        self.seen.append(message)
        if self.stream_text:
            for delta in split_deltas(self.fixed.text):
                yield delta
        yield self.fixed
