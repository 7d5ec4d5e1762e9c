"""The store on both backends (SQLite, PostgreSQL), and PostgreSQL shared by several processes.

Every ``any_store`` test runs twice, once per backend; the PostgreSQL half (and the tests that
take ``pg_url``) is skipped, with the reason, where no PostgreSQL server answers. Each
PostgreSQL test has its own schema, created before it and dropped after it.
"""

from __future__ import annotations

import inspect
import multiprocessing
import time
from collections import Counter
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import ConfigError
from core.store import Store, open_store
from core.store_postgres import HEAD_REVISION, MIGRATIONS_DIR, PostgresStore, current_revision, downgrade, migrate


def _turn(store, platform: str, conversation: str, user: str, question: str, thread: str | None = None) -> int:
    conv = store.conversation(platform, conversation, thread)
    return store.record_turn(conv, user, question, "an answer", [{"title": "Refunds", "url": "u"}], 0.9, False,
                             "extractive", "en", 0.25)


# ---- one interface, two backends ------------------------------------------------------------------
def test_both_backends_have_the_same_interface():
    public = {name for name in dir(Store) if not name.startswith("_")}
    assert public <= set(dir(PostgresStore)), public - set(dir(PostgresStore))
    for name in public:
        mine, theirs = getattr(Store, name), getattr(PostgresStore, name)
        if callable(mine):
            assert list(inspect.signature(mine).parameters)[1:] == list(inspect.signature(theirs).parameters)[1:], name


def test_the_settings_choose_the_backend(tmp_path, pg_url):
    sqlite = open_store(Settings(_env_file=None, db_path=tmp_path / "a.db"))
    assert isinstance(sqlite, Store) and sqlite.backend == "sqlite"
    sqlite.close()
    postgres = open_store(Settings(_env_file=None, db_path=tmp_path / "b.db", database_url=pg_url))
    assert isinstance(postgres, PostgresStore) and postgres.backend == "postgresql"
    postgres.close()
    assert not (tmp_path / "b.db").exists()  # with a database URL nothing is written to db_path


def test_an_unreachable_server_is_one_line_without_the_password():
    url = "postgresql://askdesk:s3cret-pw@127.0.0.1:1/askdesk"  # port 1: nothing listens
    with pytest.raises(ConfigError) as caught:
        PostgresStore(url, connect_timeout=2)
    message = str(caught.value)
    assert "s3cret-pw" not in message and "127.0.0.1:1/askdesk" in message and "ASKDESK_DATABASE_URL" in message


def test_a_database_url_must_be_postgresql():
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        Settings(_env_file=None, database_url="mysql://root@localhost/askdesk")
    assert Settings(_env_file=None, database_url="").database_url is None


def test_event_claims(any_store):
    assert any_store.claim_event("slack", "Ev1")
    assert not any_store.claim_event("slack", "Ev1")
    assert any_store.claim_event("telegram", "Ev1")  # platforms do not share ids
    assert any_store.forget_events_before(time.time() + 1) == 2
    assert any_store.claim_event("slack", "Ev1")


def test_answered_inbox_rows_are_forgotten_after_the_cutoff(any_store):
    for event_id in ("Ev1", "Ev2"):
        any_store.inbox_accept("telegram", event_id, {"text": "q"}, "U1", "w", 60)
    any_store.inbox_done("telegram", "Ev1")
    any_store.inbox_accept("slack", "Ev3", {"text": "q"}, "U1", "w", 60)
    any_store.inbox_done("slack", "Ev3")
    assert any_store.inbox_forget_answered_before(time.time() - 3600) == 0, "younger than the cutoff"
    assert any_store.inbox_forget_answered_before(time.time() + 1) == 2
    assert any_store.inbox_item("telegram", "Ev1") is None and any_store.inbox_item("slack", "Ev3") is None
    assert any_store.inbox_item("telegram", "Ev2").status == "pending", "an unanswered question stays"


