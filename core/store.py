"""Persistent state in one embedded SQLite database.

Behind a small interface (:class:`Store`) so a server database can replace SQLite later.
The schema is created and migrated on open (``PRAGMA user_version``); WAL mode and a
per-thread connection make it safe for the bot's worker threads and event loop.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Each entry migrates the schema from version i to i+1. Append; never edit a shipped one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE processed_events (
        platform TEXT NOT NULL,
        event_id TEXT NOT NULL,
        processed_at REAL NOT NULL,
        PRIMARY KEY (platform, event_id)
    );
    """,
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        thread_id TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        reset_at REAL NOT NULL DEFAULT 0,
        UNIQUE (platform, conversation_id, thread_id)
    );
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        conversation INTEGER NOT NULL REFERENCES conversations(id),
        user_id TEXT,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        citations TEXT NOT NULL DEFAULT '[]',
        confidence REAL NOT NULL DEFAULT 0,
        refused INTEGER NOT NULL DEFAULT 0,
        mode TEXT NOT NULL DEFAULT 'generated',
        language TEXT NOT NULL DEFAULT 'en',
        latency_s REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX turns_by_conversation ON turns (conversation, id);
    CREATE INDEX turns_by_time ON turns (created_at);
    CREATE TABLE feedback (
        turn_id INTEGER NOT NULL REFERENCES turns(id),
        user_id TEXT NOT NULL,
        value INTEGER NOT NULL CHECK (value IN (-1, 1)),
        created_at REAL NOT NULL,
        PRIMARY KEY (turn_id, user_id)
    );
    CREATE TABLE profiles (
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        display_name TEXT,
        language TEXT,
        question_count INTEGER NOT NULL DEFAULT 0,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        PRIMARY KEY (platform, user_id)
    );
    CREATE TABLE escalations (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        thread_id TEXT NOT NULL DEFAULT '',
        user_id TEXT,
        user_name TEXT,
        question TEXT NOT NULL,
        transcript TEXT NOT NULL DEFAULT '',
        turn_id INTEGER,
        status TEXT NOT NULL DEFAULT 'open',
        support_ref TEXT,
        created_at REAL NOT NULL,
        closed_at REAL,
        closed_by TEXT
    );
    CREATE INDEX escalations_by_ref ON escalations (support_ref);
    CREATE TABLE escalation_replies (
        id INTEGER PRIMARY KEY,
        escalation INTEGER NOT NULL REFERENCES escalations(id),
        author TEXT,
        text TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE learned_qa (
        id INTEGER PRIMARY KEY,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        source TEXT NOT NULL,
        author TEXT,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
        created_at REAL NOT NULL,
        reviewed_at REAL
    );
    """,
]


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


@dataclass(frozen=True, slots=True)
class LearnedQA:
    id: int
    question: str
    answer: str
    source: str
    author: str | None
    status: str
    created_at: float


def _row_turn(row: sqlite3.Row) -> StoredTurn:
    data = dict(row)
    data["citations"] = json.loads(data["citations"])
    data["refused"] = bool(data["refused"])
    return StoredTurn(**data)


def _row_escalation(row: sqlite3.Row) -> Escalation:
    data = {k: row[k] for k in Escalation.__dataclass_fields__}
    return Escalation(**data)


class Store:
    """Access to askdesk's database; one instance per process, shared by threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL survives a crash of the process (what idempotency needs) and skips
            # an fsync per write, which keeps event acknowledgements fast under load.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def _migrate(self) -> None:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return int(self._connect().execute("PRAGMA user_version").fetchone()[0])

    # ---- idempotency --------------------------------------------------------------------
    def claim_event(self, platform: str, event_id: str) -> bool:
        """True the first time an event id is seen (then answer it); False for a redelivery."""
        cur = self._connect().execute(
            "INSERT OR IGNORE INTO processed_events (platform, event_id, processed_at) VALUES (?, ?, ?)",
            (platform, event_id, time.time()),
        )
        return cur.rowcount == 1

    def forget_events_before(self, cutoff: float) -> int:
        """Drop idempotency records older than ``cutoff`` (platforms stop retrying after hours)."""
        return self._connect().execute("DELETE FROM processed_events WHERE processed_at < ?", (cutoff,)).rowcount

    # ---- conversations and turns ----------------------------------------------------------
    def conversation(self, platform: str, conversation_id: str, thread_id: str | None = None) -> int:
        """The row id of a conversation (a Slack thread, a Telegram chat, a terminal session)."""
        conn = self._connect()
        key = (platform, conversation_id, thread_id or "")
        conn.execute(
            "INSERT OR IGNORE INTO conversations (platform, conversation_id, thread_id, created_at) VALUES (?, ?, ?, ?)",
            (*key, time.time()),
        )
        row = conn.execute(
            "SELECT id FROM conversations WHERE platform = ? AND conversation_id = ? AND thread_id = ?", key
        ).fetchone()
        return int(row["id"])

    def reset_conversation(self, platform: str, conversation_id: str, thread_id: str | None = None) -> None:
        """Earlier turns stop being context (``/reset``); they stay stored for stats."""
        conv = self.conversation(platform, conversation_id, thread_id)
        # Strictly after every turn so far, even ones recorded within the same clock tick.
        self._connect().execute(
            "UPDATE conversations SET reset_at = MAX(?, COALESCE((SELECT MAX(created_at) FROM turns WHERE conversation = ?), 0) + 1e-6) WHERE id = ?",
            (time.time(), conv, conv),
        )

    def recent_turns(self, conversation: int, limit: int) -> list[StoredTurn]:
        rows = self._connect().execute(
            "SELECT t.* FROM turns t JOIN conversations c ON c.id = t.conversation "
            "WHERE t.conversation = ? AND t.created_at > c.reset_at ORDER BY t.id DESC LIMIT ?",
            (conversation, limit),
        ).fetchall()
        return [_row_turn(r) for r in reversed(rows)]

    def record_turn(
        self,
        conversation: int,
        user_id: str | None,
        question: str,
        answer: str,
        citations: list[dict[str, Any]],
        confidence: float,
        refused: bool,
        mode: str,
        language: str,
        latency_s: float,
    ) -> int:
        cur = self._connect().execute(
            "INSERT INTO turns (conversation, user_id, question, answer, citations, confidence, refused, mode, "
            "language, latency_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation, user_id, question, answer, json.dumps(citations, ensure_ascii=False), confidence,
             int(refused), mode, language, latency_s, time.time()),
        )
        return int(cur.lastrowid)

    def turn(self, turn_id: int) -> StoredTurn | None:
        row = self._connect().execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
        return _row_turn(row) if row else None

    def turns_since(self, since: float = 0.0) -> list[StoredTurn]:
        rows = self._connect().execute("SELECT * FROM turns WHERE created_at >= ? ORDER BY id", (since,)).fetchall()
        return [_row_turn(r) for r in rows]

    # ---- feedback -------------------------------------------------------------------------
    def record_feedback(self, turn_id: int, user_id: str, value: int) -> bool:
        """Store a 👍 (+1) or 👎 (-1); True when it changed something (a repeated click does not)."""
        if value not in (-1, 1):
            raise ValueError("feedback value must be 1 or -1")
        conn = self._connect()
        previous = conn.execute(
            "SELECT value FROM feedback WHERE turn_id = ? AND user_id = ?", (turn_id, user_id)
        ).fetchone()
        if previous is not None and previous["value"] == value:
            return False
        conn.execute(
            "INSERT INTO feedback (turn_id, user_id, value, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (turn_id, user_id) DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
            (turn_id, user_id, value, time.time()),
        )
        return True

    def feedback_since(self, since: float = 0.0) -> list[tuple[int, str, int]]:
        rows = self._connect().execute(
            "SELECT turn_id, user_id, value FROM feedback WHERE created_at >= ? ORDER BY turn_id", (since,)
        ).fetchall()
        return [(r["turn_id"], r["user_id"], r["value"]) for r in rows]

    # ---- profiles -------------------------------------------------------------------------
    def touch_profile(self, platform: str, user_id: str, display_name: str | None, language: str | None) -> Profile:
        """Count a question and remember the latest name and language the user showed."""
        now = time.time()
        self._connect().execute(
            "INSERT INTO profiles (platform, user_id, display_name, language, question_count, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (platform, user_id) DO UPDATE SET "
            "display_name = COALESCE(excluded.display_name, display_name), "
            "language = COALESCE(excluded.language, language), "
            "question_count = question_count + 1, last_seen = excluded.last_seen",
            (platform, user_id, display_name, language, now, now),
        )
        return self.profile(platform, user_id)  # type: ignore[return-value]

    def profile(self, platform: str, user_id: str) -> Profile | None:
        row = self._connect().execute(
            "SELECT platform, user_id, display_name, language, question_count FROM profiles WHERE platform = ? AND user_id = ?",
            (platform, user_id),
        ).fetchone()
        return Profile(**dict(row)) if row else None

    # ---- escalations ----------------------------------------------------------------------
    def open_escalation(
        self,
        platform: str,
        conversation_id: str,
        thread_id: str | None,
        user_id: str | None,
        user_name: str | None,
        question: str,
        transcript: str,
        turn_id: int | None = None,
    ) -> Escalation:
        cur = self._connect().execute(
            "INSERT INTO escalations (platform, conversation_id, thread_id, user_id, user_name, question, transcript, "
            "turn_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (platform, conversation_id, thread_id or "", user_id, user_name, question, transcript, turn_id, time.time()),
        )
        return self.escalation(int(cur.lastrowid))  # type: ignore[return-value]

    def escalation(self, escalation_id: int) -> Escalation | None:
        row = self._connect().execute("SELECT * FROM escalations WHERE id = ?", (escalation_id,)).fetchone()
        return _row_escalation(row) if row else None

    def escalation_by_ref(self, support_ref: str) -> Escalation | None:
        row = self._connect().execute(
            "SELECT * FROM escalations WHERE support_ref = ? ORDER BY id DESC LIMIT 1", (support_ref,)
        ).fetchone()
        return _row_escalation(row) if row else None

    def open_escalation_for(self, platform: str, conversation_id: str, thread_id: str | None = None) -> Escalation | None:
        row = self._connect().execute(
            "SELECT * FROM escalations WHERE platform = ? AND conversation_id = ? AND thread_id = ? AND status = 'open' "
            "ORDER BY id DESC LIMIT 1",
            (platform, conversation_id, thread_id or ""),
        ).fetchone()
        return _row_escalation(row) if row else None

    def set_escalation_ref(self, escalation_id: int, support_ref: str) -> None:
        self._connect().execute("UPDATE escalations SET support_ref = ? WHERE id = ?", (support_ref, escalation_id))

    def add_escalation_reply(self, escalation_id: int, author: str | None, text: str) -> None:
        self._connect().execute(
            "INSERT INTO escalation_replies (escalation, author, text, created_at) VALUES (?, ?, ?, ?)",
            (escalation_id, author, text, time.time()),
        )

    def escalation_replies(self, escalation_id: int) -> list[tuple[str | None, str]]:
        rows = self._connect().execute(
            "SELECT author, text FROM escalation_replies WHERE escalation = ? ORDER BY id", (escalation_id,)
        ).fetchall()
        return [(r["author"], r["text"]) for r in rows]

    def close_escalation(self, escalation_id: int, closed_by: str | None) -> bool:
        """True when it was open (a second close is a no-op)."""
        cur = self._connect().execute(
            "UPDATE escalations SET status = 'closed', closed_at = ?, closed_by = ? WHERE id = ? AND status = 'open'",
            (time.time(), closed_by, escalation_id),
        )
        return cur.rowcount == 1

    def escalations_since(self, since: float = 0.0) -> list[Escalation]:
        rows = self._connect().execute("SELECT * FROM escalations WHERE created_at >= ? ORDER BY id", (since,)).fetchall()
        return [_row_escalation(r) for r in rows]

    # ---- learned Q&A ----------------------------------------------------------------------
    def add_learned_qa(self, question: str, answer: str, source: str, author: str | None) -> LearnedQA:
        cur = self._connect().execute(
            "INSERT INTO learned_qa (question, answer, source, author, created_at) VALUES (?, ?, ?, ?, ?)",
            (question.strip(), answer.strip(), source, author, time.time()),
        )
        return self.learned_qa(int(cur.lastrowid))  # type: ignore[return-value]

    def learned_qa(self, qa_id: int) -> LearnedQA | None:
        row = self._connect().execute(
            "SELECT id, question, answer, source, author, status, created_at FROM learned_qa WHERE id = ?", (qa_id,)
        ).fetchone()
        return LearnedQA(**dict(row)) if row else None

    def learned_qas(self, status: str | None = None) -> list[LearnedQA]:
        query = "SELECT id, question, answer, source, author, status, created_at FROM learned_qa"
        rows = self._connect().execute(
            query + (" WHERE status = ? ORDER BY id" if status else " ORDER BY id"), (status,) if status else ()
        ).fetchall()
        return [LearnedQA(**dict(r)) for r in rows]

    def review_learned_qa(self, qa_id: int, status: str) -> bool:
        """Approve or reject a pending entry; True when it was pending."""
        if status not in ("approved", "rejected"):
            raise ValueError("status must be approved or rejected")
        cur = self._connect().execute(
            "UPDATE learned_qa SET status = ?, reviewed_at = ? WHERE id = ? AND status = 'pending'",
            (status, time.time(), qa_id),
        )
        return cur.rowcount == 1

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
