"""Memory, profiles, learned Q&A, the store's durability and stats (issue: conversations)."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from bots.cli import main
from core.assistant import Assistant
from core.config import get_settings
from core.support import HandoffDesk
from core.learning import approve, learned_faq_path, reject, teach
from core.messages import IncomingMessage
from core.retrieval.build import build_index
from core.stats import compute_stats
from core.store import Store
from tests.conftest import SAMPLE_KB, make_settings

GIFT_CARD_REFUNDS = "https://help.northwindgoods.example/gift-cards/gift-card-refunds"


def ask(assistant, text, conversation="c1", user="u1", **kw):
    return assistant.answer(IncomingMessage(text=text, conversation_id=conversation, user_id=user, **kw))


def test_follow_up_uses_the_previous_question(quick_assistant, retriever):
    from core.memory import search_in_context

    ask(quick_assistant, "How long does a refund take?", conversation="follow")
    message = IncomingMessage(text="and for gift cards?", conversation_id="follow", user_id="u1")
    history = quick_assistant.history(message)
    assert [t.role for t in history] == ["user", "assistant"]
    hits = search_in_context(retriever.retrieve, message.text, history, 3).hits
    assert GIFT_CARD_REFUNDS in {h.passage.url for h in hits}
    alone = retriever.search("and for gift cards?", 3)
    assert GIFT_CARD_REFUNDS not in {h.passage.url for h in alone}  # only the context makes it findable
    answer = quick_assistant.answer(message)
    assert GIFT_CARD_REFUNDS in {c.url for c in answer.citations + answer.related}


def test_cli_conversation_continues_a_stored_conversation(monkeypatch, settings, capsys):
    monkeypatch.setenv("ASKDESK_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("ASKDESK_DB_PATH", str(settings.db_path))
    monkeypatch.setenv("ASKDESK_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("ASKDESK_MAX_NEW_TOKENS", "8")
    get_settings.cache_clear()
    try:
        assert main(["ask", "--conversation", "cli-1", "--json", "How long does a refund take?"]) == 0
        capsys.readouterr()
        assert main(["ask", "--conversation", "cli-1", "--json", "and for gift cards?"]) == 0
        data = json.loads(capsys.readouterr().out)
        urls = {c["url"] for c in data["citations"] + data["related"]}
        assert GIFT_CARD_REFUNDS in urls
        # Without the conversation the same words find nothing specific to refunds.
        assert main(["ask", "--json", "and for gift cards?"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert GIFT_CARD_REFUNDS not in {c["url"] for c in data["citations"]}
    finally:
        get_settings.cache_clear()


def test_chinese_question_gets_a_chinese_frame_and_the_profile_keeps_it(quick_assistant):
    answer = ask(quick_assistant, "退货期限是多久？", conversation="zh", user="zh-user", user_name="小王")
    assert answer.language == "zh"
    profile = quick_assistant.store.profile("terminal", "zh-user")
    assert profile.language == "zh" and profile.display_name == "小王" and profile.question_count == 1
    # A message that says little about its language falls back to the remembered preference.
    answer = ask(quick_assistant, "ok?", conversation="zh", user="zh-user")
    assert answer.language == "zh"
    assert quick_assistant.store.profile("terminal", "zh-user").question_count == 2


def test_asking_for_a_person_is_a_handoff_not_an_answer(quick_assistant):
    for text in ("human", "I want to talk to a human", "转人工"):
        answer = ask(quick_assistant, text, conversation=f"h-{text}")
        assert answer.handoff and answer.offers_person and not answer.citations


def test_taught_qa_is_answered_after_approval_and_not_after_rejection(tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb)
    settings = make_settings(kb_dir=kb, index_dir=tmp_path / "index", db_path=tmp_path / "db.sqlite", max_new_tokens=8)
    build_index(settings)
    store = Store(settings.db_path)
    assistant = Assistant(settings, store=store)
    question = "Is there a Northwind Goods showroom in Berlin I can visit?"
    before = assistant.answer(IncomingMessage(text=question))
    assert not any(c.passage_id.startswith("learned-") for c in before.citations)

    kept = teach(store, question, "No. Northwind Goods sells online only and has no showrooms or shops.", author="admin")
    dropped = teach(store, "Do you sell cars?", "Yes, we sell sports cars.", author="admin")
    assert [q.status for q in store.learned_qas()] == ["pending", "pending"]
    approve(store, settings, kept.id)
    reject(store, dropped.id)
    with pytest.raises(ValueError):
        reject(store, dropped.id)  # already reviewed

    text = learned_faq_path(settings).read_text(encoding="utf-8")
    assert "showrooms" in text and "sports cars" not in text
    after = assistant.answer(IncomingMessage(text=question))
    assert not after.refused
    assert after.citations[0].passage_id == f"learned-{kept.id}"


def test_store_survives_a_restart(tmp_path):
    path = tmp_path / "state.db"
    store = Store(path)
    conv = store.conversation("slack", "C1", "1.0")
    turn = store.record_turn(conv, "U1", "q?", "a.", [{"passage_id": "p"}], 0.7, False, "generated", "en", 1.2)
    store.record_feedback(turn, "U1", 1)
    escalation = store.open_escalation("slack", "C1", "1.0", "U1", "Ann", "q?", "transcript")
    store.set_escalation_ref(escalation.id, "C9:2.0")
    store.claim_event("slack", "Ev1")
    store.add_learned_qa("q", "a", "teach", "admin")
    store.close()

    again = Store(path)
    assert again.schema_version == 4
    assert again.conversation("slack", "C1", "1.0") == conv
    assert again.recent_turns(conv, 5)[0].citations == [{"passage_id": "p"}]
    assert again.feedback_since() == [(turn, "U1", 1)]
    assert again.escalation_by_ref("C9:2.0").user_name == "Ann"
    assert again.claim_event("slack", "Ev1") is False
    assert again.learned_qas("pending")[0].question == "q"


def test_twenty_simultaneous_questions_lose_nothing(settings, retriever, tmp_path):
    store = Store(tmp_path / "busy.db")
    assistant = Assistant(settings.model_copy(update={"max_new_tokens": 4}), retriever=retriever, store=store)
    questions = ["What is the capital of Mars?", "Write me a poem about cats", "How tall is Mount Everest?",
                 "Who painted the Mona Lisa?", "Do you ship to Canada?"] * 4
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(questions))

    def worker(i: int, text: str) -> None:
        try:
            barrier.wait()
            assistant.answer(IncomingMessage(text=text, conversation_id=f"conv-{i}", user_id=f"user-{i % 5}"))
            store.record_feedback(i + 1, f"user-{i % 5}", 1)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, q)) for i, q in enumerate(questions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors
    turns = store.turns_since()
    assert len(turns) == 20 and sorted(t.id for t in turns) == list(range(1, 21))
    assert sum(store.profile("terminal", f"user-{u}").question_count for u in range(5)) == 20
    assert len(store.feedback_since()) == 20


def test_stats_match_a_scripted_conversation_set(settings, retriever, tmp_path, monkeypatch, capsys):
    store = Store(tmp_path / "stats.db")
    assistant = Assistant(settings.model_copy(update={"max_new_tokens": 4}), retriever=retriever, store=store)
    script = [
        ("What is the capital of Mars?", "u1"),
        ("What is the capital city of Mars?", "u2"),
        ("Write me a poem about cats", "u3"),
        ("Do you ship to Canada?", "u1"),
        ("How do I reset my password?", "u2"),
    ]
    answers = [assistant.answer(IncomingMessage(text=q, conversation_id=f"s{i}", user_id=u)) for i, (q, u) in enumerate(script)]
    store.record_feedback(answers[3].turn_id, "u1", 1)
    store.record_feedback(answers[3].turn_id, "u1", 1)  # repeated click
    store.record_feedback(answers[4].turn_id, "u2", -1)
    HandoffDesk(store).open(IncomingMessage(text="human", conversation_id="s0", user_id="u1"))

    embedder = retriever.embedder
    stats = compute_stats(store, embed=embedder.embed_queries)
    assert (stats.questions, stats.answered, stats.refused, stats.escalated) == (5, 2, 3, 1)
    assert (stats.thumbs_up, stats.thumbs_down, stats.satisfaction) == (1, 1, 0.5)
    assert stats.median_latency_s is not None and stats.median_latency_s > 0
    assert stats.top_unanswered[0] == ("What is the capital of Mars?", 2)  # the two Mars questions are one gap
    assert stats.top_unanswered[1] == ("Write me a poem about cats", 1)

    monkeypatch.setenv("ASKDESK_DB_PATH", str(tmp_path / "stats.db"))
    get_settings.cache_clear()
    try:
        assert main(["stats", "--json", "--since", "2000-01-01"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert (data["questions"], data["refused"], data["escalated"], data["thumbs_up"]) == (5, 3, 1, 1)
        assert main(["stats", "--since", "2999-01-01"]) == 0
        assert "questions      0" in capsys.readouterr().out
        assert main(["stats", "--since", "yesterday"]) == 2
    finally:
        get_settings.cache_clear()


def test_cli_teach_and_review(monkeypatch, tmp_path, capsys):
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb)
    for key, value in {"ASKDESK_KB_DIR": kb, "ASKDESK_INDEX_DIR": tmp_path / "index", "ASKDESK_DB_PATH": tmp_path / "db"}.items():
        monkeypatch.setenv(key, str(value))
    get_settings.cache_clear()
    try:
        assert main(["kb", "add-qa", "Do you price match?", "No, we don't match other stores' prices."]) == 0
        assert "pending #1" in capsys.readouterr().out
        assert main(["kb", "review"]) == 0
        assert "Do you price match?" in capsys.readouterr().out
        assert main(["kb", "review", "--approve", "1"]) == 0
        out = capsys.readouterr().out
        assert "#1 approved" in out and "Index" in out
        assert "price match" in (kb / "learned_faq.csv").read_text(encoding="utf-8")
        assert main(["kb", "review", "--reject", "1"]) == 2  # no longer pending
    finally:
        get_settings.cache_clear()


def test_escalation_carries_the_real_question_not_the_request_for_a_person(quick_assistant):
    ask(quick_assistant, "What is the capital of Mars?", conversation="esc")
    request = IncomingMessage(text="I want to talk to a human", conversation_id="esc", user_id="u1", user_name="Ann")
    answer = quick_assistant.answer(request)
    desk = HandoffDesk(quick_assistant.store)
    escalation = desk.open(request, turn_id=answer.turn_id)
    assert escalation.question == "What is the capital of Mars?"
    assert "Customer: What is the capital of Mars?" in escalation.transcript
    assert desk.open(request).id == escalation.id  # no duplicate while open
    desk.posted(escalation, "S:1")
    assert quick_assistant.store.escalation_by_ref("S:1").id == escalation.id
    reply = desk.record_reply(escalation, "Grace", "Mars has no capital, sorry!")
    assert reply.escalation.id == escalation.id and reply.text == "Mars has no capital, sorry!"
    assert quick_assistant.store.learned_qas("pending")[-1].answer == "Mars has no capital, sorry!"
    assert desk.close(escalation.id, "Grace").status == "closed"
    assert desk.close(escalation.id, "Grace") is None


def test_an_escalated_customers_messages_go_to_the_person_until_it_is_closed(tmp_path):
    desk = HandoffDesk(Store(tmp_path / "askdesk.db"))

    def message(text, user="u1", conversation="fwd", thread=None):
        return IncomingMessage(text=text, conversation_id=conversation, thread_id=thread, user_id=user, user_name="Ann")

    escalation = desk.open(message("I want to talk to a human"), question="Where is my parcel?")
    assert desk.forwarding(message("It was due Monday")) is None, "not posted to the support team yet: the bot answers"
    desk.posted(escalation, "S:1")
    assert desk.forwarding(message("It was due Monday")).id == escalation.id
    assert desk.forwarding(message("   ")) is None, "nothing to forward"
    assert desk.forwarding(message("Hi bot", user="u2")) is None, "someone else in the same group chat"
    assert desk.forwarding(message("It was due Monday", thread="t9")) is None, "another thread is another conversation"
    assert desk.forwarding(message("It was due Monday", conversation="other")) is None
    desk.close(escalation.id, "Grace")
    assert desk.forwarding(message("Thanks!")) is None, "closed: the bot answers again"