def test_conversations_turns_and_reset(any_store):
    conv = any_store.conversation("slack", "T:C1", "1700.1")
    assert any_store.conversation("slack", "T:C1", "1700.1") == conv
    assert any_store.conversation("slack", "T:C1") != conv  # another thread is another conversation
    first = _turn(any_store, "slack", "T:C1", "U1", "How long do refunds take?", "1700.1")
    second = _turn(any_store, "slack", "T:C1", "U1", "and for gift cards?", "1700.1")
    turns = any_store.recent_turns(conv, 10)
    assert [t.id for t in turns] == [first, second]
    stored = any_store.turn(first)
    assert stored.question == "How long do refunds take?" and stored.citations == [{"title": "Refunds", "url": "u"}]
    assert stored.refused is False and stored.mode == "extractive" and stored.latency_s == pytest.approx(0.25)
    assert isinstance(stored.created_at, float) and abs(stored.created_at - time.time()) < 60
    assert [t.id for t in any_store.recent_turns(conv, 1)] == [second]
    assert [t.id for t in any_store.turns_since()] == [first, second]
    any_store.record_feedback(first, "U1", 1)
    assert any_store.reset_conversation("slack", "T:C1", "1700.1") == 2
    assert any_store.recent_turns(conv, 10) == [] and any_store.feedback_since() == []
    assert any_store.turn(first) is None


def test_feedback_counts_changes_only(any_store):
    turn = _turn(any_store, "telegram", "100", "7", "q")
    with pytest.raises(ValueError):
        any_store.record_feedback(turn, "7", 0)
    assert any_store.record_feedback(turn, "7", 1)
    assert not any_store.record_feedback(turn, "7", 1)  # a repeated click changes nothing
    assert any_store.record_feedback(turn, "7", -1)
    assert any_store.record_feedback(turn, "8", 1)
    assert sorted(any_store.feedback_since()) == [(turn, "7", -1), (turn, "8", 1)]


def test_profiles(any_store):
    assert any_store.profile("slack", "U1") is None
    first = any_store.touch_profile("slack", "U1", "Ann", "en")
    assert (first.display_name, first.language, first.question_count) == ("Ann", "en", 1)
    again = any_store.touch_profile("slack", "U1", None, "de")  # unknown name keeps the old one
    assert (again.display_name, again.language, again.question_count) == ("Ann", "de", 2)
    assert any_store.profile("slack", "U1") == again


def test_escalations_and_replies(any_store):
    esc = any_store.open_escalation("slack", "T:C1", "1700.1", "U1", "Ann", "where is my order", "transcript", 5)
    assert esc.status == "open" and esc.thread_id == "1700.1" and esc.turn_id == 5 and esc.support_ref is None
    assert any_store.escalation(esc.id) == esc
    assert any_store.open_escalation_for("slack", "T:C1", "1700.1") == esc
    assert any_store.open_escalation_for("slack", "T:C1") is None
    any_store.set_escalation_ref(esc.id, "C0SUPPORT:1800.1")
    assert any_store.escalation_by_ref("C0SUPPORT:1800.1").id == esc.id
    any_store.add_escalation_reply(esc.id, "agent", "on its way")
    any_store.add_escalation_reply(esc.id, None, "second")
    assert any_store.escalation_replies(esc.id) == [("agent", "on its way"), (None, "second")]
    assert any_store.close_escalation(esc.id, "agent")
    assert not any_store.close_escalation(esc.id, "agent")  # a second close is a no-op
    assert any_store.open_escalation_for("slack", "T:C1", "1700.1") is None
    assert [e.id for e in any_store.escalations_since()] == [esc.id]
    assert any_store.escalation(esc.id).status == "closed"


def test_learned_answers(any_store):
    entry = any_store.add_learned_qa("  Do you ship to Mars? ", " Not yet. ", source="cli", author="ann")
    assert (entry.question, entry.answer, entry.status) == ("Do you ship to Mars?", "Not yet.", "pending")
    assert any_store.learned_qa(entry.id) == entry
    other = any_store.add_learned_qa("q2", "a2", source="escalation", author=None)
    with pytest.raises(ValueError):
        any_store.review_learned_qa(entry.id, "maybe")
    assert any_store.review_learned_qa(entry.id, "approved")
    assert not any_store.review_learned_qa(entry.id, "rejected")  # reviewed once
    assert [e.id for e in any_store.learned_qas("approved")] == [entry.id]
    assert [e.id for e in any_store.learned_qas()] == [entry.id, other.id]
    assert any_store.learned_qa(999_999) is None
    assert entry.scope is None  # no scope given: the default scope


