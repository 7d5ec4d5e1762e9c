"""Persistent state in one embedded SQLite database.

Behind a small interface (:class:`Store`) so a server database can replace SQLite later.
The schema is created and migrated on open (``PRAGMA user_version``); WAL mode and a
per-thread connection make it safe for the bot's worker threads and event loop.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

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
]


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

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
