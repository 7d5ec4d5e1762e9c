"""The lexical side of hybrid retrieval: tokenisation (jieba for Chinese) and a BM25 index.

Tokens are lower-cased, NFKC-normalised words. Latin-script words lose common English
stop words and get a light suffix stemmer (no extra dependency); runs of Chinese
characters are segmented with jieba in search mode, so "退货期限" yields both 退货 and 期限
and a Chinese question matches the words of a Chinese passage.

Besides BM25 ranking (bm25s) the index keeps document frequencies so that it can say how
much of a question the knowledge base covers at all (:meth:`LexicalIndex.coverage`): an
IDF-weighted share of the question's words that occur in a passage. That signal does not
depend on the embedding model, which is what makes it useful for the confidence of
languages the embedder handles poorly.

Layout inside an index folder::

    bm25/            the bm25s index (scores matrix and vocabulary)
    lexical.json     format version, document frequencies, passage count
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from core.language import CJK_RUN

log = logging.getLogger(__name__)

#: Bumped whenever tokenisation or the indexed text changes; the rebuild then redoes BM25.
LEXICAL_VERSION = 2

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SPLIT = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)")

EN_STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few
    for from further get got had hadn't has hasn't have haven't having he her here hers herself him himself his how
    i i'm i've i'd i'll if in into is isn't it it's its itself just let's me more most mustn't my myself no nor not
    now of off on once only or other ought our ours ourselves out over own please same shan't she should shouldn't
    so some such than that that's the their theirs them themselves then there there's these they this those through
    to too under until up very was wasn't we we're we've were weren't what what's when where which while who whom why
    will with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves s t""".split()
)

# Function words and question particles that say nothing about the topic.
ZH_STOPWORDS = frozenset(
    """的 了 吗 呢 吧 啊 呀 嘛 哦 么 是 在 有 和 与 及 或 就 都 也 还 又 很 太 把 被 让 给 对 从 向 到 为 以
    我 你 您 他 她 它 我们 你们 他们 她们 它们 咱们 自己 这 那 这个 那个 这些 那些 这样 那样 这里 那里
    什么 怎么 怎么样 怎样 如何 为什么 为何 哪 哪个 哪些 哪里 哪儿 多少 多久 几 谁 请问 请 一下 可以 能 能否
    会 要 想 吗 一个 个 些 上 下 中 里 得 地 着 过 没 没有 不 别 而 但 但是 如果 因为 所以 等 等等""".split()
)

_JIEBA_LOCK = threading.Lock()
_JIEBA_READY = False


def prepare_segmenter() -> None:
    """Load jieba's dictionary now: done lazily, the first Chinese question pays for it under the
    GIL, and every other question in flight waits with it (docs/reliability.md has the numbers)."""
    _jieba()


def _jieba():
    global _JIEBA_READY
    import jieba

    with _JIEBA_LOCK:
        if not _JIEBA_READY:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _JIEBA_READY = True
    return jieba


def stem(word: str) -> str:
    """A light English suffix stemmer: plurals, -ing, -ed, -ly (enough for BM25 matching)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement, min_stem in (
        ("sses", "ss", 2), ("ies", "y", 2), ("ied", "y", 2), ("ing", "", 3), ("edly", "", 3), ("ed", "", 3),
        ("ly", "", 4), ("es", "", 3), ("s", "", 3),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= min_stem:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            if suffix == "es" and not word.endswith(("ches", "shes", "xes", "sses", "zes")):
                continue
            word = word[: len(word) - len(suffix)] + replacement
            if suffix in ("ing", "ed", "edly") and len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # stopped -> stop, shipping -> ship
            return word
    return word


def tokenize(text: str) -> list[str]:
    """Words for BM25: stemmed English without stop words, jieba-segmented Chinese."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    tokens: list[str] = []
    for part in _SPLIT.split(text):
        if not part:
            continue
        if CJK_RUN.fullmatch(part):
            for word in _jieba().cut_for_search(part):
                word = word.strip()
                if word and word not in ZH_STOPWORDS:
                    tokens.append(word)
        else:
            for word in _WORD.findall(part):
                if word.endswith("'s"):
                    word = word[:-2]
                if word not in EN_STOPWORDS:
                    tokens.append(stem(word))
    return tokens


def lexical_text(passage) -> str:
    """What BM25 indexes for a passage: its embedded text with the title once more.

    The title (an article's name, or an FAQ row's question) says best what a passage is
    about; counting its words twice lets a short question that names the topic find it.
    """
    return f"{passage.title}\n{passage.embed_text}" if passage.title else passage.embed_text


class LexicalIndex:
    """BM25 over passage texts, plus document frequencies for :meth:`coverage`."""

    def __init__(self, bm25, doc_freq: dict[str, int], num_docs: int, doc_tokens: list[frozenset[str]]) -> None:
        self._bm25 = bm25
        self.doc_freq = doc_freq
        self.num_docs = num_docs
        self.doc_tokens = doc_tokens

    @classmethod
    def build(cls, texts: list[str]) -> "LexicalIndex":
        import bm25s

        corpus = [tokenize(t) for t in texts]
        bm25 = bm25s.BM25()
        if texts:
            bm25.index(corpus, show_progress=False)
        doc_tokens = [frozenset(doc) for doc in corpus]
        doc_freq = Counter(tok for doc in doc_tokens for tok in doc)
        return cls(bm25, dict(doc_freq), len(texts), doc_tokens)

    def idf(self, token: str) -> float:
        """Smoothed IDF; words the knowledge base never uses weigh the most."""
        df = self.doc_freq.get(token, 0)
        return math.log(1.0 + (self.num_docs - df + 0.5) / (df + 0.5))

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every passage for the tokenised query (zeros when nothing matches)."""
        known = [t for t in query_tokens if t in self._bm25.vocab_dict] if self.num_docs else []
        if not known:
            return np.zeros(self.num_docs, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def coverage(self, query_tokens: list[str], rows: list[int]) -> list[float]:
        """For each passage row: the IDF-weighted share of the query's words it contains (0..1)."""
        words = set(query_tokens)
        if not words:
            return [0.0 for _ in rows]
        weights = {w: self.idf(w) for w in words}
        total = sum(weights.values()) or 1.0
        return [sum(v for w, v in weights.items() if w in self.doc_tokens[r]) / total for r in rows]

    # ---- persistence -------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder = Path(folder)
        if self.num_docs:
            self._bm25.save(str(folder / "bm25"), show_progress=False)
        data = {
            "version": LEXICAL_VERSION,
            "num_docs": self.num_docs,
            "doc_freq": self.doc_freq,
            "doc_tokens": [sorted(d) for d in self.doc_tokens],
        }
        (folder / "lexical.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        """Raises ``OSError``/``ValueError``/``KeyError`` on a missing or damaged index (caller reports)."""
        import bm25s

        folder = Path(folder)
        data = json.loads((folder / "lexical.json").read_text(encoding="utf-8"))
        if data["version"] != LEXICAL_VERSION:
            raise ValueError(f"lexical index version {data['version']}, this askdesk uses {LEXICAL_VERSION}")
        num_docs = int(data["num_docs"])
        bm25 = bm25s.BM25.load(str(folder / "bm25"), show_progress=False) if num_docs else bm25s.BM25()
        if num_docs and int(bm25.scores["num_docs"]) != num_docs:
            raise ValueError("BM25 index and lexical metadata disagree on the passage count")
        doc_tokens = [frozenset(d) for d in data["doc_tokens"]]
        return cls(bm25, {k: int(v) for k, v in data["doc_freq"].items()}, num_docs, doc_tokens)
