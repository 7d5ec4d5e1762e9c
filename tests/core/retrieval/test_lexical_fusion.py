"""Tokenisation (English and Chinese), BM25 coverage, and rank fusion."""

from __future__ import annotations

import pytest

from core.retrieval.fusion import document_ranking, fused_order, passages_in_document_order, reciprocal_rank_fusion
from core.retrieval.lexical import LexicalIndex, stem, tokenize


def test_english_tokens_are_lowercased_stemmed_and_without_stop_words():
    assert tokenize("How do I reset my Password?") == ["reset", "password"]
    assert tokenize("Shipping boxes to Australia's parties") == ["ship", "box", "australia", "party"]


@pytest.mark.parametrize("word, expected", [("returns", "return"), ("stopped", "stop"), ("charged", "charg"), ("class", "class"), ("bus", "bus")])
def test_light_stemmer(word, expected):
    assert stem(word) == expected


def test_chinese_is_segmented_into_words_without_particles():
    assert tokenize("退货期限是多久？") == ["退货", "期限"]
    assert tokenize("我忘记密码了，怎么重置？") == ["忘记", "密码", "重置"]
    # search mode also yields the parts of a long word
    assert {"红烧", "红烧肉"} <= set(tokenize("红烧肉怎么做"))


def test_mixed_chinese_and_english():
    assert tokenize("PayPal 退款多久到账") == ["paypal", "退款", "账"]


def test_chinese_question_matches_chinese_passage():
    index = LexicalIndex.build(["退货期限：收货后 30 天内可以退货。", "忘记密码时，请在登录页点击“忘记密码”重置。", "We ship to Canada."])
    scores = index.scores(tokenize("我忘记密码了，怎么重置？"))
    assert scores.argmax() == 1 and scores[0] == 0 and scores[2] == 0
    assert index.coverage(tokenize("我忘记密码了，怎么重置？"), [0, 1]) == [0.0, 1.0]
    assert index.coverage(tokenize("红烧肉怎么做？"), [0, 1, 2]) == [0.0, 0.0, 0.0]


def test_unknown_words_and_empty_queries_score_zero():
    index = LexicalIndex.build(["alpha beta", "gamma"])
    assert not index.scores(tokenize("zeta")).any()
    assert not index.scores([]).any()
    assert index.coverage([], [0]) == [0.0]


def test_lexical_index_round_trips(tmp_path):
    index = LexicalIndex.build(["refund timing", "退货期限"])
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded.num_docs == 2 and loaded.scores(tokenize("退货")).argmax() == 1


def test_rrf_adds_reciprocal_ranks():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c"]], k=60)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert [item for item, _ in fused_order([["a", "b", "c"], ["b", "c"]])] == ["b", "c", "a"]


def test_rrf_weights_and_missing_items():
    order = [item for item, _ in fused_order([["a", "b"], ["b", "a"]], weights=[1.0, 0.2], k=1)]
    assert order == ["a", "b"]
    assert reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0, 0.0]) == {"a": pytest.approx(1 / 61)}
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])


def _doc(passage: str) -> str:
    return passage[0]  # "a1" is passage 1 of document "a"


def test_document_fusion_counts_a_document_once_per_list_at_its_best_passage():
    dense, bm25 = ["a1", "b1"], ["a2", "b1"]
    # Passage fusion: b1 is in both lists, a1 and a2 in one each, so document b comes first...
    assert document_ranking((p for p, _ in fused_order([dense, bm25])), _doc) == ["b", "a"]
    # ...although document a is first in both lists: document fusion puts it first.
    docs = reciprocal_rank_fusion([document_ranking(dense, _doc), document_ranking(bm25, _doc)])
    assert sorted(docs, key=lambda d: -docs[d]) == ["a", "b"]


def test_passages_follow_the_document_order_and_keep_their_diversity():
    passage_order = ["b1", "b2", "a1", "c1", "a2", "b3", "d1"]
    out = passages_in_document_order(passage_order, ["a", "c", "b", "d"], _doc)
    assert sorted(out) == sorted(passage_order)  # every passage once
    assert document_ranking(out, _doc) == ["a", "c", "b", "d"]
    # Documents take the slots where the passage order shows a new document; a document's further
    # passages keep their places or, when they came before its slot, follow its best passage...
    assert out == ["a1", "c1", "b1", "b2", "a2", "b3", "d1"]
    # ...so every prefix holds at least as many distinct documents as the passage order's prefix.
    for n in range(1, len(out) + 1):
        assert len(set(map(_doc, out[:n]))) >= len(set(map(_doc, passage_order[:n])))


def test_documents_only_the_classifier_found_get_their_slot_from_extra():
    out = passages_in_document_order(["a1", "b1"], ["c", "a", "b"], _doc, extra={"c": ["c1", "c2"]})
    assert document_ranking(out, _doc) == ["c", "a", "b"]
    assert set(out) == {"a1", "b1", "c1", "c2"} and out[0] == "c1"


def test_warm_up_loads_the_chinese_segmenter_before_the_first_question(retriever, monkeypatch):
    """Loaded lazily, jieba's dictionary held the GIL for about a second on the first Chinese
    question, and every answer in flight waited with it (benchmarks/fairness.py)."""
    import jieba

    import core.retrieval.retriever as retriever_module
    from core.retrieval.lexical import prepare_segmenter

    calls: list[bool] = []
    monkeypatch.setattr(retriever_module, "prepare_segmenter", lambda: calls.append(True))
    retriever.warm_up()
    assert calls == [True]
    prepare_segmenter()
    assert jieba.dt.initialized
