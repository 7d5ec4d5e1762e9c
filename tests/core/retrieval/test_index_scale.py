"""The index kind chosen by size (flat / IVF / HNSW), its persistence, recall and the build summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.retrieval.index import (
    AUTO_APPROX_KIND,
    VectorIndex,
    choose_index_kind,
    index_config_from_settings,
)
from core.retrieval.passages import Passage
from tests.conftest import SAMPLE_KB, make_settings


def clustered(n: int, d: int = 64, centres: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors near 50 topics, each spread over its own 8-d subspace plus a little noise (like real embeddings)."""
    topics = np.random.default_rng(42)  # the same topics for corpus and queries
    c = topics.standard_normal((centres, d)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    basis = topics.standard_normal((centres, 8, d)).astype(np.float32) / np.sqrt(d)
    rng = np.random.default_rng(seed)
    label = rng.integers(0, centres, n)
    z = rng.standard_normal((n, 8)).astype(np.float32) * 0.5
    x = c[label] + np.einsum("ns,nsd->nd", z, basis[label]) + rng.standard_normal((n, d)).astype(np.float32) * (0.1 / np.sqrt(d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def passages(n: int) -> list[Passage]:
    return [Passage(passage_id=f"p{i}", doc_id=f"d{i}", text=f"passage {i}", title=f"t{i}", source=f"s{i}.md") for i in range(n)]


def test_auto_is_flat_below_the_threshold_and_approximate_at_it():
    assert choose_index_kind(99_999, "auto", 100_000) == "flat"
    assert choose_index_kind(100_000, "auto", 100_000) == AUTO_APPROX_KIND
    assert AUTO_APPROX_KIND in ("ivf", "hnsw")
    assert choose_index_kind(10, "hnsw", 100_000) == "hnsw"  # explicit override, whatever the size
    assert choose_index_kind(10**7, "flat", 100_000) == "flat"
    with pytest.raises(ValueError):
        choose_index_kind(10, "annoy", 100)


def test_settings_choose_the_kind_and_its_search_parameters():
    tiny = make_settings(approx_min_passages=5, ivf_nprobe=7, hnsw_ef_search=99)
    assert index_config_from_settings(tiny, 4) == {"kind": "flat"}
    assert index_config_from_settings(tiny, 5)["kind"] == AUTO_APPROX_KIND
    assert index_config_from_settings(tiny.model_copy(update={"index_type": "ivf"}), 1)["nprobe"] == 7
    assert index_config_from_settings(tiny.model_copy(update={"index_type": "hnsw"}), 1)["ef_search"] == 99
    assert index_config_from_settings(make_settings(), 50_000) == {"kind": "flat"}


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_at_10_against_flat(kind):
    vectors = clustered(5000)
    queries = clustered(200, seed=1)
    defaults = make_settings()  # the shipped search parameters
    config = {"kind": kind, "nprobe": defaults.ivf_nprobe, "ef_search": defaults.hnsw_ef_search}
    approx = VectorIndex(passages(len(vectors)), vectors, "m", index_config=config)
    flat = VectorIndex(passages(len(vectors)), vectors, "m")
    assert approx.kind == kind and flat.kind == "flat"
    got = [[h.passage.doc_id for h in hits] for hits in approx.search(queries, 10)]
    want = [[h.passage.doc_id for h in hits] for hits in flat.search(queries, 10)]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want)])
    assert recall >= 0.95, recall


@pytest.mark.parametrize(
    "config,check",
    [
        ({"kind": "ivf", "nprobe": 5}, lambda index: index.nprobe == 5),
        ({"kind": "hnsw", "ef_search": 77}, lambda index: index.hnsw.efSearch == 77),
        ({"kind": "flat"}, lambda index: True),
    ],
)
def test_kind_and_search_parameters_survive_a_reload(tmp_path, config, check):
    vectors = clustered(600)
    VectorIndex(passages(600), vectors, "m", {"built_at": "x"}, index_config=config).save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["index"]["kind"] == config["kind"]
    loaded = VectorIndex.load(tmp_path)
    assert loaded.kind == config["kind"] and loaded.index_config == manifest["index"]
    assert check(loaded._faiss_index)  # re-applied: FAISS does not keep nprobe / efSearch in its file
    assert "index" not in loaded.meta and loaded.meta["built_at"] == "x"
    assert loaded.search(vectors[:1], 1)[0][0].passage.doc_id == "d0"


