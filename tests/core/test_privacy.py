"""People's data: private files, /reset that deletes, forgetting a person, retention, safe logs."""

from __future__ import annotations

import io
import logging
import os
import stat
import subprocess
import sys
import time

from core.config import Settings
from core.redaction import MASK, RedactingFormatter, Redactor, configure_logging, secrets_from_env
from core.retention import purge_expired
from core.store import Store


def _turn(store: Store, platform: str, conversation: str, user: str, question: str) -> int:
    conv = store.conversation(platform, conversation)
    return store.record_turn(conv, user, question, "an answer", [], 0.9, False, "composed", "en", 0.1)


def test_the_database_is_private(tmp_path):
    path = tmp_path / "state" / "askdesk.db"
    store = Store(path)
    _turn(store, "slack", "T:C", "U1", "my salary question")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        assert stat.S_IMODE(wal.stat().st_mode) & 0o077 == 0


def test_an_old_world_readable_database_is_narrowed(tmp_path):
    path = tmp_path / "askdesk.db"
    Store(path).close()
    path.chmod(0o644)
    Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_reset_deletes_the_conversation(tmp_path):
    store = Store(tmp_path / "db")
    turn = _turn(store, "telegram", "100", "7", "my private question")
    store.record_feedback(turn, "7", 1)
    other = _turn(store, "telegram", "200", "8", "someone else's")
    assert store.reset_conversation("telegram", "100") == 1
    assert store.turn(turn) is None and store.turn(other) is not None
    assert store.feedback_since() == []
    assert store.recent_turns(store.conversation("telegram", "100"), 10) == []


def test_forget_a_person_removes_everything_about_them(tmp_path):
    store = Store(tmp_path / "db")
    mine = _turn(store, "slack", "T:D1", "U1", "question one")
    theirs = _turn(store, "slack", "T:C1", "U2", "question two")
    same_id_elsewhere = _turn(store, "telegram", "U1", "U1", "another platform's user U1")
    store.record_feedback(mine, "U1", -1)
    store.record_feedback(theirs, "U1", 1)  # U1's vote on someone else's answer
    store.touch_profile("slack", "U1", "Ann", "en")
    esc = store.open_escalation("slack", "T:D1", None, "U1", "Ann", "question one", "transcript")
    store.add_escalation_reply(esc.id, "agent", "the reply")
    store.add_learned_qa("question one", "the reply", source="escalation", author="agent")
    store.inbox_accept("slack", "Ev1", {"text": "queued"}, "U1", "w", 60)
    counts = store.forget_user("slack", "U1")
    assert counts == {"feedback": 2, "turns": 1, "escalations": 1, "profile": 1, "inbox": 1}
    assert store.turn(mine) is None and store.turn(theirs) is not None and store.turn(same_id_elsewhere) is not None
    assert store.profile("slack", "U1") is None and store.escalation(esc.id) is None
    assert store.escalation_replies(esc.id) == [] and store.learned_qas() == []
    assert store.inbox_item("slack", "Ev1") is None


def test_forget_from_the_cli(tmp_path):
    db = tmp_path / "db"
    store = Store(db)
    _turn(store, "telegram", "55", "55", "forget me")
    store.close()
    env = {**os.environ, "ASKDESK_DB_PATH": str(db)}
    out = subprocess.run([sys.executable, "-m", "bots.cli", "forget", "--platform", "telegram", "--user", "55"],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert "1 turns" in out
    assert Store(db).turns_since() == []


def test_retention_purges_old_data_but_not_open_escalations(tmp_path):
    store = Store(tmp_path / "db")
    old = _turn(store, "slack", "T:C", "U1", "old")
    closed = store.open_escalation("slack", "T:C", None, "U1", None, "old", "")
    store.close_escalation(closed.id, "agent")
    still_open = store.open_escalation("slack", "T:C2", None, "U2", None, "old too", "")
    later = time.time() + 40 * 86400
    assert purge_expired(store, Settings(retention_days=None), now=later) == {}
    counts = purge_expired(store, Settings(retention_days=30), now=later)
    assert counts["turns"] == 1 and counts["escalations"] == 1
    assert store.turn(old) is None and store.escalation(closed.id) is None
    assert store.escalation(still_open.id) is not None
    recent = _turn(store, "slack", "T:C", "U1", "new")
    purge_expired(store, Settings(retention_days=30))
    assert store.turn(recent) is not None


SLACK_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
TELEGRAM_TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


def test_secrets_are_masked_in_messages_arguments_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s", Redactor(["my-webhook-secret-value"])))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.info("HTTP Request: POST https://api.telegram.org/bot%s/getMe", TELEGRAM_TOKEN)
        logger.debug("headers %s", {"Authorization": f"Bearer {SLACK_TOKEN}"})
        logger.warning("secret header was my-webhook-secret-value")
        logger.info("db postgresql://askdesk:hunter2pass@db:5432/askdesk")
        try:
            raise ValueError(f"bad token {SLACK_TOKEN}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    for secret in (SLACK_TOKEN, TELEGRAM_TOKEN, "my-webhook-secret-value", "hunter2pass", "AbCdEfGh"):
        assert secret not in text
    assert text.count(MASK) >= 5 and "getMe" in text  # the rest of the line is kept


def test_secret_settings_are_found_by_name():
    env = {"TELEGRAM_BOT_TOKEN": "abcdef123456", "SLACK_SIGNING_SECRET": "s3cr3tvalue", "HOME": "/home/x",
           "ASKDESK_DATABASE_URL": "postgresql://u:p@h/d", "SHORT_TOKEN": "1"}
    assert set(secrets_from_env(env)) == {"abcdef123456", "s3cr3tvalue", "postgresql://u:p@h/d"}


def test_debug_logging_keeps_payload_loggers_quiet_unless_opted_in():
    root = logging.getLogger()
    saved = (root.level, [h.formatter for h in root.handlers])
    try:
        for name in ("telegram", "slack_bolt"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        configure_logging(logging.DEBUG, message_text=False, secrets=[])
        assert logging.getLogger("telegram").getEffectiveLevel() == logging.INFO
        assert logging.getLogger("slack_bolt").getEffectiveLevel() == logging.INFO
        for name in ("telegram", "slack_bolt"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        configure_logging(logging.DEBUG, message_text=True, secrets=[])
        assert logging.getLogger("telegram").getEffectiveLevel() == logging.DEBUG
    finally:
        root.setLevel(saved[0])
        for handler, formatter in zip(root.handlers, saved[1]):
            handler.setFormatter(formatter)
        for name in ("telegram", "slack_bolt"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_a_serving_bot_purges_on_start_and_stops_with_the_bot(tmp_path):
    import asyncio

    from core.retention import purge_periodically

    store = Store(tmp_path / "db")
    old = _turn(store, "slack", "T:C", "U1", "old")
    store._connect().execute("UPDATE turns SET created_at = created_at - 90 * 86400 WHERE id = ?", (old,))  # noqa: SLF001

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(purge_periodically(store, Settings(retention_days=30), stop, interval=3600))
        for _ in range(100):
            if store.turn(old) is None:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert store.turn(old) is None
