"""Evaluation metrics and the ``askdesk eval`` command (table and --json)."""

from __future__ import annotations

import json

import pytest

from bots.cli import main
from core.config import get_settings
from core.retrieval.evaluation import (
    EvaluationDataError, balanced_threshold, document_keys, expected_names, gate_rates, ranking_metrics, read_questions, resolve_expected,
)
from core.retrieval.passages import Passage

ARTICLES = {
    "returns.md": "---\ntitle: Returns\nurl: https://h.example/returns\n---\n## Window\nReturn items within 30 days of delivery.",
    "shipping.md": "---\ntitle: Shipping\n---\n## Countries\nWe ship to the United States, Canada and the European Union.",
    "password.md": "---\ntitle: Password reset\n---\n## Password\nUse the Forgot password link on the sign-in page to reset your password.",
}


def test_ranking_metrics():
    m = ranking_metrics([1, 2, None, 5, 1], k=5)
    assert m["recall@1"] == pytest.approx(0.4)
    assert m["recall@5"] == pytest.approx(0.8)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0 + 0.2 + 1) / 5)


def test_gate_rates_and_balanced_threshold():
    inside, outside = [0.9, 0.8, 0.6, 0.3], [0.1, 0.2, 0.4]
    assert gate_rates(inside, outside, 0.35) == (0.75, pytest.approx(2 / 3))
    t, answered, refused = balanced_threshold(inside, outside)
    assert 0.4 < t < 0.6 and answered == 0.75 and refused == 1.0


def test_expected_resolves_by_id_title_url_or_file():
    passages = [Passage("returns.md#0", "returns.md", "x", "Returns", "returns.md", url="https://h.example/returns")]
    keys = document_keys(passages)
    for name in ("returns.md", "returns.md#0", "returns", "https://h.example/returns/", "RETURNS"):
        assert resolve_expected(name, keys) == {"returns.md"}
    assert resolve_expected("nothing", keys) == set()


def test_expected_with_alternatives_names_every_right_document():
    passages = [Passage("returns.md#0", "returns.md", "x", "Returns", "returns.md"),
                Passage("refunds.md#0", "refunds.md", "y", "Refunds | Money back", "refunds.md")]
    keys = document_keys(passages)
    assert resolve_expected("returns.md | refunds.md", keys) == {"returns.md", "refunds.md"}
    assert resolve_expected("Refunds | Money back", keys) == {"refunds.md"}  # a title with a bar stays one name
    assert expected_names("returns.md | gone.md", keys) == ["returns.md", "gone.md"]
    assert resolve_expected("returns.md | gone.md", keys) == {"returns.md"}


def test_question_file_needs_question_and_expected(tmp_path):
    bad = tmp_path / "q.csv"
    bad.write_text("text,label\na,b\n", encoding="utf-8")
    with pytest.raises(EvaluationDataError, match="question,expected"):
        read_questions(bad)
    good = tmp_path / "g.csv"
    good.write_text("question,expected_url\nq1,https://x\n", encoding="utf-8")
    assert read_questions(good)[0].expected == "https://x"


@pytest.fixture()
def labelled(tmp_path, monkeypatch):
    kb = tmp_path / "kb"
    kb.mkdir()
    for name, text in ARTICLES.items():
        (kb / name).write_text(text, encoding="utf-8")
    questions = tmp_path / "questions.csv"
    questions.write_text(
        "question,expected\n"
        "How many days do I have to send something back?,returns.md\n"
        "Which countries do you deliver to?,Shipping\n"
        "I forgot my password,password.md#0\n"
        "Can I return a jacket after two weeks?,https://h.example/returns\n",
        encoding="utf-8",
    )
    oos = tmp_path / "oos.csv"
    oos.write_text("question\nWho painted the Mona Lisa?\nHow tall is Mount Everest?\n", encoding="utf-8")
    for key in [k for k in list(__import__("os").environ) if k.startswith("ASKDESK_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("ASKDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no .env of the developer
    get_settings.cache_clear()
    yield kb, questions, oos
    get_settings.cache_clear()


def test_eval_command_json(labelled, capsys):
    kb, questions, oos = labelled
    assert main(["eval", str(questions), "--kb", str(kb), "--out-of-scope", str(oos), "--json", "--details"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["questions"] == 4 and data["recall@1"] == 1.0 and data["recall@5"] == 1.0 and data["mrr"] == 1.0
    assert data["answer_rate"] == 1.0 and data["refusal_rate"] == 1.0
    assert data["balanced_threshold"]["answer_rate"] == 1.0
    assert [q["rank"] for q in data["per_question"]] == [1, 1, 1, 1]
    assert (labelled[0].parent / "cache" / "eval-index").is_dir()  # built in the cache, not the configured index


def test_eval_command_table_and_k(labelled, capsys):
    kb, questions, _ = labelled
    assert main(["eval", str(questions), "--kb", str(kb), "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "recall@1" in out and "recall@3" in out and "MRR" in out and "1.000" in out


def test_eval_command_reports_bad_files(labelled, capsys, tmp_path):
    kb, _, _ = labelled
    bad = tmp_path / "bad.csv"
    bad.write_text("text\nx\n", encoding="utf-8")
    assert main(["eval", str(bad), "--kb", str(kb)]) == 2
    assert "question,expected" in capsys.readouterr().err