def test_learned_answers_and_escalations_keep_their_scope(any_store):
    esc = any_store.open_escalation("telegram", "5", None, "5", "Ann", "q?", "", scope="customers")
    assert esc.scope == "customers" and any_store.escalation(esc.id).scope == "customers"
    assert any_store.open_escalation("slack", "T:C", None, "U1", None, "q?", "").scope is None
    entry = any_store.add_learned_qa("q?", "a.", source="escalation", author="Grace", scope=esc.scope)
    assert entry.scope == "customers" and any_store.learned_qas("pending")[0].scope == "customers"


def test_forget_a_person(any_store):
    mine = _turn(any_store, "slack", "T:D1", "U1", "question one")
    theirs = _turn(any_store, "slack", "T:C1", "U2", "question two")
    elsewhere = _turn(any_store, "telegram", "U1", "U1", "another platform's user U1")
    any_store.record_feedback(mine, "U1", -1)
    any_store.record_feedback(theirs, "U1", 1)
    any_store.touch_profile("slack", "U1", "Ann", "en")
    esc = any_store.open_escalation("slack", "T:D1", None, "U1", "Ann", "question one", "transcript")
    any_store.add_escalation_reply(esc.id, "agent", "the reply")
    any_store.add_learned_qa("question one", "the reply", source="escalation", author="agent")
    kept = any_store.add_learned_qa("question one", "reviewed", source="escalation", author="agent")
    any_store.review_learned_qa(kept.id, "approved")
    any_store.inbox_accept("slack", "Ev1", {"text": "queued"}, "U1", "w", 60)
    counts = any_store.forget_user("slack", "U1")
    assert counts == {"feedback": 2, "turns": 1, "escalations": 1, "profile": 1, "inbox": 1}
    assert any_store.turn(mine) is None and any_store.turn(theirs) and any_store.turn(elsewhere)
    assert any_store.escalation(esc.id) is None and any_store.escalation_replies(esc.id) == []
    assert [e.id for e in any_store.learned_qas()] == [kept.id]  # approved knowledge stays
    assert any_store.inbox_item("slack", "Ev1") is None and any_store.profile("slack", "U1") is None


def test_purge_keeps_open_escalations_and_recent_data(any_store):
    old = _turn(any_store, "slack", "T:C", "U1", "old")
    closed = any_store.open_escalation("slack", "T:C", None, "U1", None, "old", "")
    any_store.add_escalation_reply(closed.id, "agent", "done")
    any_store.close_escalation(closed.id, "agent")
    still_open = any_store.open_escalation("slack", "T:C2", None, "U2", None, "old too", "")
    any_store.inbox_accept("slack", "Ev9", {}, "U1", "w", 60)
    any_store.inbox_done("slack", "Ev9")
    any_store.claim_event("slack", "Ev9")
    counts = any_store.purge_before(time.time() + 1)
    assert counts == {"feedback": 0, "turns": 1, "escalation_replies": 1, "escalations": 1, "profiles": 0,
                      "inbox": 1, "events": 1}
    assert any_store.turn(old) is None and any_store.escalation(still_open.id) is not None


def test_integrity_and_schema_version(any_store):
    assert any_store.integrity_ok()
    assert any_store.schema_version >= 1


def test_a_closed_store_reconnects(any_store):
    any_store.claim_event("slack", "before")
    any_store.close()
    assert not any_store.claim_event("slack", "before")


# ---- PostgreSQL: migrations -------------------------------------------------------------------------
def test_head_revision_matches_the_migrations():
    from alembic.script import ScriptDirectory

    from core.store_postgres import alembic_config

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [HEAD_REVISION], f"set core.store_postgres.HEAD_REVISION to {heads}"
    assert (MIGRATIONS_DIR / "versions").is_dir()


