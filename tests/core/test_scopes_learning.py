"""Learned Q&A is scoped: what is taught or answered by an agent in one scope is approved into that
scope's knowledge base and index only, never another's (issue: an internal HR/IT knowledge base
must never be answered to Telegram customers).

A hash-based fake embedder builds and searches the indexes: no model is loaded.
"""

from __future__ import annotations

import argparse

import pytest

from core.learning import LEARNED_FAQ, approve, learned_faq_path, target_scope, teach
from core.messages import IncomingMessage
from core.scopes import load_scopes
from core.store import MIGRATIONS, Store
from core.support import AgentAllowlist, StoreThread, SupportWorkflow, scope_names
from tests.bots.terminal.test_kb_list import FakeEmbedder
from tests.conftest import make_settings, write_kb
from tests.core.test_scopes_leakage import HR_KB, SHOP_KB, _settings, slack, telegram
from tests.fakes.support_channel import CollectingChannel

HR_QUESTION = "Can I carry unused vacation days over into next year?"
HR_ANSWER = "Yes, up to five unused vacation days carry over until 31 March (policy HRX-199)."
SHOP_QUESTION = "Can I return a gift wrapped parcel without its receipt?"
SHOP_ANSWER = "Yes, gift wrapped parcels are returned with the gift receipt in the box (rule SHP-299)."


class _Embedder(FakeEmbedder):
    def knows_word(self, word: str) -> bool:  # the speller's vocabulary check
        return True


@pytest.fixture
def fake_embedder(monkeypatch):
    import core.retrieval.build as build
    import core.retrieval.retriever as retriever

    monkeypatch.setattr(build, "embedder_for", lambda settings, device: _Embedder())
    monkeypatch.setattr(retriever, "embedder_for", lambda settings, device: _Embedder())


@pytest.fixture
def scoped(tmp_path, fake_embedder):
    """The leakage test's scopes (internal Slack staff → HR KB; Telegram customers and the shared
    Slack support channel → the shop KB, in two scopes with their own indexes), every index built."""
    from core.retrieval.build import run_build

    write_kb(tmp_path / "hr_kb", HR_KB)
    write_kb(tmp_path / "shop_kb", SHOP_KB)
    settings = _settings(tmp_path)
    assert run_build(argparse.Namespace(kb_dir=None, index_dir=None, scope=None, quiet=True), settings) == 0
    return settings


def _workflow(store, settings, platform):
    from core.assistant import Assistant

    assistant = Assistant(settings, store=store)  # the scope the assistant resolves; no index is read
    return SupportWorkflow(platform, store, CollectingChannel(), enabled=True, agents=AgentAllowlist({"AGENT"}),
                           admins=frozenset({"UADMIN"}), unavailable=lambda lang, msg: "unavailable",
                           offload=StoreThread(), scope_of=scope_names(assistant.scope_for))


def _learned_hits(settings, scope_name, question):
    """The learned passages ``scope_name``'s own retriever finds for ``question``."""
    from core.retrieval.retriever import Retriever

    scope = load_scopes(settings).config.get(scope_name)
    retriever = Retriever(settings, scope.index_dir)
    passages = retriever.index.passages
    hits = retriever.search(question, 5)
    return ({p.passage_id for p in passages if p.passage_id.startswith("learned-")},
            [h.passage.passage_id for h in hits if h.passage.passage_id.startswith("learned-")])


