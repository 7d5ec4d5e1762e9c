"""The store on PostgreSQL: the same interface as :class:`core.store.Store`, shared by N workers.

Selected by ``ASKDESK_DATABASE_URL`` (see :func:`core.store.open_store`). Several processes,
on one machine or many, serve one platform against one database; what must happen once
happens once because the database decides it, in one statement each:

- an event claim is ``INSERT … ON CONFLICT DO NOTHING`` (the first worker's insert wins);
- a delivered question enters the inbox the same way; a redelivery takes a question over only
  through ``UPDATE … WHERE lease_until <= now``, which one worker at most can win;
- questions left by a stopped worker are leased with ``SELECT … FOR UPDATE SKIP LOCKED``, so
  two workers looking at once split them instead of both answering them.

The schema is managed by Alembic (``core/postgres_migrations``); :func:`migrate` applies what
is missing under a PostgreSQL advisory lock, so workers starting together migrate once.
Connections are per thread (psycopg 3, autocommit), like the SQLite store's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.store import ACCEPT_ANSWERED, ACCEPT_IN_PROGRESS, ACCEPT_NEW, ACCEPT_TAKEN_OVER
from core.store_queries import (
    LEARNED_COLUMNS,
    Escalation,
    InboxItem,
    LearnedQA,
    Profile,
    SharedQueries,
    _row_escalation,
    _row_inbox,
)

#: The newest revision in ``core/postgres_migrations/versions`` (a test checks they agree). A store
#: whose database is already there opens without loading Alembic at all.
HEAD_REVISION = "0002"
#: ``pg_advisory_xact_lock`` key held while migrating ("askdesk" in ASCII): one migrator at a time.
SCHEMA_LOCK_KEY = 0x61736B6465736B
MIGRATIONS_DIR = Path(__file__).with_name("postgres_migrations")


def describe(url: str) -> str:
    """``host:port/dbname`` of a URL, for messages (never the password)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by psycopg itself
        return "the database in ASKDESK_DATABASE_URL"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or '?'}"


def connection_error(url: str, exc: Exception) -> ConfigError:
    from core.redaction import Redactor

    reason = Redactor([url])(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return ConfigError(
        f"Cannot use the PostgreSQL database at {describe(url)} ({reason}). Check ASKDESK_DATABASE_URL "
        "(user, password, host, port, database name) and that the server is running and reachable."
    )


def migration_engine(url: str) -> Any:
    """A SQLAlchemy engine for Alembic over the same psycopg connection string the store uses."""
    import psycopg
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url), poolclass=NullPool)


def schema_lock(connection: Any) -> None:
    """Hold the schema lock until the connection's transaction ends (other migrators wait)."""
    from sqlalchemy import text

    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def downgrade(url: str, revision: str) -> str | None:
    """Take the schema back to ``revision`` ("base": askdesk's tables dropped), under the same lock.

    For rolling back an upgrade (data in dropped tables or columns is lost: back up first)."""
    return migrate(url, revision, down=True)