def test_the_0002_migration_keeps_learned_rows_as_the_default_scope(pg_url):
    import psycopg

    assert migrate(pg_url, "0001") == "0001"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO learned_qa (question, answer, source, author, created_at) "
                     "VALUES ('Do you ship to Iceland?', 'Yes.', 'escalation', 'Grace', 1)")
        conn.execute("INSERT INTO escalations (platform, conversation_id, question, created_at) "
                     "VALUES ('slack', 'T:C', 'q', 1)")
    store = PostgresStore(pg_url)  # opens at 0001: upgrades to the head
    try:
        assert current_revision(pg_url) == HEAD_REVISION == "0002"
        (entry,) = store.learned_qas("pending")
        assert (entry.question, entry.scope) == ("Do you ship to Iceland?", None)
        assert store.escalations_since()[0].scope is None
        assert store.add_learned_qa("q", "a", source="slack", author=None, scope="internal").scope == "internal"
    finally:
        store.close()
    assert downgrade(pg_url, "0001") == "0001"  # and back: the rows stay, without their scope
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM learned_qa").fetchone()[0] == 2


def test_migrations_go_down_and_up_again(pg_url):
    assert current_revision(pg_url) is None
    store = PostgresStore(pg_url)
    store.claim_event("slack", "Ev1")
    store.close()
    assert current_revision(pg_url) == HEAD_REVISION
    assert migrate(pg_url) == HEAD_REVISION  # nothing left to do: idempotent
    assert downgrade(pg_url, "base") is None  # every revision's downgrade works
    assert migrate(pg_url) == HEAD_REVISION
    again = PostgresStore(pg_url)
    assert again.claim_event("slack", "Ev1") and again.integrity_ok()
    again.close()


def _open_store(url: str, go, results) -> None:
    go.wait(30)
    try:
        store = PostgresStore(url)
        results.put(("ok", store.schema_version))
        store.close()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(("error", repr(exc)))


def test_workers_starting_together_migrate_once(pg_url):
    """Five processes open a brand-new database at the same moment: one migrates, none fails."""
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_open_store, args=(pg_url, go, results)) for _ in range(5)]
    for proc in procs:
        proc.start()
    time.sleep(1.0)  # let them import
    go.set()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert outcomes == [("ok", int(HEAD_REVISION))] * 5, outcomes
    import psycopg

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1