async def test_taught_and_escalated_answers_stay_in_their_scope(scoped, any_store):
    settings, store = scoped, any_store
    root = settings.scopes_file.parent
    # An admin's /teach in an internal Slack channel: the internal scope.
    slack_flow = _workflow(store, settings, "slack")
    taught = (await slack_flow.teach("UADMIN", f"{HR_QUESTION} | {HR_ANSWER}", "Ada", slack("teach"))).entry
    assert taught.scope == "internal"
    # A Telegram customer's escalation, answered by an agent: the customers scope.
    telegram_flow = _workflow(store, settings, "telegram")
    await telegram_flow.escalate(telegram("human"), "en", question=SHOP_QUESTION)
    (escalation,) = store.escalations_since()
    assert escalation.scope == "customers"
    posted = await telegram_flow.escalation_at(f"SUPPORT:{escalation.id}")
    await telegram_flow.relay(posted, "AGENT", "Grace", SHOP_ANSWER)
    learned = {e.source: e for e in store.learned_qas("pending")}
    assert learned["escalation"].scope == "customers" and learned["slack"].scope == "internal"

    approve(store, settings, taught.id)
    approve(store, settings, learned["escalation"].id)

    hr_faq = (root / "hr_kb" / LEARNED_FAQ).read_text(encoding="utf-8")
    shop_faq = (root / "shop_kb" / LEARNED_FAQ).read_text(encoding="utf-8")
    assert "HRX-199" in hr_faq and "SHP-299" not in hr_faq
    assert "SHP-299" in shop_faq and "HRX-199" not in shop_faq

    hr_in_index, hr_hits = _learned_hits(settings, "internal", HR_QUESTION)
    shop_in_index, shop_hits = _learned_hits(settings, "customers", SHOP_QUESTION)
    assert hr_in_index == {f"learned-{taught.id}"} and hr_hits == [f"learned-{taught.id}"]
    assert shop_in_index == {f"learned-{learned['escalation'].id}"} and shop_hits == [f"learned-{learned['escalation'].id}"]
    # Asked in the other scope, neither is found: it is not in that index at all.
    assert f"learned-{taught.id}" not in _learned_hits(settings, "customers", HR_QUESTION)[1]
    assert f"learned-{learned['escalation'].id}" not in _learned_hits(settings, "internal", SHOP_QUESTION)[1]
    # The support channel's scope reads the same shop folder: rebuilt with it, it has the shop entry only.
    assert _learned_hits(settings, "support", HR_QUESTION)[0] == shop_in_index


def test_an_unknown_or_missing_scope_is_never_guessed(scoped, any_store):
    settings, store = scoped, any_store
    scopes = load_scopes(settings)
    orphan = teach(store, "q?", "a.", author="cli")  # no scope, and the file names no default
    gone = teach(store, "q2?", "a2.", author="cli", scope="hr-old")
    for entry in (orphan, gone):
        with pytest.raises(ValueError, match="--scope"):
            approve(store, settings, entry.id)
        assert store.learned_qa(entry.id).status == "pending"
    assert not any((settings.scopes_file.parent / kb / LEARNED_FAQ).exists() for kb in ("hr_kb", "shop_kb"))
    approve(store, settings, orphan.id, scope="internal")  # the reviewer's explicit choice
    assert "a." in (settings.scopes_file.parent / "hr_kb" / LEARNED_FAQ).read_text(encoding="utf-8")
    assert target_scope(scopes, "customers").name == "customers"


def test_without_a_scopes_file_everything_goes_to_the_one_knowledge_base(tmp_path, fake_embedder):
    from core.retrieval.build import build_index

    kb = write_kb(tmp_path / "kb", SHOP_KB)
    settings = make_settings(kb_dir=kb, index_dir=tmp_path / "index", db_path=tmp_path / "db.sqlite")
    build_index(settings)
    store = Store(settings.db_path)
    old = teach(store, SHOP_QUESTION, SHOP_ANSWER, author="admin")  # as before: no scope given
    named = teach(store, "Do you ship to Iceland?", "Yes.", author="admin", scope="default")
    approve(store, settings, old.id)
    approve(store, settings, named.id)
    text = learned_faq_path(settings).read_text(encoding="utf-8")
    assert "SHP-299" in text and "Iceland" in text
    assert _learned_hits(settings, "default", SHOP_QUESTION)[0] == {f"learned-{old.id}", f"learned-{named.id}"}


