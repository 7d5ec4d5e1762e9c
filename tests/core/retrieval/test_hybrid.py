"""Hybrid index: BM25 and FAISS in step across rebuilds, the classifier, Chinese questions, prompts."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from core.errors import IndexUnusableError
from core.retrieval.build import build_index
from core.retrieval.classifier import IntentClassifier, char_ngrams, labelled_rows
from core.retrieval.embedder import embedding_identity, get_embedder
from core.retrieval.hybrid import RetrievalResult, SearchIndex, rerank
from core.retrieval.index import ScoredPassage
from core.retrieval.lexical import tokenize
from core.retrieval.loader import load_knowledge_base
from core.retrieval.retriever import Retriever
from tests.conftest import EVAL_DATA, make_settings, write_kb

ARTICLES = {
    "returns.md": "## Window\nReturn items within 30 days of delivery.",
    "shipping.md": "## Shipping\nWe ship to the United States, Canada and the European Union.",
    "password.md": "## Password\nUse the Forgot password link on the sign-in page to reset your password.",
    "zh-password.md": "---\ntitle: 重置密码\n---\n忘记密码时，请在登录页面点击“忘记密码”，按邮件中的链接重置。",
}

FAQ = [
    ("card_lost", "I lost my card"), ("card_lost", "My card is missing"), ("card_lost", "Someone stole my card"),
    ("card_lost", "I can't find my bank card anywhere"), ("card_lost", "my wallet with the card was stolen"),
    ("refund", "Where is my refund?"), ("refund", "I want my money back"), ("refund", "How do I get a refund?"),
    ("refund", "The refund has not arrived yet"), ("refund", "Can I be reimbursed for this purchase?"),
    ("address", "How do I change my address?"), ("address", "I moved house, update my address"),
    ("address", "Update the delivery address on my account"), ("address", "My address is wrong"),
    ("address", "I need to edit my home address"),
]


@pytest.fixture()
def kb(tmp_path):
    return write_kb(tmp_path / "kb", ARTICLES)


def _chinese_rows(path):
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if any("\u4e00" <= ch <= "\u9fff" for ch in r["question"])]


def test_incremental_rebuild_keeps_bm25_and_faiss_in_step(kb, tmp_path):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    first = SearchIndex.load(index_dir)
    assert first.lexical.num_docs == len(first.vectors) == 4
    assert first.lexical.scores(tokenize("European Union")).max() > 0

    (kb / "shipping.md").unlink()
    (kb / "gifts.md").write_text("## Gift cards\nGift cards never expire.", encoding="utf-8")
    report = build_index(make_settings(), kb, index_dir)
    assert (report.new, report.removed) == (1, 1)
    index = SearchIndex.load(index_dir)
    assert index.lexical.num_docs == len(index.vectors) == 4
    assert not index.lexical.scores(tokenize("European Union")).any()  # gone from BM25 ...
    assert all(p.source != "shipping.md" for p in index.passages)  # ... and from the vectors
    hits = Retriever(make_settings(index_dir=index_dir)).search("Do gift cards expire?", 4)
    assert hits[0].passage.source == "gifts.md"
    assert "shipping.md" not in {h.passage.source for h in hits}
    # row i of BM25 is row i of FAISS: the gift-card passage is best in both
    row = next(i for i, p in enumerate(index.passages) if p.source == "gifts.md")
    assert index.lexical.scores(tokenize("gift cards expire")).argmax() == row


def test_index_without_bm25_part_says_to_rebuild(kb, tmp_path):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    (index_dir.resolve() / "lexical.json").unlink()
    with pytest.raises(IndexUnusableError, match="askdesk index build"):
        SearchIndex.load(index_dir)


def test_hybrid_finds_chinese_article_for_chinese_question(kb, tmp_path):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    result = Retriever(make_settings(index_dir=index_dir)).retrieve("我忘记密码了，怎么重置？", 2)
    assert result.language == "zh" and not result.dense_supported
    assert result.hits[0].passage.source == "zh-password.md"
    assert result.confidence == pytest.approx(1.0)  # every word of the question is in the passage


@pytest.mark.parametrize("row", _chinese_rows(EVAL_DATA / "sample_questions.csv"), ids=lambda r: r["question"])
def test_chinese_in_scope_questions_rank_their_article_in_top3_and_pass_the_gate(retriever, settings, row):
    hits = retriever.search(row["question"], 10)
    urls = list(dict.fromkeys(h.passage.url for h in hits))
    assert row["expected_url"] in urls[:3]
    assert hits[0].score >= settings.threshold


@pytest.mark.parametrize("row", _chinese_rows(EVAL_DATA / "out_of_scope.csv"), ids=lambda r: r["question"])
def test_chinese_out_of_scope_questions_fall_below_the_gate(retriever, settings, row):
    hits = retriever.search(row["question"], 3)
    assert hits[0].score < settings.threshold


def test_english_confidence_is_still_the_dense_cosine(retriever):
    hit = retriever.search("How long do I have to return an item?", 1)[0]
    assert hit.score == pytest.approx(hit.dense)
    assert hit.passage.url.endswith("/returns/return-window")


def _faq(folder, rows, with_intent_column=False):
    folder.mkdir(exist_ok=True)
    with open(folder / "faq.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        if with_intent_column:
            writer.writerow(["question", "answer", "intent"])
            writer.writerows([(q, f"Answer about {label}.", label) for label, q in rows])
        else:
            writer.writerow(["id", "question", "answer"])
            writer.writerows([(label, q, f"Answer about {label}.") for label, q in rows])


def test_classifier_predicts_held_out_examples():
    embedder = get_embedder(make_settings().embedding_model)
    labels = [label for label, _ in FAQ]
    vectors = embedder.embed_passages([q for _, q in FAQ])
    held_out = [("card_lost", "I think my card has been stolen"), ("refund", "when will I get the refund"),
                ("address", "please change the address I live at")]
    queries = embedder.embed_queries([q for _, q in held_out])
    for method in ("knn", "logreg", "ensemble"):
        classifier = IntentClassifier.train(vectors, labels, method, texts=[q for _, q in FAQ])
        predictions = [classifier.predict(v, q) for v, (_, q) in zip(queries, held_out)]
        assert [p.intent for p in predictions] == [label for label, _ in held_out], method
        assert all(0 < p.probability <= 1 for p in predictions)


def test_char_ngrams_stay_inside_words():
    assert char_ngrams("Top up") == [" t", "to", "op", "p ", " to", "top", "op ", " top", "top ", " top ",
                                     " u", "up", "p ", " up", "up ", " up "]


def test_logistic_head_reads_words_and_characters_and_survives_a_round_trip(tmp_path):
    embedder = get_embedder(make_settings().embedding_model)
    texts = [q for _, q in FAQ]
    classifier = IntentClassifier.train(embedder.embed_passages(texts), [label for label, _ in FAQ], "logreg", texts=texts)
    assert [f.analyzer for f in classifier.features] == ["words", "chars"]
    classifier.save(tmp_path)
    loaded = IntentClassifier.load(tmp_path)
    assert [f.analyzer for f in loaded.features] == ["words", "chars"]
    query = "my adress is wrong"  # a typo only the character n-grams still match
    vector = embedder.embed_queries([query])
    assert np.allclose(loaded.probabilities(vector, [query]), classifier.probabilities(vector, [query]), atol=1e-6)
    assert loaded.predict(vector[0], query).intent == "address"


def test_labelled_rows_come_from_shared_ids_or_an_intent_column(tmp_path):
    _faq(tmp_path / "a", FAQ)
    _faq(tmp_path / "b", FAQ, with_intent_column=True)
    for folder in ("a", "b"):
        rows, labels = labelled_rows(load_knowledge_base(tmp_path / folder).passages)
        assert len(rows) == len(FAQ) and set(labels) == {"card_lost", "refund", "address"}
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.md").write_text("# A\n\none\n\ntwo", encoding="utf-8")
    assert labelled_rows(load_knowledge_base(tmp_path / "c").passages) == ([], [])


def test_build_trains_the_classifier_and_retrieval_reports_the_intent(tmp_path):
    _faq(tmp_path / "kb", FAQ, with_intent_column=True)
    index_dir = tmp_path / "index"
    report = build_index(make_settings(), tmp_path / "kb", index_dir)
    assert report.intents == 3 and "intent classifier over 3 intents" in report.summary()
    retriever = Retriever(make_settings(index_dir=index_dir))
    result = retriever.retrieve("somebody took my card", 3)
    assert result.intent == "card_lost" and result.hits[0].passage.extra["intent"] == "card_lost"
    assert isinstance(retriever.index.classifier, IntentClassifier)
    # The gate of a labelled knowledge base: a new wording of an intent passes, an unrelated question does not.
    assert retriever.retrieve("my bank card was taken from me", 1).confidence >= 0.35
    assert retriever.retrieve("Zebras and giraffes in the savannah", 1).confidence < 0.35


def test_hybrid_ranks_the_classifier_intent_first_and_keeps_other_documents(tmp_path):
    _faq(tmp_path / "kb", FAQ)  # one document per intent, its questions are its passages
    build_index(make_settings(), tmp_path / "kb", tmp_path / "index")
    index = Retriever(make_settings(index_dir=tmp_path / "index")).index
    query = "I want to be reimbursed"
    vector = get_embedder(make_settings().embedding_model).embed_queries([query])[0]
    hits = index.search(query, vector, 10).hits
    assert hits[0].passage.doc_id == "refund"
    assert hits[0].score == pytest.approx(hits[0].dense)
    assert len({h.passage.doc_id for h in hits}) == 3  # a list of passages, not one document's paraphrases only


def test_assistant_answer_carries_the_intent(tmp_path):
    from core.assistant import Assistant
    from core.messages import IncomingMessage

    class Echo:
        name = "echo"

        def stream(self, messages, max_new_tokens):
            yield "Answer about refund. [1]"

        def warm_up(self):
            pass

    _faq(tmp_path / "kb", FAQ, with_intent_column=True)
    build_index(make_settings(), tmp_path / "kb", tmp_path / "index")
    settings = make_settings(index_dir=tmp_path / "index")
    answer = Assistant(settings, generator=Echo()).answer(IncomingMessage(text="I still have not received my refund"))
    assert answer.intent == "refund" and not answer.refused
    assert answer.to_dict()["intent"] == "refund"


def test_rebuild_with_the_classifier_turned_off_is_not_up_to_date(tmp_path):
    _faq(tmp_path / "kb", FAQ)
    index_dir = tmp_path / "index"
    assert build_index(make_settings(), tmp_path / "kb", index_dir).intents == 3
    report = build_index(make_settings(classifier="off"), tmp_path / "kb", index_dir)
    assert not report.up_to_date and report.new == 0 and report.intents == 0
    assert SearchIndex.load(index_dir).classifier is None


def test_explicit_prompts_change_vectors_and_the_index_identity(kb, tmp_path):
    plain = make_settings()
    prompted = make_settings(embedding_query_prompt="query: ", embedding_passage_prompt="passage: ")
    assert embedding_identity(plain) == plain.embedding_model
    assert "query: " in embedding_identity(prompted)
    a = Retriever(plain).embedder.embed_queries(["reset password"])
    b = Retriever(prompted).embedder.embed_queries(["reset password"])
    assert not np.allclose(a, b)
    index_dir = tmp_path / "index"
    build_index(plain, kb, index_dir)
    with pytest.raises(IndexUnusableError, match="another|embedding model"):
        Retriever(prompted.model_copy(update={"index_dir": index_dir})).search("reset", 1)
    report = build_index(prompted, kb, index_dir)
    assert report.new == 4  # vectors made without the prompts are not reused


def test_dense_and_lexical_modes(kb, tmp_path):
    index_dir = tmp_path / "index"
    build_index(make_settings(), kb, index_dir)
    retriever = Retriever(make_settings(index_dir=index_dir))
    for mode in ("dense", "lexical", "hybrid"):
        assert retriever.retrieve("Which countries do you ship to?", 1, mode=mode).hits[0].passage.source == "shipping.md"


def test_rerank_reorders_but_keeps_each_confidence():
    from core.retrieval.passages import Passage

    hits = [ScoredPassage(Passage(f"p{i}", f"d{i}", f"text {i}", f"T{i}", "s"), score=s) for i, s in enumerate([0.9, 0.5])]

    class Cross:
        def predict(self, pairs):
            return [0.1 if "text 0" in text else 0.8 for _, text in pairs]

    result = rerank(RetrievalResult(hits), "q", Cross())
    assert [h.passage.passage_id for h in result.hits] == ["p1", "p0"]
    assert result.confidence == 0.5


def test_english_question_is_not_pulled_into_a_chinese_article_by_a_shared_word(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "pay.md").write_text("## Payment methods\nWe accept Visa, Mastercard and PayPal at checkout.", encoding="utf-8")
    (kb / "zh-refund.md").write_text("## 退款\n退款会退回原支付方式，例如 PayPal 账户。", encoding="utf-8")
    build_index(make_settings(), kb, tmp_path / "index")
    retriever = Retriever(make_settings(index_dir=tmp_path / "index"))
    assert retriever.search("Can I pay with PayPal?", 1)[0].passage.source == "pay.md"
    assert retriever.search("退款退到哪里？", 1)[0].passage.source == "zh-refund.md"