def test_the_cli_upgrades_and_reports_the_schema(pg_url, tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASKDESK_")}
    env.update({"ASKDESK_DATABASE_URL": pg_url, "PYTHONPATH": str(root)})
    run = [sys.executable, "-m", "bots.cli", "db"]
    before = subprocess.run([*run, "current"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert before.returncode == 0, before.stderr
    assert "revision none" in before.stdout
    up = subprocess.run([*run, "upgrade"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert up.returncode == 0 and f"revision {HEAD_REVISION}" in up.stdout, up.stderr
    env["ASKDESK_DATABASE_URL"] = "postgresql://askdesk:s3cret-pw@127.0.0.1:1/askdesk"
    down = subprocess.run([*run, "current"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert down.returncode == 2 and "ASKDESK_DATABASE_URL" in down.stderr and "s3cret-pw" not in down.stderr
    assert "Traceback" not in down.stderr


# ---- PostgreSQL: several processes on one database ------------------------------------------------------
N_PROCESSES = 4
N_EVENTS = 150


def _contend(url: str, worker: int, go, results) -> None:
    """What one worker does with every shared thing; results say what it won."""
    from core.inbox import Inbox

    store = PostgresStore(url)
    inbox = Inbox(store, "slack", lease_s=60)
    expired = Inbox(store, "telegram", lease_s=60)
    go.wait(30)
    won: dict[str, list] = {"claims": [], "accepts": [], "leases": [], "feedback": [], "closes": [], "reviews": [],
                            "conversations": []}
    for n in range(N_EVENTS):
        if store.claim_event("slack", f"Claim{n}"):
            won["claims"].append(n)
        if inbox.accept(f"Ev{n}", {"n": n}, f"U{n % 7}").answer_now:
            won["accepts"].append(n)
        if n % 10 == 0:
            won["leases"] += [item.event_id for item in expired.due(limit=7)]
    won["leases"] += [item.event_id for item in expired.due(limit=500)]
    turn_ids, escalation_ids, qa_ids = _shared_ids(store)
    for turn_id in turn_ids:
        if store.record_feedback(turn_id, "UVOTER", 1):
            won["feedback"].append(turn_id)
    for escalation_id in escalation_ids:
        if store.close_escalation(escalation_id, f"agent{worker}"):
            won["closes"].append(escalation_id)
    for qa_id in qa_ids:
        if store.review_learned_qa(qa_id, "approved"):
            won["reviews"].append(qa_id)
    for n in range(30):
        won["conversations"].append((n, store.conversation("slack", f"T:C{n}", "thread")))
        _turn(store, "slack", f"T:C{n}", f"U{worker}", f"question {n} from {worker}", "thread")
    store.close()
    results.put((worker, won))


def _shared_ids(store) -> tuple[list[int], list[int], list[int]]:
    return ([t.id for t in store.turns_since() if t.question.startswith("seed")],
            [e.id for e in store.escalations_since()],
            [q.id for q in store.learned_qas()])


def test_several_processes_share_one_database_without_doing_anything_twice(pg_url):
    """Four processes race for the same event ids, inbox questions, expired leases, clicks, closes,
    reviews and conversations: each is won by exactly one of them and none is lost."""
    from core.inbox import Inbox

    seed = PostgresStore(pg_url)
    dead = Inbox(seed, "telegram", lease_s=0.0)  # a stopped worker's questions, lease already run out
    for n in range(60):
        dead.accept(f"Left{n}", {"n": n}, "7")
    for n in range(40):
        _turn(seed, "slack", "T:SEED", "U1", f"seed {n}")
        seed.open_escalation("slack", f"T:E{n}", None, "U1", None, f"help {n}", "")
        seed.add_learned_qa(f"q{n}", f"a{n}", source="cli", author=None)

    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(pg_url, w, go, results)) for w in range(N_PROCESSES)]
    for proc in procs:
        proc.start()
    time.sleep(1.5)
    go.set()
    won = dict(results.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0

    def tally(kind: str) -> Counter:
        return Counter(x for w in won.values() for x in w[kind])

    for kind, expected in (("claims", N_EVENTS), ("accepts", N_EVENTS), ("leases", 60), ("feedback", 40),
                           ("closes", 40), ("reviews", 40)):
        counts = tally(kind)
        assert len(counts) == expected, f"{kind}: {expected - len(counts)} lost"
        assert set(counts.values()) == {1}, f"{kind}: won twice: {[k for k, c in counts.items() if c > 1]}"
    # The same conversation key is one row, whichever process asked first; every turn is in it.
    ids = {}
    for w in won.values():
        for n, conv in w["conversations"]:
            assert ids.setdefault(n, conv) == conv
    assert all(len(seed.recent_turns(conv, 100)) == N_PROCESSES for conv in ids.values())
    assert seed.inbox_pending("slack") == N_EVENTS and seed.integrity_ok()
    seed.close()


def test_an_invalid_database_url_is_one_line_without_the_password(monkeypatch, capsys):
    from bots import cli
    from core.config import get_settings

    monkeypatch.setenv("ASKDESK_DATABASE_URL", "mysql://root:s3cret-pw@db.internal/askdesk")
    get_settings.cache_clear()
    try:
        assert cli.main(["purge"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid setting ASKDESK_DATABASE_URL:") and "PostgreSQL URL" in err
    assert "s3cret-pw" not in err and len(err.splitlines()) == 1


def test_a_lost_connection_is_replaced_on_the_next_call(pg_url):
    """A PostgreSQL restart or failover: the call that finds the connection gone fails (the Slack
    adapter answers 503 and Slack retries); the next one reconnects."""
    import psycopg

    store = PostgresStore(pg_url)
    assert store.claim_event("slack", "Ev1")
    pid = store._connect().info.backend_pid  # noqa: SLF001
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        store.claim_event("slack", "Ev2")
    assert store.claim_event("slack", "Ev3") and not store.claim_event("slack", "Ev1")
    store.close()


def test_close_closes_idle_connections_of_every_thread(pg_url):
    import threading

    import psycopg

    store = PostgresStore(pg_url)
    pids = [store._connect().info.backend_pid]  # noqa: SLF001
    worker = threading.Thread(target=lambda: pids.append(store._connect().info.backend_pid))  # noqa: SLF001
    worker.start()
    worker.join(10)
    assert len(set(pids)) == 2

    def alive() -> int:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()[0]

    assert alive() == 2
    store.close()
    for _ in range(50):  # the server notices the closed sockets at once; give it a moment
        if alive() == 0:
            break
        time.sleep(0.05)
    assert alive() == 0
    assert store.claim_event("slack", "again")  # reconnects
    store.close()