def test_the_v4_migration_keeps_old_learned_rows_as_the_default_scope(tmp_path, fake_embedder):
    import sqlite3

    from core.retrieval.build import build_index

    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version=3")
    conn.execute("INSERT INTO learned_qa (question, answer, source, author, created_at) "
                 "VALUES ('Do you ship to Iceland?', 'Yes, in a week.', 'escalation', 'Grace', 1)")
    conn.execute("INSERT INTO escalations (platform, conversation_id, question, created_at) VALUES ('slack', 'T:C', 'q', 1)")
    conn.commit()
    conn.close()

    store = Store(path)
    assert store.schema_version == len(MIGRATIONS) == 4
    (entry,) = store.learned_qas("pending")
    assert (entry.question, entry.scope) == ("Do you ship to Iceland?", None)
    assert store.escalations_since()[0].scope is None
    kb = write_kb(tmp_path / "kb", SHOP_KB)
    settings = make_settings(kb_dir=kb, index_dir=tmp_path / "index", db_path=path)
    build_index(settings)
    approve(store, settings, entry.id)  # no scopes file: the one implicit (default) scope
    assert "Iceland" in learned_faq_path(settings).read_text(encoding="utf-8")


def test_kb_review_shows_each_scope_and_rebuilds_only_the_approved_ones(scoped, monkeypatch, capsys):
    import os

    from bots.cli import main
    from core.config import get_settings

    settings = scoped
    root = settings.scopes_file.parent
    for name in [k for k in os.environ if k.startswith("ASKDESK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ASKDESK_SCOPES_FILE", str(settings.scopes_file))
    monkeypatch.setenv("ASKDESK_DB_PATH", str(root / "cli.db"))
    monkeypatch.setenv("ASKDESK_CACHE_DIR", str(settings.cache_dir))
    get_settings.cache_clear()
    try:
        store = Store(root / "cli.db")
        hr = teach(store, HR_QUESTION, HR_ANSWER, author="Ada", source="slack", scope="internal")
        shop = teach(store, SHOP_QUESTION, SHOP_ANSWER, author="Grace", source="escalation", scope="customers")
        assert main(["kb", "add-qa", "Is there a staff canteen?", "Yes, on floor 2.", "--scope", "internal"]) == 0
        capsys.readouterr()
        assert main(["kb", "review"]) == 0
        listing = capsys.readouterr().out
        assert f"#{hr.id} (slack, by Ada, scope internal)" in listing
        assert f"#{shop.id} (escalation, by Grace, scope customers)" in listing
        assert "scope internal)\nQ: Is there a staff canteen?" in listing

        customers_index = (root / "indexes" / "customers").resolve()
        assert main(["kb", "review", "--approve", str(hr.id)]) == 0
        out = capsys.readouterr().out
        assert f"#{hr.id} approved into scope internal" in out and "scope internal: " in out
        assert "scope customers" not in out
        assert (root / "indexes" / "customers").resolve() == customers_index, "the other index is untouched"
        assert not (root / "shop_kb" / LEARNED_FAQ).exists()
        assert HR_ANSWER in (root / "hr_kb" / LEARNED_FAQ).read_text(encoding="utf-8")
    finally:
        get_settings.cache_clear()


async def test_the_answers_scope_wins_over_a_bare_message(scoped, any_store):
    """A Slack button knows the scope of the answer it sits under; the click itself has no audience."""
    flow = _workflow(any_store, scoped, "slack")
    bare = IncomingMessage(text="", platform="slack", conversation_id="TINTERNAL:CGENERAL", thread_id="1.1", user_id="U1")
    assert flow.scope_of(bare) is None, "without its audience the click matches no scope"
    await flow.escalate(bare, "en", question=HR_QUESTION, scope="internal")
    assert [e.scope for e in any_store.escalations_since()] == ["internal"]
