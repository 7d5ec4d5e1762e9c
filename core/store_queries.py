"""What both stores share: the records they return, and the queries both run the same way.

:class:`core.store.Store` (SQLite) and :class:`core.store_postgres.PostgresStore` answer the same
interface; most reads, and the writes that are one plain statement, are the same SQL on both but
for the placeholder style. :class:`SharedQueries` holds those once, written with ``?``
placeholders and run through ``_execute``, which each store provides (PostgreSQL turns each ``?``
into ``%s``). What really differs stays in the store: inserts that return their row (``RETURNING``
or ``lastrowid``), ``ON CONFLICT`` / ``INSERT OR IGNORE``, leasing and locking, transactions.

The SQL here must hold no literal ``%`` and no ``?`` other than a placeholder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Row(Protocol):
    """A result row: ``sqlite3.Row`` and psycopg's dict rows both read a column by name."""

    def __getitem__(self, key: str, /) -> Any: ...

    def keys(self) -> Any: ...


class Cursor(Protocol):
    """What the shared queries use of a cursor (sqlite3's and psycopg's both have it)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class StoredTurn:
    id: int
    conversation: int
    user_id: str | None
    question: str
    answer: str
    citations: list[dict[str, Any]]
    confidence: float
    refused: bool
    mode: str
    language: str
    latency_s: float
    created_at: float


@dataclass(frozen=True, slots=True)
class Profile:
    platform: str
    user_id: str
    display_name: str | None
    language: str | None
    question_count: int


@dataclass(frozen=True, slots=True)
class Escalation:
    id: int
    platform: str
    conversation_id: str
    thread_id: str
    user_id: str | None
    user_name: str | None
    question: str
    transcript: str
    turn_id: int | None
    status: str
    support_ref: str | None
    created_at: float
    #: The knowledge-base scope of the escalated conversation (None: the default scope).
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class LearnedQA:
    id: int
    question: str
    answer: str
    source: str
    author: str | None
    status: str
    created_at: float
    #: The knowledge-base scope it was learned in, and is approved into (None: the default scope).
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class InboxItem:
    """An accepted question: what the adapter needs to answer it again after a restart."""

    platform: str
    event_id: str
    user_id: str | None
    payload: dict[str, Any]
    status: str
    attempts: int
    reply_ref: str | None
    received_at: float


LEARNED_COLUMNS = "id, question, answer, source, author, status, created_at, scope"


def _row_inbox(row: Row) -> InboxItem:
    return InboxItem(
        platform=row["platform"], event_id=row["event_id"], user_id=row["user_id"],
        payload=json.loads(row["payload"]), status=row["status"], attempts=row["attempts"],
        reply_ref=row["reply_ref"], received_at=row["received_at"],
    )


def _row_turn(row: Row) -> StoredTurn:
    data = dict(row)
    data["citations"] = json.loads(data["citations"])
    data["refused"] = bool(data["refused"])
    return StoredTurn(**data)


def _row_escalation(row: Row) -> Escalation:
    data = {k: row[k] for k in Escalation.__dataclass_fields__}
    return Escalation(**data)


class SharedQueries:
    """The store methods that are the same SQL on SQLite and PostgreSQL, written once.

    Each store supplies :meth:`_execute`; a method whose SQL or guarantee differs by backend is
    defined in the store itself, not here.
    """

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement written with ``?`` placeholders (each store runs it its own way)."""
        raise NotImplementedError

    # ---- idempotency --------------------------------------------------------------------
    def forget_events_before(self, cutoff: float) -> int:
        """Drop idempotency records older than ``cutoff`` (platforms stop retrying after hours)."""
        return self._execute("DELETE FROM processed_events WHERE processed_at < ?", (cutoff,)).rowcount

    def inbox_forget_answered_before(self, cutoff: float) -> int:
        """Drop answered inbox rows received before ``cutoff`` (for Telegram they are the idempotency record)."""
        return self._execute("DELETE FROM inbox WHERE status = 'answered' AND received_at < ?", (cutoff,)).rowcount

    # ---- inbox --------------------------------------------------------------------------------
    def inbox_set_reply(self, platform: str, event_id: str, reply_ref: str) -> None:
        """Remember the first posted reply, so answering again edits it instead of posting a second."""
        self._execute(
            "UPDATE inbox SET reply_ref = ? WHERE platform = ? AND event_id = ?", (reply_ref, platform, event_id)
        )

    def inbox_done(self, platform: str, event_id: str) -> None:
        """The reply is posted: never answer it again. The question text is dropped (the turn keeps it)."""
        self._execute(
            "UPDATE inbox SET status = 'answered', answered_at = ?, payload = '{}', lease_owner = NULL "
            "WHERE platform = ? AND event_id = ?",
            (time.time(), platform, event_id),
        )

    def inbox_release(self, platform: str, owner: str) -> int:
        """Hand ``owner``'s unanswered questions to the next process at once (graceful shutdown)."""
        return self._execute(
            "UPDATE inbox SET lease_until = 0, lease_owner = NULL WHERE platform = ? AND lease_owner = ? "
            "AND status = 'pending'",
            (platform, owner),
        ).rowcount

    def inbox_item(self, platform: str, event_id: str) -> InboxItem | None:
        row = self._execute("SELECT * FROM inbox WHERE platform = ? AND event_id = ?", (platform, event_id)).fetchone()
        return _row_inbox(row) if row else None

    def inbox_pending(self, platform: str | None = None) -> int:
        """How many accepted questions have no posted answer yet."""
        if platform is None:
            row = self._execute("SELECT COUNT(*) AS n FROM inbox WHERE status = 'pending'").fetchone()
        else:
            row = self._execute(
                "SELECT COUNT(*) AS n FROM inbox WHERE platform = ? AND status = 'pending'", (platform,)
            ).fetchone()
        return int(row["n"])

    # ---- turns ----------------------------------------------------------------------------
    def recent_turns(self, conversation: int, limit: int) -> list[StoredTurn]:
        rows = self._execute(
            "SELECT t.* FROM turns t JOIN conversations c ON c.id = t.conversation "
            "WHERE t.conversation = ? AND t.created_at > c.reset_at ORDER BY t.id DESC LIMIT ?",
            (conversation, limit),
        ).fetchall()
        return [_row_turn(r) for r in reversed(rows)]

    def turn(self, turn_id: int) -> StoredTurn | None:
        row = self._execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
        return _row_turn(row) if row else None

    def turns_since(self, since: float = 0.0) -> list[StoredTurn]:
        rows = self._execute("SELECT * FROM turns WHERE created_at >= ? ORDER BY id", (since,)).fetchall()
        return [_row_turn(r) for r in rows]

    # ---- feedback -------------------------------------------------------------------------
    def feedback_since(self, since: float = 0.0) -> list[tuple[int, str, int]]:
        rows = self._execute(
            "SELECT turn_id, user_id, value FROM feedback WHERE created_at >= ? ORDER BY turn_id", (since,)
        ).fetchall()
        return [(int(r["turn_id"]), r["user_id"], r["value"]) for r in rows]

    # ---- profiles -------------------------------------------------------------------------
    def profile(self, platform: str, user_id: str) -> Profile | None:
        row = self._execute(
            "SELECT platform, user_id, display_name, language, question_count FROM profiles "
            "WHERE platform = ? AND user_id = ?",
            (platform, user_id),
        ).fetchone()
        return Profile(**dict(row)) if row else None

    # ---- escalations ----------------------------------------------------------------------
    def escalation(self, escalation_id: int) -> Escalation | None:
        row = self._execute("SELECT * FROM escalations WHERE id = ?", (escalation_id,)).fetchone()
        return _row_escalation(row) if row else None

    def escalation_by_ref(self, support_ref: str) -> Escalation | None:
        row = self._execute(
            "SELECT * FROM escalations WHERE support_ref = ? ORDER BY id DESC LIMIT 1", (support_ref,)
        ).fetchone()
        return _row_escalation(row) if row else None

    def open_escalation_for(self, platform: str, conversation_id: str, thread_id: str | None = None) -> Escalation | None:
        row = self._execute(
            "SELECT * FROM escalations WHERE platform = ? AND conversation_id = ? AND thread_id = ? AND status = 'open' "
            "ORDER BY id DESC LIMIT 1",
            (platform, conversation_id, thread_id or ""),
        ).fetchone()
        return _row_escalation(row) if row else None

    def set_escalation_ref(self, escalation_id: int, support_ref: str) -> None:
        self._execute("UPDATE escalations SET support_ref = ? WHERE id = ?", (support_ref, escalation_id))

    def add_escalation_reply(self, escalation_id: int, author: str | None, text: str) -> None:
        self._execute(
            "INSERT INTO escalation_replies (escalation, author, text, created_at) VALUES (?, ?, ?, ?)",
            (escalation_id, author, text, time.time()),
        )

    def escalation_replies(self, escalation_id: int) -> list[tuple[str | None, str]]:
        rows = self._execute(
            "SELECT author, text FROM escalation_replies WHERE escalation = ? ORDER BY id", (escalation_id,)
        ).fetchall()
        return [(r["author"], r["text"]) for r in rows]

    def close_escalation(self, escalation_id: int, closed_by: str | None) -> bool:
        """True for the one close that found it open: a second close, even one racing it from another
        thread or worker, is a no-op (one conditional UPDATE)."""
        cur = self._execute(
            "UPDATE escalations SET status = 'closed', closed_at = ?, closed_by = ? WHERE id = ? AND status = 'open'",
            (time.time(), closed_by, escalation_id),
        )
        return cur.rowcount == 1

    def escalations_since(self, since: float = 0.0) -> list[Escalation]:
        rows = self._execute("SELECT * FROM escalations WHERE created_at >= ? ORDER BY id", (since,)).fetchall()
        return [_row_escalation(r) for r in rows]

    # ---- learned Q&A ----------------------------------------------------------------------
    def learned_qa(self, qa_id: int) -> LearnedQA | None:
        row = self._execute(f"SELECT {LEARNED_COLUMNS} FROM learned_qa WHERE id = ?", (qa_id,)).fetchone()
        return LearnedQA(**dict(row)) if row else None

    def learned_qas(self, status: str | None = None) -> list[LearnedQA]:
        query = f"SELECT {LEARNED_COLUMNS} FROM learned_qa"
        rows = self._execute(
            query + (" WHERE status = ? ORDER BY id" if status else " ORDER BY id"), (status,) if status else ()
        ).fetchall()
        return [LearnedQA(**dict(r)) for r in rows]

    def review_learned_qa(self, qa_id: int, status: str) -> bool:
        """Approve or reject a pending entry; True when it was pending."""
        if status not in ("approved", "rejected"):
            raise ValueError("status must be approved or rejected")
        cur = self._execute(
            "UPDATE learned_qa SET status = ?, reviewed_at = ? WHERE id = ? AND status = 'pending'",
            (status, time.time(), qa_id),
        )
        return cur.rowcount == 1
