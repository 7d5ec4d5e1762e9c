"""Persistent state: one embedded SQLite database by default, PostgreSQL for several workers.

Behind a small interface (:class:`Store`, the SQLite implementation here; the PostgreSQL one
with the same methods is :class:`core.store_postgres.PostgresStore`). :func:`open_store` picks
the backend from the settings: ``ASKDESK_DATABASE_URL`` set means PostgreSQL, otherwise the
SQLite file at ``ASKDESK_DB_PATH``. The SQLite schema is created and migrated on open
(``PRAGMA user_version``); WAL mode and a per-thread connection make it safe for the bot's
worker threads and event loop, within one process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

# The records are defined with the queries both stores share; callers import them from here.
from core.store_queries import (  # noqa: F401 - re-exported
    LEARNED_COLUMNS,
    Escalation,
    InboxItem,
    LearnedQA,
    Profile,
    SharedQueries,
    StoredTurn,
    _row_inbox,
)

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
    """
    CREATE TABLE inbox (
        platform TEXT NOT NULL,
        event_id TEXT NOT NULL,
        user_id TEXT,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'answered')),
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL NOT NULL DEFAULT 0,
        reply_ref TEXT,
        received_at REAL NOT NULL,
        answered_at REAL,
        PRIMARY KEY (platform, event_id)
    );
    CREATE INDEX inbox_due ON inbox (platform, status, lease_until);
    CREATE INDEX turns_by_user ON turns (user_id);
    CREATE INDEX escalations_by_user ON escalations (platform, user_id);
    """,
    # v4: learned Q&A (and the escalations it is drafted from) carry the knowledge-base scope of
    # the conversation they came from; NULL (rows from before) means the default scope.
    """
    ALTER TABLE learned_qa ADD COLUMN scope TEXT;
    ALTER TABLE escalations ADD COLUMN scope TEXT;
    """,
]


#: What :meth:`Store.inbox_accept` found: answer it now ("new", "taken_over") or only acknowledge.
ACCEPT_NEW, ACCEPT_TAKEN_OVER, ACCEPT_IN_PROGRESS, ACCEPT_ANSWERED = "new", "taken_over", "in_progress", "answered"

def _create_private(path: Path) -> None:
    """The database holds people's questions: only the bot's own user may read it.

    Created 0600 in a 0700 folder before SQLite opens it (its -wal and -shm files copy the
    database's mode); an existing, wider database from an older version is narrowed.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for existing in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if existing.exists() and existing.stat().st_mode & 0o077:
            existing.chmod(0o600)


def open_store(settings: Any) -> Store:
    """The store the settings name: PostgreSQL when ``database_url`` is set, else SQLite at ``db_path``.

    Every process that serves or administers askdesk opens its database here, so one setting
    moves all of them (several workers included) to the same database.
    """
    url = getattr(settings, "database_url", None)
    if url is not None:
        from core.store_postgres import PostgresStore

        return PostgresStore(url.get_secret_value() if hasattr(url, "get_secret_value") else str(url))  # type: ignore[return-value]
    return Store(settings.db_path)


class Store(SharedQueries):
    """Access to askdesk's database; one instance per process, shared by threads.

    The methods that are the same SQL on both backends come from :class:`SharedQueries`.
    """

    backend = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            _create_private(Path(self.path))
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

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one of the shared statements (:class:`SharedQueries`): ``?`` is SQLite's own placeholder."""
        return self._connect().execute(sql, params)

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

    # ---- inbox: accepted questions, answered at least once -----------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (IMMEDIATE) so two writers never deadlock."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def inbox_accept(
        self, platform: str, event_id: str, payload: dict[str, Any], user_id: str | None, owner: str, lease_s: float
    ) -> str:
        """Persist a question before the platform is told it arrived, and lease it to ``owner``.

        A redelivery of a question still held by a live lease is only acknowledged; one whose
        lease ran out (its process died) is taken over, so a crash never loses it.
        """
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT status, lease_until FROM inbox WHERE platform = ? AND event_id = ?", (platform, event_id)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO inbox (platform, event_id, user_id, payload, attempts, lease_owner, lease_until, "
                    "received_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                    (platform, event_id, user_id, json.dumps(payload, ensure_ascii=False), owner, now + lease_s, now),
                )
                outcome = ACCEPT_NEW
            elif row["status"] == "answered":
                outcome = ACCEPT_ANSWERED
            elif row["lease_until"] > now:
                outcome = ACCEPT_IN_PROGRESS
            else:
                conn.execute(
                    "UPDATE inbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 "
                    "WHERE platform = ? AND event_id = ?",
                    (owner, now + lease_s, platform, event_id),
                )
                outcome = ACCEPT_TAKEN_OVER
        return outcome

    def inbox_lease_due(self, platform: str, owner: str, lease_s: float, limit: int = 50) -> list[InboxItem]:
        """Lease unanswered questions whose lease ran out (their process stopped) to ``owner``."""
        now = time.time()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM inbox WHERE platform = ? AND status = 'pending' AND lease_until <= ? "
                "ORDER BY received_at LIMIT ?",
                (platform, now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE inbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 "
                "WHERE platform = ? AND event_id = ?",
                [(owner, now + lease_s, platform, r["event_id"]) for r in rows],
            )
        return [replace(_row_inbox(r), attempts=r["attempts"] + 1) for r in rows]

    def inbox_renew(self, platform: str, event_ids: list[str], owner: str, lease_s: float) -> int:
        """Extend the leases of questions ``owner`` is still answering."""
        until = time.time() + lease_s
        return self._connect().executemany(
            "UPDATE inbox SET lease_until = ? WHERE platform = ? AND event_id = ? AND lease_owner = ? "
            "AND status = 'pending'",
            [(until, platform, event_id, owner) for event_id in event_ids],
        ).rowcount

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

    def reset_conversation(self, platform: str, conversation_id: str, thread_id: str | None = None) -> int:
        """``/reset``: the conversation's turns and their feedback are deleted, not only hidden."""
        conv = self.conversation(platform, conversation_id, thread_id)
        with self._transaction() as conn:
            conn.execute("DELETE FROM feedback WHERE turn_id IN (SELECT id FROM turns WHERE conversation = ?)", (conv,))
            deleted = conn.execute("DELETE FROM turns WHERE conversation = ?", (conv,)).rowcount
            # Turns recorded later by an answer already in flight stay out of the context too.
            conn.execute("UPDATE conversations SET reset_at = ? WHERE id = ?", (time.time(), conv))
        return deleted

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
        scope: str | None = None,
    ) -> Escalation:
        cur = self._connect().execute(
            "INSERT INTO escalations (platform, conversation_id, thread_id, user_id, user_name, question, transcript, "
            "turn_id, created_at, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (platform, conversation_id, thread_id or "", user_id, user_name, question, transcript, turn_id, time.time(),
             scope),
        )
        return self.escalation(int(cur.lastrowid))  # type: ignore[return-value]

    # ---- learned Q&A ----------------------------------------------------------------------
    def add_learned_qa(self, question: str, answer: str, source: str, author: str | None,
                       scope: str | None = None) -> LearnedQA:
        """A pending entry; ``scope`` is the knowledge-base scope it belongs to (None: the default)."""
        cur = self._connect().execute(
            "INSERT INTO learned_qa (question, answer, source, author, created_at, scope) VALUES (?, ?, ?, ?, ?, ?)",
            (question.strip(), answer.strip(), source, author, time.time(), scope),
        )
        return self.learned_qa(int(cur.lastrowid))  # type: ignore[return-value]

    # ---- privacy: forgetting a person, retention --------------------------------------------
    def forget_user(self, platform: str, user_id: str) -> dict[str, int]:
        """Delete one person's questions, answers, feedback, profile, escalations and queued questions.

        Pending or rejected Q&A drafted from their escalations goes too; approved entries were
        reviewed into the knowledge base and hold an agent's answer, so they stay.
        """
        with self._transaction() as conn:
            mine = "SELECT t.id FROM turns t JOIN conversations c ON c.id = t.conversation WHERE c.platform = ? AND t.user_id = ?"
            on_platform = "SELECT t.id FROM turns t JOIN conversations c ON c.id = t.conversation WHERE c.platform = ?"
            counts = {
                "feedback": conn.execute(
                    f"DELETE FROM feedback WHERE turn_id IN ({mine}) OR (user_id = ? AND turn_id IN ({on_platform}))",
                    (platform, user_id, user_id, platform),
                ).rowcount,
                "turns": conn.execute(f"DELETE FROM turns WHERE id IN ({mine})", (platform, user_id)).rowcount,
            }
            escalations = [(r["id"], r["question"]) for r in conn.execute(
                "SELECT id, question FROM escalations WHERE platform = ? AND user_id = ?", (platform, user_id))]
            conn.executemany("DELETE FROM escalation_replies WHERE escalation = ?", [(e,) for e, _ in escalations])
            conn.executemany(
                "DELETE FROM learned_qa WHERE source = 'escalation' AND status != 'approved' AND question = ?",
                [(q.strip(),) for _, q in escalations],
            )
            counts["escalations"] = conn.execute(
                "DELETE FROM escalations WHERE platform = ? AND user_id = ?", (platform, user_id)).rowcount
            counts["profile"] = conn.execute(
                "DELETE FROM profiles WHERE platform = ? AND user_id = ?", (platform, user_id)).rowcount
            counts["inbox"] = conn.execute(
                "DELETE FROM inbox WHERE platform = ? AND user_id = ?", (platform, user_id)).rowcount
        return counts

    def purge_before(self, cutoff: float) -> dict[str, int]:
        """Delete what is older than ``cutoff`` (``ASKDESK_RETENTION_DAYS``); open escalations stay
        until they are closed, because someone is still working on them."""
        with self._transaction() as conn:
            closed_old = "SELECT id FROM escalations WHERE status = 'closed' AND created_at < ?"
            counts = {
                "feedback": conn.execute(
                    "DELETE FROM feedback WHERE created_at < ? OR turn_id IN (SELECT id FROM turns WHERE created_at < ?)",
                    (cutoff, cutoff)).rowcount,
                "turns": conn.execute("DELETE FROM turns WHERE created_at < ?", (cutoff,)).rowcount,
                "escalation_replies": conn.execute(
                    f"DELETE FROM escalation_replies WHERE escalation IN ({closed_old})", (cutoff,)).rowcount,
                "escalations": conn.execute(
                    "DELETE FROM escalations WHERE status = 'closed' AND created_at < ?", (cutoff,)).rowcount,
                "profiles": conn.execute("DELETE FROM profiles WHERE last_seen < ?", (cutoff,)).rowcount,
                "inbox": conn.execute(
                    "DELETE FROM inbox WHERE status = 'answered' AND received_at < ?", (cutoff,)).rowcount,
                "events": conn.execute("DELETE FROM processed_events WHERE processed_at < ?", (cutoff,)).rowcount,
            }
        return counts

    def integrity_ok(self) -> bool:
        """SQLite's own consistency check (the crash tests run it after every kill)."""
        return self._connect().execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
