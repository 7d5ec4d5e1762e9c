"""A small Banking77 slice through the real build: hybrid ≥ both single lists, classifier helps."""

from __future__ import annotations

import csv

import pytest

from core.retrieval.build import build_index
from core.retrieval.evaluation import first_rank, ranking_metrics
from core.retrieval.retriever import Retriever
from tests.conftest import DATASETS, make_settings

BANKING77 = DATASETS / "banking77"
INTENTS = 12
TRAIN_PER_INTENT = 25
TEST_PER_INTENT = 10

pytestmark = [
    pytest.mark.datasets,
    pytest.mark.skipif(not (BANKING77 / "train.csv").exists(), reason=f"Banking77 not found at {BANKING77} (../shared/datasets)"),
]


def _rows(name):
    with open(BANKING77 / f"{name}.csv", encoding="utf-8") as fh:
        return [(r["text"], r["category"]) for r in csv.DictReader(fh)]


def _take(rows, intents, per_intent):
    out, seen = [], {}
    for text, intent in rows:
        if intent in intents and seen.get(intent, 0) < per_intent:
            seen[intent] = seen.get(intent, 0) + 1
            out.append((text, intent))
    return out


def test_banking77_slice(tmp_path):
    train, test = _rows("train"), _rows("test")
    intents = set(sorted({i for _, i in train})[:INTENTS])
    kb = tmp_path / "kb"
    kb.mkdir()
    with open(kb / "faq.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "question", "answer"])
        writer.writerows((i, t, t) for t, i in _take(train, intents, TRAIN_PER_INTENT))
    report = build_index(make_settings(), kb, tmp_path / "index")
    assert report.intents == INTENTS
    retriever = Retriever(make_settings(index_dir=tmp_path / "index"))
    queries = _take(test, intents, TEST_PER_INTENT)
    vectors = retriever.embedder.embed_queries([t for t, _ in queries])

    def score(mode, use_classifier):
        ranks = []
        for (text, intent), vector in zip(queries, vectors):
            hits = retriever.retrieve(text, 50, query_vector=vector, mode=mode, use_classifier=use_classifier).hits
            ranks.append(first_rank(list(dict.fromkeys(h.passage.doc_id for h in hits)), {intent}))
        return ranking_metrics(ranks, 5)

    dense, bm25 = score("dense", False), score("lexical", False)
    hybrid, full = score("hybrid", False), score("hybrid", True)
    assert hybrid["recall@5"] >= max(dense["recall@5"], bm25["recall@5"])
    assert full["recall@1"] >= dense["recall@1"] - 0.02
    assert full["recall@1"] >= 0.8 and full["recall@5"] >= 0.95
