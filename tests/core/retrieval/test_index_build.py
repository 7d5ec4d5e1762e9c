"""Index build, reload, incremental rebuild, atomic swap, and unusable-index errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from core.errors import IndexUnusableError
from core.retrieval import build as build_module
from core.retrieval.build import build_index
from core.retrieval.embedder import Embedder
from core.assistant import Assistant
from core.messages import IncomingMessage
from core.retrieval.hybrid import SearchIndex
from core.retrieval.index import VectorIndex
from core.retrieval.retriever import Retriever
from tests.conftest import make_settings, write_kb

ARTICLES = {
    "returns.md": "---\ntitle: Returns\nurl: https://h.example/returns\n---\n## Window\nReturn items within 30 days of delivery.",
    "shipping.md": "## Shipping\nWe ship to the United States, Canada and the European Union.",
    "password.md": "## Password\nUse the Forgot password link on the sign-in page to reset your password.",
}


@pytest.fixture()
def kb(tmp_path):
    return write_kb(tmp_path / "kb", ARTICLES)


@pytest.fixture()
def embedded(monkeypatch):
    """Records every text the real embedder is asked to embed, one list per call."""
    calls: list[list[str]] = []
    original = Embedder.embed_passages

    def recording(self, texts, *args, **kwargs):
        calls.append(list(texts))
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(Embedder, "embed_passages", recording)
    return calls


def test_build_and_reload(kb, tmp_path):
    index_dir = tmp_path / "index"
    report = build_index(make_settings(), kb, index_dir)
    assert (report.files, report.passages, report.new, report.removed) == (3, 3, 3, 0)
    assert "3 files, 3 passages" in report.summary()
    index = VectorIndex.load(index_dir, expected_model=make_settings().embedding_model)
    assert len(index) == 3 and index.dimension == 384
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-4)
    hits = Retriever(make_settings(index_dir=index_dir)).search("which countries do you deliver to", 1)
    assert hits[0].passage.source == "shipping.md"


def test_incremental_rebuild_embeds_only_changed_and_drops_deleted(kb, tmp_path, embedded):
    index_dir = tmp_path / "index"
    first = build_index(make_settings(), kb, index_dir)
    passages, statements = embedded
    assert len(passages) == 3 and first.statements == first.statements_embedded == len(statements) == 3
    embedded.clear()

    unchanged = build_index(make_settings(), kb, index_dir)
    assert unchanged.up_to_date and embedded == []

    (kb / "returns.md").write_text(ARTICLES["returns.md"].replace("30 days", "45 days"), encoding="utf-8")
    (kb / "password.md").unlink()
    report = build_index(make_settings(), kb, index_dir)
    assert (report.new, report.unchanged, report.removed) == (1, 1, 2)
    passages, statements = embedded
    assert len(passages) == 1 and "45 days" in passages[0]
    assert statements == ["Returns > Window: Return items within 45 days of delivery."], "kept statements are not re-embedded"
    assert (report.statements, report.statements_embedded) == (2, 1)
    index = VectorIndex.load(index_dir)
    assert sorted(p.source for p in index.passages) == ["returns.md", "shipping.md"]
    assert "45 days" in next(p.text for p in index.passages if p.source == "returns.md")


def test_failure_mid_build_leaves_previous_index_serving(kb, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    (kb / "new.md").write_text("## New\nA brand new article about gift cards.", encoding="utf-8")

    def crash(self, folder):
        folder.mkdir(parents=True, exist_ok=True)  # the build already put the BM25 files there
        (folder / "passages.jsonl").write_text("partial", encoding="utf-8")
        raise KeyboardInterrupt  # Ctrl-C mid-write

    monkeypatch.setattr(VectorIndex, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(make_settings(), kb, index_dir)
    monkeypatch.undo()
    index = VectorIndex.load(index_dir)
    assert sorted(p.source for p in index.passages) == sorted(ARTICLES)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".index-")]
    assert len(leftovers) == 1  # only the folder the link points to


def test_index_built_with_another_model_is_refused(kb, tmp_path):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    with pytest.raises(IndexUnusableError, match="another-model.*askdesk index build"):
        VectorIndex.load(index_dir, expected_model="another-model")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "manifest.json").write_text("{not json", encoding="utf-8"),
        lambda d: (d / "vectors.npy").write_bytes(b"garbage"),
        lambda d: (d / "index.faiss").write_bytes(b"\x00" * 10),
        lambda d: (d / "passages.jsonl").write_text('{"passage_id": "x"}\n', encoding="utf-8"),
        lambda d: (d / "passages.jsonl").write_text("", encoding="utf-8"),
        lambda d: os.remove(d / "manifest.json"),
        lambda d: (d / "statements.npy").write_bytes(b"garbage"),
        lambda d: (d / "statements.json").write_text('["one text"]', encoding="utf-8"),
        lambda d: os.remove(d / "statements.json"),
    ],
    ids=["manifest", "vectors", "faiss", "passage-record", "passages-missing", "no-manifest", "statement-vectors",
         "statement-count", "statement-texts-missing"],
)
def test_damaged_index_says_to_rebuild(kb, tmp_path, damage):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    damage(index_dir.resolve())
    with pytest.raises(IndexUnusableError, match="askdesk index build"):
        SearchIndex.load(index_dir)


def test_every_statement_is_stored_with_the_vector_the_embedder_gives_it(kb, tmp_path):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    stored = SearchIndex.load(index_dir).statements
    assert stored is not None and len(stored) == 3
    text = "Shipping: We ship to the United States, Canada and the European Union."
    fresh = Retriever(make_settings(index_dir=index_dir)).embedder.embed_passages([text])[0]
    assert np.allclose(stored.get(text), fresh, atol=1e-5)
    assert stored.get("a sentence no article has") is None


def test_an_index_from_before_stored_statements_still_answers_and_the_next_build_adds_them(kb, tmp_path, embedded):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    for name in ("statements.json", "statements.npy"):
        os.remove(index_dir.resolve() / name)
    assert SearchIndex.load(index_dir).statements is None
    settings = make_settings(index_dir=index_dir, db_path=tmp_path / "a.db", answer_mode="compose")
    embedded.clear()
    answer = Assistant(settings).answer(IncomingMessage(platform="test", conversation_id="c", text="How long do I have to return items?"))
    assert "30 days" in answer.text
    assert any("Return items within 30 days" in t for call in embedded for t in call), "statements embedded on demand"
    embedded.clear()
    report = build_index(make_settings(), kb, index_dir)
    assert not report.up_to_date and report.new == 0 and report.statements_embedded == 3
    assert embedded == [[t for t in SearchIndex.load(index_dir).statements.texts]]


def test_answering_embeds_no_statement_of_the_index(kb, tmp_path, embedded):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    embedded.clear()
    settings = make_settings(index_dir=index_dir, db_path=tmp_path / "a.db", answer_mode="compose")
    answer = Assistant(settings).answer(IncomingMessage(platform="test", conversation_id="c", text="How long do I have to return items?"))
    assert "30 days" in answer.text
    assert embedded == [["How long do I have to return items?"]], "only the question is embedded"


def test_rebuild_over_a_damaged_index_starts_fresh(kb, tmp_path):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    (index_dir.resolve() / "vectors.npy").write_bytes(b"garbage")
    report = build_index(make_settings(), kb, index_dir)
    assert report.new == 3 and len(VectorIndex.load(index_dir)) == 3


def test_manifest_records_model_and_count(kb, tmp_path):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["embedding_model"] == make_settings().embedding_model
    assert manifest["passages"] == 3


def test_rebuild_script_entry_point(kb, tmp_path, capsys):
    assert build_module.main([str(kb), "--index", str(tmp_path / "index"), "--quiet"]) == 0
    assert "3 passages" in capsys.readouterr().out
    assert build_module.main([str(tmp_path / "missing"), "--index", str(tmp_path / "index")]) == 2
    assert "does not exist" in capsys.readouterr().err