def migrate(url: str, revision: str = "head", *, down: bool = False) -> str | None:
    """Bring the schema to ``revision`` (Alembic ``upgrade``), once even when N workers start at once.

    The upgrade runs in one transaction holding an advisory lock: a second worker waits, then
    finds nothing left to do. PostgreSQL's DDL is transactional, so a failed migration leaves
    the schema as it was. Returns the revision the database is at afterwards.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = migration_engine(url)
    try:
        with engine.begin() as connection:
            schema_lock(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database is at (None: askdesk's schema is not there yet)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


class PostgresStore(SharedQueries):
    """Access to askdesk's PostgreSQL database; one instance per process, shared by threads.

    Same methods, arguments and results as :class:`core.store.Store`; those that are the same SQL
    on both backends come from :class:`SharedQueries`.
    """

    backend = "postgresql"

    def __init__(self, url: str, *, connect_timeout: float = 10.0, migrate_schema: bool = True) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        try:
            if migrate_schema and self._revision() != HEAD_REVISION:
                migrate(url)
        except ConfigError:
            raise
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.OperationalError):
                raise connection_error(url, exc) from exc
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({describe(self.url)!r})"

    # ---- connections ------------------------------------------------------------------------
    def _connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            import psycopg
            from psycopg.rows import dict_row

            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row,
                                   connect_timeout=max(1, int(self.connect_timeout)))
            self._local.conn = conn
            with self._lock:
                self._connections = {c for c in self._connections if not c.closed}
                self._connections.add(conn)
        return conn

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one of the shared statements (:class:`SharedQueries`), their ``?`` placeholders as psycopg's ``%s``.

        The shared SQL holds no literal ``%`` (psycopg would read it as a placeholder) and no ``?``
        but placeholders, so the translation is a plain replace.
        """
        if "%" in sql:
            raise ValueError(f"shared SQL must not contain '%': {sql!r}")
        return self._connect().execute(sql.replace("?", "%s"), params)

    def _revision(self) -> str | None:
        conn = self._connect()
        if conn.execute("SELECT to_regclass('alembic_version') IS NULL AS missing").fetchone()["missing"]:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone()
        return row["version_num"] if row else None

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        conn = self._connect()
        with conn.transaction():
            yield conn

    @property
    def schema_version(self) -> int:
        """The Alembic revision number (0001 → 1)."""
        revision = self._revision()
        return int(revision) if revision else 0

    # ---- idempotency --------------------------------------------------------------------
    def claim_event(self, platform: str, event_id: str) -> bool:
        """True for the one worker whose insert wins; False for every redelivery, in any worker."""
        cur = self._connect().execute(
            "INSERT INTO processed_events (platform, event_id, processed_at) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (platform, event_id, time.time()),
        )
        return cur.rowcount == 1

    # ---- inbox --------------------------------------------------------------------------------
    def inbox_accept(
        self, platform: str, event_id: str, payload: dict[str, Any], user_id: str | None, owner: str, lease_s: float
    ) -> str:
        """Persist a question before it is acknowledged and lease it to ``owner`` (see Store.inbox_accept).

        Each step is one atomic statement: the insert of a new question, or the take-over of one
        whose lease ran out. Of workers receiving the same event at once, one gets "new" (or
        "taken_over"); the others see the winner's lease and only acknowledge.
        """
        conn = self._connect()
        body = json.dumps(payload, ensure_ascii=False)
        for _ in range(5):  # a row deleted between two steps (forget, purge) means: start again
            now = time.time()
            if conn.execute(
                "INSERT INTO inbox (platform, event_id, user_id, payload, attempts, lease_owner, lease_until, "
                "received_at) VALUES (%s, %s, %s, %s, 1, %s, %s, %s) ON CONFLICT DO NOTHING",
                (platform, event_id, user_id, body, owner, now + lease_s, now),
            ).rowcount == 1:
                return ACCEPT_NEW
            if conn.execute(
                "UPDATE inbox SET lease_owner = %s, lease_until = %s, attempts = attempts + 1 "
                "WHERE platform = %s AND event_id = %s AND status = 'pending' AND lease_until <= %s",
                (owner, now + lease_s, platform, event_id, now),
            ).rowcount == 1:
                return ACCEPT_TAKEN_OVER
            row = conn.execute(
                "SELECT status FROM inbox WHERE platform = %s AND event_id = %s", (platform, event_id)
            ).fetchone()
            if row is not None:
                return ACCEPT_ANSWERED if row["status"] == "answered" else ACCEPT_IN_PROGRESS
        raise RuntimeError(f"inbox_accept: {platform} {event_id} kept changing; retry the delivery")

    def inbox_lease_due(self, platform: str, owner: str, lease_s: float, limit: int = 50) -> list[InboxItem]:
        """Lease questions whose lease ran out to ``owner``; rows another worker is leasing are skipped."""
        now = time.time()
        rows = self._connect().execute(
            "UPDATE inbox SET lease_owner = %s, lease_until = %s, attempts = attempts + 1 "
            "WHERE (platform, event_id) IN ("
            "  SELECT platform, event_id FROM inbox WHERE platform = %s AND status = 'pending' AND lease_until <= %s "
            "  ORDER BY received_at LIMIT %s FOR UPDATE SKIP LOCKED"
            ") RETURNING *",
            (owner, now + lease_s, platform, now, limit),
        ).fetchall()
        rows.sort(key=lambda r: (r["received_at"], r["event_id"]))
        return [_row_inbox(r) for r in rows]

    def inbox_renew(self, platform: str, event_ids: list[str], owner: str, lease_s: float) -> int:
        return self._connect().execute(
            "UPDATE inbox SET lease_until = %s WHERE platform = %s AND event_id = ANY(%s) AND lease_owner = %s "
            "AND status = 'pending'",
            (time.time() + lease_s, platform, list(event_ids), owner),
        ).rowcount

    # ---- conversations and turns ----------------------------------------------------------
    def conversation(self, platform: str, conversation_id: str, thread_id: str | None = None) -> int:
        conn = self._connect()
        key = (platform, conversation_id, thread_id or "")
        row = conn.execute(
            "INSERT INTO conversations (platform, conversation_id, thread_id, created_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING id",
            (*key, time.time()),
        ).fetchone()
        if row is None:  # there already (the conflict waited for its writer, so this sees it)
            row = conn.execute(
                "SELECT id FROM conversations WHERE platform = %s AND conversation_id = %s AND thread_id = %s", key
            ).fetchone()
        return int(row["id"])

    def reset_conversation(self, platform: str, conversation_id: str, thread_id: str | None = None) -> int:
        conv = self.conversation(platform, conversation_id, thread_id)
        with self._transaction() as conn:
            conn.execute("DELETE FROM feedback WHERE turn_id IN (SELECT id FROM turns WHERE conversation = %s)", (conv,))
            deleted = conn.execute("DELETE FROM turns WHERE conversation = %s", (conv,)).rowcount
            conn.execute("UPDATE conversations SET reset_at = %s WHERE id = %s", (time.time(), conv))
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
        row = self._connect().execute(
            "INSERT INTO turns (conversation, user_id, question, answer, citations, confidence, refused, mode, "
            "language, latency_s, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (conversation, user_id, question, answer, json.dumps(citations, ensure_ascii=False), float(confidence),
             bool(refused), mode, language, float(latency_s), time.time()),
        ).fetchone()
        return int(row["id"])

    # ---- feedback -------------------------------------------------------------------------
    def record_feedback(self, turn_id: int, user_id: str, value: int) -> bool:
        """Store a 👍 (+1) or 👎 (-1); True when it changed something. One statement, so two
        workers handling the same click at once count it once."""
        if value not in (-1, 1):
            raise ValueError("feedback value must be 1 or -1")
        row = self._connect().execute(
            "INSERT INTO feedback (turn_id, user_id, value, created_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (turn_id, user_id) DO UPDATE SET value = excluded.value, created_at = excluded.created_at "
            "WHERE feedback.value <> excluded.value RETURNING 1 AS changed",
            (turn_id, user_id, value, time.time()),
        ).fetchone()
        return row is not None

    # ---- profiles -------------------------------------------------------------------------
    def touch_profile(self, platform: str, user_id: str, display_name: str | None, language: str | None) -> Profile:
        now = time.time()
        row = self._connect().execute(
            "INSERT INTO profiles (platform, user_id, display_name, language, question_count, first_seen, last_seen) "
            "VALUES (%s, %s, %s, %s, 1, %s, %s) ON CONFLICT (platform, user_id) DO UPDATE SET "
            "display_name = COALESCE(excluded.display_name, profiles.display_name), "
            "language = COALESCE(excluded.language, profiles.language), "
            "question_count = profiles.question_count + 1, last_seen = excluded.last_seen "
            "RETURNING platform, user_id, display_name, language, question_count",
            (platform, user_id, display_name, language, now, now),
        ).fetchone()
        return Profile(**row)

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
        row = self._connect().execute(
            "INSERT INTO escalations (platform, conversation_id, thread_id, user_id, user_name, question, transcript, "
            "turn_id, created_at, scope) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (platform, conversation_id, thread_id or "", user_id, user_name, question, transcript, turn_id, time.time(),
             scope),
        ).fetchone()
        return _row_escalation(row)

    # ---- learned Q&A ----------------------------------------------------------------------
    def add_learned_qa(self, question: str, answer: str, source: str, author: str | None,
                       scope: str | None = None) -> LearnedQA:
        row = self._connect().execute(
            "INSERT INTO learned_qa (question, answer, source, author, created_at, scope) "
            f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {LEARNED_COLUMNS}",
            (question.strip(), answer.strip(), source, author, time.time(), scope),
        ).fetchone()
        return LearnedQA(**row)

    # ---- privacy: forgetting a person, retention --------------------------------------------
    def forget_user(self, platform: str, user_id: str) -> dict[str, int]:
        """Delete one person's data in one transaction (see Store.forget_user for what goes and stays)."""
        with self._transaction() as conn:
            mine = ("SELECT t.id FROM turns t JOIN conversations c ON c.id = t.conversation "
                    "WHERE c.platform = %s AND t.user_id = %s")
            on_platform = "SELECT t.id FROM turns t JOIN conversations c ON c.id = t.conversation WHERE c.platform = %s"
            counts = {
                "feedback": conn.execute(
                    f"DELETE FROM feedback WHERE turn_id IN ({mine}) OR (user_id = %s AND turn_id IN ({on_platform}))",
                    (platform, user_id, user_id, platform),
                ).rowcount,
                "turns": conn.execute(f"DELETE FROM turns WHERE id IN ({mine})", (platform, user_id)).rowcount,
            }
            escalations = conn.execute(
                "SELECT id, question FROM escalations WHERE platform = %s AND user_id = %s", (platform, user_id)
            ).fetchall()
            conn.execute("DELETE FROM escalation_replies WHERE escalation = ANY(%s)", ([int(e["id"]) for e in escalations],))
            conn.execute(
                "DELETE FROM learned_qa WHERE source = 'escalation' AND status <> 'approved' AND question = ANY(%s)",
                ([e["question"].strip() for e in escalations],),
            )
            counts["escalations"] = conn.execute(
                "DELETE FROM escalations WHERE platform = %s AND user_id = %s", (platform, user_id)).rowcount
            counts["profile"] = conn.execute(
                "DELETE FROM profiles WHERE platform = %s AND user_id = %s", (platform, user_id)).rowcount
            counts["inbox"] = conn.execute(
                "DELETE FROM inbox WHERE platform = %s AND user_id = %s", (platform, user_id)).rowcount
        return counts

    def purge_before(self, cutoff: float) -> dict[str, int]:
        """Delete what is older than ``cutoff``; open escalations stay until they are closed."""
        with self._transaction() as conn:
            closed_old = "SELECT id FROM escalations WHERE status = 'closed' AND created_at < %s"
            counts = {
                "feedback": conn.execute(
                    "DELETE FROM feedback WHERE created_at < %s OR turn_id IN (SELECT id FROM turns WHERE created_at < %s)",
                    (cutoff, cutoff)).rowcount,
                "turns": conn.execute("DELETE FROM turns WHERE created_at < %s", (cutoff,)).rowcount,
                "escalation_replies": conn.execute(
                    f"DELETE FROM escalation_replies WHERE escalation IN ({closed_old})", (cutoff,)).rowcount,
                "escalations": conn.execute(
                    "DELETE FROM escalations WHERE status = 'closed' AND created_at < %s", (cutoff,)).rowcount,
                "profiles": conn.execute("DELETE FROM profiles WHERE last_seen < %s", (cutoff,)).rowcount,
                "inbox": conn.execute(
                    "DELETE FROM inbox WHERE status = 'answered' AND received_at < %s", (cutoff,)).rowcount,
                "events": conn.execute("DELETE FROM processed_events WHERE processed_at < %s", (cutoff,)).rowcount,
            }
        return counts

    def integrity_ok(self) -> bool:
        """The schema is at the expected revision and every table reads to the end.

        PostgreSQL keeps itself consistent across crashes (its write-ahead log); this checks that
        askdesk's tables are there and readable, which is what a damaged or foreign database fails.
        """
        try:
            if self._revision() != HEAD_REVISION:
                return False
            conn = self._connect()
            for table in ("processed_events", "conversations", "turns", "feedback", "profiles", "escalations",
                          "escalation_replies", "learned_qa", "inbox"):
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed names
        except Exception:  # noqa: BLE001 - any failure to read is "not ok"
            return False
        return True

    def close(self) -> None:
        """Close this thread's connection and every other thread's that is idle (not in a query or a
        transaction); a connection in use is left to its thread. Any later call reconnects."""
        from psycopg.pq import TransactionStatus

        mine = getattr(self._local, "conn", None)
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            if conn is not mine and not conn.lock.acquire(blocking=False):
                continue  # a query is running on it in another thread
            try:
                if conn is mine or conn.closed or conn.info.transaction_status == TransactionStatus.IDLE:
                    conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            finally:
                if conn is not mine:
                    conn.lock.release()
            if conn.closed:
                with self._lock:
                    self._connections.discard(conn)
        self._local.conn = None
