"""Query-time retrieval: embed the question, search dense + BM25, fuse; loaded once per process.

``Retriever.retrieve`` returns a :class:`~core.retrieval.hybrid.RetrievalResult` (hits, the
detected language, the intent); ``Retriever.search`` returns just the hits. Either way
``hits[0].score`` is the calibrated confidence the assistant gates on (see core.retrieval.hybrid).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

from core.config import BUNDLED_EMBEDDER, Settings
from core.devices import resolve_device
from core.language import detect_language
from core.retrieval.embedder import Embedder, embedder_for, embedding_identity
from core.retrieval.statements import StatementVectors
from core.retrieval.hybrid import RetrievalResult, SearchIndex, rerank
from core.retrieval.index import ScoredPassage
from core.retrieval.lexical import EN_STOPWORDS, prepare_segmenter
from core.retrieval.spelling import SpellingCorrector
from core.retrieval.terms import (
    RARE_ACTION_DOCS,
    RARE_SHARE,
    SHORTHAND,
    SYNONYM_SIMILARITY,
    WordArticles,
    asked_action,
    asked_object,
    foreign_names,
    foreign_names_zh,
    how_to_words,
    known_word,
    load_word_lists,
    other_companies,
    other_platforms,
    unknown_action,
)

log = logging.getLogger(__name__)

#: Languages the bundled, English-first all-MiniLM-L6-v2 ranks and scores reliably.
BUNDLED_DENSE_LANGUAGES = frozenset({"en"})


def dense_languages(settings: Settings) -> frozenset[str] | None:
    """Languages whose questions are gated on the dense score; ``None`` means all."""
    value = settings.dense_languages.strip().lower()
    if value == "auto":
        return BUNDLED_DENSE_LANGUAGES if settings.embedding_model == BUNDLED_EMBEDDER else None
    if value in ("*", "all"):
        return None
    return frozenset(v.strip() for v in value.split(",") if v.strip())


class Retriever:
    """Finds the passages that best match a question.

    The index is re-read when a rebuild has swapped in a new version (the ``index_dir``
    symlink changed), so a running bot picks up knowledge-base updates without a restart.
    """

    def __init__(self, settings: Settings, index_dir: Path | None = None) -> None:
        self.settings = settings
        self.index_dir = Path(index_dir or settings.index_dir)
        self._lock = threading.Lock()
        self._word_articles: tuple[SearchIndex, WordArticles] | None = None  # built for this index
        self._index: SearchIndex | None = None
        self._version: str | None = None
        self._reranker = None
        self._speller: tuple[SearchIndex, SpellingCorrector] | None = None
        self._corpus: tuple[SearchIndex, str] | None = None
        self._dense_languages = dense_languages(settings)

    def _current_version(self) -> str:
        try:
            return os.readlink(self.index_dir)
        except OSError:
            return str(self.index_dir.stat().st_mtime_ns) if self.index_dir.exists() else ""

    @property
    def index(self) -> SearchIndex:
        with self._lock:
            version = self._current_version()
            if self._index is None or version != self._version:
                self._index = SearchIndex.load(self.index_dir, expected_model=embedding_identity(self.settings))
                self._version = version
                log.info("index loaded: %d passages from %s", len(self._index), self.index_dir)
            return self._index

    def stored_statements(self) -> StatementVectors | None:
        """The statement vectors of the index loaded now (None before its first load, or for an older index)."""
        index = self._index
        return index.statements if index is not None else None

    @property
    def embedder(self) -> Embedder:
        return embedder_for(self.settings, resolve_device(self.settings.device))

    @property
    def reranker(self):
        """The configured cross-encoder, loaded on first use; ``None`` when none is configured."""
        if not self.settings.reranker_model:
            return None
        with self._lock:
            if self._reranker is None:
                from sentence_transformers import CrossEncoder

                from core.errors import ModelError

                try:
                    self._reranker = CrossEncoder(self.settings.reranker_model, device=resolve_device(self.settings.device))
                except Exception as exc:  # noqa: BLE001
                    raise ModelError(
                        f"Could not load reranker {self.settings.reranker_model!r}: {exc}. "
                        "Check ASKDESK_RERANKER_MODEL, or leave it empty to turn reranking off."
                    ) from exc
            return self._reranker

    def speller(self) -> SpellingCorrector:
        """The typo corrector of the current index's vocabulary (rebuilt with the index)."""
        index = self.index
        with self._lock:
            if self._speller is None or self._speller[0] is not index:
                texts = [f"{p.title} {' '.join(p.headings)} {p.text}" for p in index.passages]
                self._speller = (index, SpellingCorrector.from_texts(texts, self._known_word))
            return self._speller[1]

    def _known_word(self, word: str) -> bool:
        """A word the speller leaves alone: one the embedder knows whole, or shorthand ("wont" is
        "won't", not a typo of "want")."""
        return word in SHORTHAND or self.embedder.knows_word(word)

    def correct(self, query: str) -> str:
        """The query with typos fixed against the knowledge base's words (Latin script only)."""
        return self.speller().correct(query)

    def foreign_names(self, query: str, evidence: str = "") -> list[str]:
        """Words of the (corrected) query that name something the knowledge base never mentions, the
        action of a how-to question it never describes ("how do i scan …"), or another platform that
        neither the passages found for it (``evidence``) nor many places of the knowledge base name."""
        language = detect_language(query)
        if language == "zh":
            return foreign_names_zh(query, self.corpus())
        if language != "en":
            return []
        vocabulary = self.speller().vocabulary
        corrected = self.correct(query)
        found = foreign_names(corrected, vocabulary, EN_STOPWORDS)
        found += [w for w in other_companies(query, vocabulary) + unknown_action(corrected, vocabulary) if w not in found]
        thing = asked_object(corrected)
        if thing and thing not in found and thing not in EN_STOPWORDS and not known_word(thing, vocabulary) \
                and not self._has_synonym(thing, evidence):
            found.append(thing)  # "how do i set up fingerprint login": nothing here is about fingerprints
        # "how do i scan a document": one battery article says "scanning"; "how do i change the mouse
        # scroll speed": one says "scroll down the list". A word of a how-to question that few articles
        # use and the found one does not (nor a synonym of it) is what that article does not do.
        verb = asked_action(corrected)
        words = [w for w in dict.fromkeys(how_to_words(corrected)) if w not in found and w not in EN_STOPWORDS]
        if words:
            word_articles = self.word_articles()
            said = WordArticles([("", evidence)])  # the evidence's words in all their forms, read once
            for word in words:
                articles = word_articles.articles(word)
                # The verb counts where the knowledge base has a longer word it begins ("scanner"); other
                # words only in one of their forms ("promo" only begins "Promotions": a short form, not a
                # topic). Rare needs many articles to be rare among (a tenth of them at most), but for the verb.
                used = known_word(word, vocabulary) if word == verb else bool(articles)
                rare = len(articles) <= RARE_ACTION_DOCS and (word == verb or len(articles) <= RARE_SHARE * len(word_articles))
                if used and rare and not said.articles(word) and not self._has_synonym(word, evidence):
                    found.append(word)
        return found + [p for p in other_platforms(query, self.corpus(), evidence) if p not in found]

    def word_articles(self) -> WordArticles:
        """Which articles of the current index use each word (rebuilt with the index)."""
        index = self.index
        with self._lock:
            if self._word_articles is None or self._word_articles[0] is not index:
                texts = ((p.doc_id, f"{p.title} {' '.join(p.headings)} {p.text}") for p in index.passages)
                self._word_articles = (index, WordArticles(texts))
            return self._word_articles[1]

    def _has_synonym(self, word: str, evidence: str) -> bool:
        """Whether a word of the passage found (``evidence``) means about the same as ``word`` to the
        embedder ("apps" and "applications"), so a question in other words than the article's is not
        taken for one about something else. Only asked for a how-to object the knowledge base lacks."""
        words = sorted({w for w in re.findall(r"[a-z][a-z0-9]{2,}", evidence.lower()) if w not in EN_STOPWORDS})
        if not words:
            return False
        vectors = self.embedder.embed_passages(words)
        return float(np.max(vectors @ self.embedder.embed_queries([word])[0])) >= SYNONYM_SIMILARITY

    def corpus(self) -> str:
        """All the current index's text in one string, for substring checks in scripts without spaces."""
        index = self.index
        with self._lock:
            if self._corpus is None or self._corpus[0] is not index:
                self._corpus = (index, "\n".join(f"{p.title} {' '.join(p.headings)} {p.text}" for p in index.passages))
            return self._corpus[1]

    def warm_up(self) -> None:
        """Load index and embedder now rather than on the first question."""
        _ = self.index
        self.embedder.embed_queries(["warm up"])
        self.speller()
        self.word_articles()
        load_word_lists()
        prepare_segmenter()
        _ = self.reranker

    def dense_supported(self, language: str) -> bool:
        return self._dense_languages is None or language in self._dense_languages

    def retrieve(
        self, query: str, k: int, *, query_vector: np.ndarray | None = None, mode: str | None = None, **options
    ) -> RetrievalResult:
        """Search with the configured mode; ``options`` go to :meth:`SearchIndex.search`."""
        index = self.index
        if query_vector is None:
            query = self.correct(query)
            query_vector = self.embedder.embed_queries([query])[0]
        language = detect_language(query)
        options.setdefault("rrf_k", self.settings.rrf_k)
        reranker = self.reranker
        depth = max(k, 20) if reranker is not None else k
        result = index.search(
            query,
            query_vector,
            depth,
            mode=mode or self.settings.retrieval_mode,
            dense_supported=self.dense_supported(language),
            language=language,
            **options,
        )
        if reranker is not None:
            result = rerank(result, query, reranker)
        result.hits = result.hits[:k]
        if result.intent_probability is not None and result.intent_probability < self.settings.intent_threshold:
            result.intent = None
        return result

    def search(self, query: str, k: int) -> list[ScoredPassage]:
        return self.retrieve(query, k).hits