def test_a_manifest_that_disagrees_with_the_faiss_file_is_refused(tmp_path):
    from core.errors import IndexUnusableError

    VectorIndex(passages(300), clustered(300), "m").save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["index"] = {"kind": "hnsw", "ef_search": 8}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexUnusableError):
        VectorIndex.load(tmp_path)


@pytest.fixture(scope="module")
def approximate_sample_index(tmp_path_factory, sample_index):
    """The sample KB rebuilt with a tiny approx_min_passages, seeded from the session's flat index (no re-embedding)."""
    import shutil

    from core.retrieval.build import build_index

    index_dir = tmp_path_factory.mktemp("approx") / "index"
    shutil.copytree(sample_index.resolve(), index_dir)
    settings = make_settings(index_dir=index_dir, approx_min_passages=1)
    report = build_index(settings, SAMPLE_KB, index_dir)
    assert not report.up_to_date and report.new == 0  # the kind changed: FAISS rebuilt from the reused vectors
    return settings, report


def test_build_summary_shows_kind_and_memory(approximate_sample_index, sample_index):
    settings, report = approximate_sample_index
    assert report.index_kind == AUTO_APPROX_KIND
    files = ("index.faiss", "vectors.npy")
    assert report.index_bytes == sum((settings.index_dir / f).stat().st_size for f in files)
    assert f"index {AUTO_APPROX_KIND}, {report.index_bytes / 1e6:.1f} MB" in report.summary()

    from core.retrieval.build import build_index

    flat = build_index(make_settings(index_dir=sample_index), SAMPLE_KB, sample_index)  # up to date: no rebuild
    assert flat.up_to_date and flat.index_kind == "flat" and "index flat, " in flat.summary()


def test_changing_the_index_type_rebuilds(approximate_sample_index):
    from core.retrieval.build import build_index

    settings, _ = approximate_sample_index
    again = build_index(settings, SAMPLE_KB, settings.index_dir)
    assert again.up_to_date
    switched = build_index(settings.model_copy(update={"index_type": "hnsw"}), SAMPLE_KB, settings.index_dir)
    assert not switched.up_to_date and switched.new == 0 and switched.index_kind == "hnsw"
    assert VectorIndex.load(settings.index_dir).kind == "hnsw"
    back = build_index(settings, SAMPLE_KB, settings.index_dir)
    assert back.index_kind == AUTO_APPROX_KIND


def test_an_approximate_index_still_answers(approximate_sample_index):
    from core.retrieval.embedder import embedder_for

    settings, _ = approximate_sample_index
    index = VectorIndex.load(settings.index_dir)
    assert index.kind == AUTO_APPROX_KIND
    embedder = embedder_for(settings, "cpu")
    # every passage finds itself first, through the approximate FAISS index
    own = embedder.embed_queries([p.embed_text for p in index.passages[:20]])
    for p, hits in zip(index.passages[:20], index.search(own, 3)):
        assert hits[0].passage.content_hash == p.content_hash

    from core.retrieval.retriever import Retriever

    retriever = Retriever(settings)
    hits = retriever.search("How long does shipping take?", 3)
    assert hits and "shipping" in hits[0].passage.source.lower()


def test_live_queries_use_the_approximate_index(approximate_sample_index, monkeypatch):
    """Hybrid search takes its dense candidates from FAISS, not from a product over every vector."""
    from core.retrieval.hybrid import DenseScores
    from core.retrieval.retriever import Retriever

    settings, _ = approximate_sample_index
    calls: list[int] = []
    original = VectorIndex.search_rows

    def counting(self, query_vector, k):
        calls.append(k)
        return original(self, query_vector, k)

    monkeypatch.setattr(VectorIndex, "search_rows", counting)
    retriever = Retriever(settings)
    hits = retriever.search("Which countries do you ship to?", 3)
    assert calls, "the FAISS index was not asked"
    assert "shipping" in hits[0].passage.url
    # scores of passages outside FAISS's candidates are exact cosines, computed on demand
    index = retriever.index.vectors
    qv = retriever.embedder.embed_queries(["Which countries do you ship to?"])[0]
    scores = DenseScores(index, qv)
    assert abs(scores[5] - float(index.vectors[5] @ qv)) < 1e-5
