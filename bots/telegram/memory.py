"""Recent turns per chat, passed to the core as ``IncomingMessage.history``.

Kept in memory for now (lost on restart; ``/reset`` clears a chat). The core's store will
own conversation history later; this class is the one place to swap for it.
"""

from __future__ import annotations

from collections import deque

from core.messages import HistoryTurn

#: Exchanges (question + answer) remembered per chat.
MAX_EXCHANGES = 4


class ChatMemory:
    """Bounded recent turns per chat id; only touched from the event loop, so no locking."""

    def __init__(self, max_exchanges: int = MAX_EXCHANGES) -> None:
        self._turns: dict[int, deque[HistoryTurn]] = {}
        self._max = max_exchanges * 2

    def history(self, chat_id: int) -> tuple[HistoryTurn, ...]:
        return tuple(self._turns.get(chat_id, ()))

    def add(self, chat_id: int, question: str, answer: str) -> None:
        turns = self._turns.setdefault(chat_id, deque(maxlen=self._max))
        turns.append(HistoryTurn("user", question))
        turns.append(HistoryTurn("assistant", answer))

    def reset(self, chat_id: int) -> None:
        self._turns.pop(chat_id, None)
