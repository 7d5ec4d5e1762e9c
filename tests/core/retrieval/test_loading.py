"""Chunking of Markdown/text/CSV and reporting of bad files."""

from __future__ import annotations

import pytest

from core.errors import KnowledgeBaseError
from core.retrieval.chunking import chunk_text, parse_front_matter, split_sentences
from core.retrieval.loader import load_knowledge_base
from tests.conftest import SAMPLE_KB


def test_front_matter_is_parsed_and_removed():
    meta, body = parse_front_matter("---\ntitle: Returns\nurl: https://x.example/r\n---\n# Returns\nBody")
    assert meta == {"title": "Returns", "url": "https://x.example/r"}
    assert body.strip().startswith("# Returns")


def test_chunks_follow_headings_and_keep_the_heading_path():
    body = "# Guide\nIntro text.\n\n## Shipping\nShip text.\n\n### Express\nFast text.\n\n## Returns\nReturn text."
    chunks = chunk_text(body, max_chars=500, overlap=0)
    assert [(c.headings, c.text) for c in chunks] == [
        (("Guide",), "Intro text."),
        (("Guide", "Shipping"), "Ship text."),
        (("Guide", "Shipping", "Express"), "Fast text."),
        (("Guide", "Returns"), "Return text."),
    ]


def test_a_lead_in_stays_with_the_list_it_introduces():
    """"Automatically empty your trash and clear temporary files:" at the end of one passage and its
    steps in the next would leave the composer a lead-in with nothing to lead to."""
    intro = " ".join(f"Sentence {i} explains what temporary files are." for i in range(8))
    steps = "\n".join(f"{n}. Step {n} of purging the trash." for n in range(1, 6))
    body = f"## Purge\n{intro}\n\nAutomatically empty your trash:\n\n{steps}"
    chunks = chunk_text(body, max_chars=450, overlap=120)
    assert len(chunks) == 2
    assert not chunks[0].text.rstrip().endswith(":")
    assert chunks[1].text.startswith("Automatically empty your trash:\n\n1. Step 1")


def test_long_sections_are_bounded_with_overlap():
    sentences = [f"Sentence number {i} talks about refunds and returns." for i in range(60)]
    body = "## Big\n" + "\n\n".join(" ".join(sentences[i : i + 3]) for i in range(0, 60, 3))
    chunks = chunk_text(body, max_chars=400, overlap=120)
    assert len(chunks) > 5
    assert all(len(c.text) <= 400 for c in chunks)
    # neighbouring chunks share text (the overlap)
    for first, second in zip(chunks, chunks[1:]):
        tail = split_sentences(first.text)[-1]
        assert tail in second.text


def test_huge_paragraph_without_breaks_is_split():
    chunks = chunk_text("x" * 5000, max_chars=900, overlap=100)
    assert len(chunks) >= 6 and all(len(c.text) <= 900 for c in chunks)


def test_code_blocks_do_not_start_headings():
    chunks = chunk_text("## Real\ntext\n\n```\n# not a heading\n```\n", max_chars=500, overlap=0)
    assert all(c.headings == ("Real",) for c in chunks)


def test_chinese_sentences_split():
    assert split_sentences("退货期限为30天。电子产品为15天！可以吗？") == ["退货期限为30天。", "电子产品为15天！", "可以吗？"]


def test_markdown_passages_carry_source_title_url(tmp_path):
    (tmp_path / "returns").mkdir()
    (tmp_path / "returns" / "window.md").write_text(
        "---\ntitle: Return window\nurl: https://help.example/returns\n---\n\n## Rules\nThirty days.\n\n## Electronics\nFifteen days.\n",
        encoding="utf-8",
    )
    (tmp_path / "notes.txt").write_text("Plain text knowledge.\n\nSecond paragraph.", encoding="utf-8")
    result = load_knowledge_base(tmp_path)
    by_id = {p.passage_id: p for p in result.passages}
    assert by_id["returns/window.md#0"].headings == ("Rules",)
    assert by_id["returns/window.md#1"].url == "https://help.example/returns"
    assert by_id["returns/window.md#1"].title == "Return window"
    assert by_id["notes.txt#0"].title == "Notes" and by_id["notes.txt#0"].url is None
    assert result.files == 2 and not result.problems


def test_csv_faq_rows_become_passages(tmp_path):
    (tmp_path / "faq.csv").write_text(
        'id,question,answer,url\nq1,How long is shipping?,"3-5 days, usually.",https://h.example/s\n'
        ',Do you ship abroad?,Only to Canada.,\n',
        encoding="utf-8",
    )
    passages = load_knowledge_base(tmp_path).passages
    assert [(p.passage_id, p.title, p.text, p.url) for p in passages] == [
        ("q1", "How long is shipping?", "3-5 days, usually.", "https://h.example/s"),
        ("faq.csv#2", "Do you ship abroad?", "Only to Canada.", None),
    ]


def test_csv_rows_sharing_an_id_are_one_entry_with_unique_passage_ids(tmp_path):
    (tmp_path / "faq.csv").write_text(
        "id,question,answer\nrefund,Where is my refund?,Five days.\nrefund,Refund not arrived,Five days.\n", encoding="utf-8"
    )
    passages = load_knowledge_base(tmp_path).passages
    assert [p.passage_id for p in passages] == ["refund~0", "refund~1"]
    assert {p.doc_id for p in passages} == {"refund"}


def test_bad_files_are_reported_by_name_and_skipped(tmp_path):
    (tmp_path / "good.md").write_text("# Good\nUseful text.", encoding="utf-8")
    (tmp_path / "latin1.md").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "bad.csv").write_text("title,body\nA,B\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    result = load_knowledge_base(tmp_path)
    problems = {p.path: p.reason for p in result.problems}
    assert "not UTF-8" in problems["latin1.md"]
    assert "question" in problems["bad.csv"] and "missing" in problems["bad.csv"]
    assert "no text" in problems["empty.txt"]
    assert "unsupported" in problems["image.png"]
    assert [p.source for p in result.passages] == ["good.md"]


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="does not exist"):
        load_knowledge_base(tmp_path / "nope")
    with pytest.raises(KnowledgeBaseError, match="nothing to index"):
        load_knowledge_base(tmp_path)


def test_sample_knowledge_base_is_complete():
    result = load_knowledge_base(SAMPLE_KB)
    articles = {p.source for p in result.passages if p.source.endswith(".md")}
    chinese = {s for s in articles if s.startswith("zh/")}
    assert 25 <= len(articles) <= 40 and len(chinese) >= 5
    assert any(p.source.endswith(".csv") for p in result.passages)
    assert not result.problems
    assert all(p.url for p in result.passages)
