"""How the dense index scales: flat vs approximate (IVF, HNSW) at 10k, 100k and 1M passages.

    python -m benchmarks.retrieval_scale [--sizes 10000 100000 1000000] [--queries 200]
                                         [--kinds flat ivf hnsw] [--threads 2] [--cache DIR]

Protocol
- Queries: Banking77 test questions (the first ``--queries`` in file order), embedded one at a time
  with the bundled all-MiniLM-L6-v2 on CPU, as the assistant does.
- Corpus at 10k: the real embeddings of the 10,003 Banking77 training questions (sizes under
  10,003 take the first n; the 10k point is the real set).
- Corpus at 100k and 1M: synthetic 384-d unit vectors with the cluster structure of real data:
  each is a real training-question embedding (chosen uniformly) plus isotropic gaussian noise of
  norm ``--noise`` (0.6 by default, so cos(vector, its source) ≈ 0.86), renormalised. The set is
  thus a mixture of 10k gaussians centred on real questions, whose centres themselves cluster by
  intent; IVF lists and HNSW graphs see the same kind of neighbourhoods as in a real KB.
- Latency: one query per search call (batch 1, as served), p50/p99 over the queries; "excl." is
  the FAISS search alone, "incl." adds the query embedding measured on the same query. The
  ``numpy`` row is ``vectors @ q`` + top-k by argpartition, the exact dense scoring that
  ``core.retrieval.hybrid`` performs today.
- Recall@10: share of the exact (flat) top 10 that the approximate index returns, averaged.
- Build: seconds to create the FAISS index from vectors in memory (IVF: training included);
  memory: bytes of index.faiss + vectors.npy as written by ``VectorIndex.save``.
- Build throughput: passages/s of ``build_index`` (embedding, BM25, classifier, FAISS, save)
  on sample_kb/ and on the 10k Banking77 training questions as a CSV FAQ.
FAISS threads are limited with ``faiss.omp_set_num_threads(--threads)`` (default 2 = this
machine's cores). Results are printed as tables and written to
``benchmarks/results/retrieval_scale.json``.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import DATASETS, ROOT, console, percentile, save, table

BANKING = DATASETS / "banking77"
MODEL = "bundled:all-MiniLM-L6-v2"


def _read(name: str) -> list[tuple[str, str]]:
    with open(BANKING / f"{name}.csv", encoding="utf-8") as fh:
        return [(r["text"], r["category"]) for r in csv.DictReader(fh)]


def _train_vectors(embedder, cache: Path | None) -> np.ndarray:
    path = cache / "banking77_train_minilm.npy" if cache else None
    if path is not None and path.exists():
        return np.load(path)
    vectors = embedder.embed_passages([t for t, _ in _read("train")])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def synthetic(real: np.ndarray, n: int, noise: float, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: a real vector each plus gaussian noise of norm ≈ ``noise``, renormalised."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        block = real[rng.integers(0, len(real), m)] + rng.standard_normal((m, d), dtype=np.float32) * (noise / np.sqrt(d))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    return out


def _lat(values: list[float]) -> tuple[float, float]:
    return percentile(values, 50) * 1000, percentile(values, 99) * 1000


def measure_size(vectors, queries, query_texts, embedder, kinds, settings_for, k=10) -> list[dict[str, Any]]:
    from core.retrieval.index import VectorIndex, index_bytes

    n = len(vectors)
    rows: list[dict[str, Any]] = []
    exact: np.ndarray | None = None
    # the embedding cost per query, measured once per query and reused for every kind
    embed_s = []
    for text in query_texts:
        t0 = time.perf_counter()
        embedder.embed_queries([text])
        embed_s.append(time.perf_counter() - t0)

    # numpy brute force (what hybrid.py computes today)
    np_s = []
    for q in queries:
        t0 = time.perf_counter()
        dense = vectors @ q
        top = np.argpartition(-dense, k - 1)[:k]
        top[np.argsort(-dense[top])]
        np_s.append(time.perf_counter() - t0)
    p50, p99 = _lat(np_s)
    ip50, ip99 = _lat([a + b for a, b in zip(np_s, embed_s)])
    rows.append({"n": n, "kind": "numpy (hybrid.py)", "build_s": 0.0, "mb": vectors.nbytes / 1e6, "p50_ms": p50,
                 "p99_ms": p99, "p50_incl_ms": ip50, "p99_incl_ms": ip99, "recall10": 1.0, "params": {}})

    for kind in kinds:
        config = settings_for(kind)
        t0 = time.perf_counter()
        index, config = VectorIndex._build_faiss(vectors, config)
        build_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            import faiss

            faiss.write_index(index, str(Path(tmp) / "index.faiss"))
            np.save(Path(tmp) / "vectors.npy", vectors)
            size = index_bytes(Path(tmp))
        search_s = []
        found = []
        for q in queries:
            t0 = time.perf_counter()
            _, ids = index.search(q.reshape(1, -1), k)
            search_s.append(time.perf_counter() - t0)
            found.append(ids[0])
        found = np.array(found)
        if kind == "flat":
            exact = found
        if exact is None:
            _, exact = faiss_exact(vectors, queries, k)
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)]))
        p50, p99 = _lat(search_s)
        ip50, ip99 = _lat([a + b for a, b in zip(search_s, embed_s)])
        rows.append({"n": n, "kind": kind, "build_s": build_s, "mb": size / 1e6, "p50_ms": p50, "p99_ms": p99,
                     "p50_incl_ms": ip50, "p99_incl_ms": ip99, "recall10": recall, "params": config})
        # a sweep of the search knob on the same index (cheap: no rebuild)
        if kind in ("ivf", "hnsw"):
            sweep = []
            for value in ([4, 8, 16, 32, 64] if kind == "ivf" else [16, 32, 64, 128]):
                if kind == "ivf":
                    index.nprobe = value
                else:
                    index.hnsw.efSearch = value
                ts, fs = [], []
                for q in queries:
                    t0 = time.perf_counter()
                    _, ids = index.search(q.reshape(1, -1), k)
                    ts.append(time.perf_counter() - t0)
                    fs.append(ids[0])
                rec = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(fs, exact)]))
                sweep.append({"value": value, "p50_ms": _lat(ts)[0], "p99_ms": _lat(ts)[1], "recall10": rec})
            rows[-1]["sweep"] = sweep
        del index
    return rows


def faiss_exact(vectors, queries, k):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index.search(queries, k)


def build_throughput(cache: Path | None) -> list[list[Any]]:
    """passages/s of the real rebuild on sample_kb/ and on 10k Banking77 questions (embedding included)."""
    from benchmarks.retrieval_banking77 import write_faq
    from core.config import Settings
    from core.retrieval.build import build_index

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        faq = tmp / "kb"
        write_faq(faq, _read("train"))
        for name, kb in (("sample_kb", ROOT / "sample_kb"), ("banking77 train (10k)", faq)):
            settings = Settings(_env_file=None, kb_dir=kb, index_dir=tmp / f"idx-{len(out)}", cache_dir=ROOT / ".askdesk" / "cache")
            report = build_index(settings, kb, settings.index_dir)
            out.append([name, report.passages, report.seconds, report.passages / report.seconds,
                        report.index_kind, report.index_bytes / 1e6])
            console.print(report.summary())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--kinds", nargs="+", default=["flat", "ivf", "hnsw"], choices=["flat", "ivf", "hnsw"])
    parser.add_argument("--skip-hnsw-above", type=int, default=100_000,
                        help="leave HNSW out above this size (its 1M build takes too long on 2 cores)")
    parser.add_argument("--threads", type=int, default=2, help="faiss.omp_set_num_threads")
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--nprobe", type=int, default=None)
    parser.add_argument("--ef-search", type=int, default=None)
    parser.add_argument("--no-build", action="store_true", help="skip the build-throughput part")
    parser.add_argument("--cache", type=Path, default=None, help="keep the 10k training embeddings here")
    args = parser.parse_args(argv)
    if not (BANKING / "train.csv").exists():
        console.print(f"[yellow]skipped: Banking77 not found at {BANKING}[/yellow]")
        return 0

    import faiss

    from core.config import Settings
    from core.retrieval.embedder import get_embedder
    from core.retrieval.index import index_config_from_settings

    faiss.omp_set_num_threads(args.threads)
    base = Settings(_env_file=None)
    overrides = {}
    if args.nprobe:
        overrides["ivf_nprobe"] = args.nprobe
    if args.ef_search:
        overrides["hnsw_ef_search"] = args.ef_search
    base = base.model_copy(update=overrides)

    def settings_for(kind):
        return index_config_from_settings(base.model_copy(update={"index_type": kind}), 0)

    embedder = get_embedder(MODEL, "cpu")
    embedder.embed_queries(["warm up"])
    real = _train_vectors(embedder, args.cache)
    query_texts = [t for t, _ in _read("test")][: args.queries]
    queries = embedder.embed_queries(query_texts).astype(np.float32)

    results: dict[str, Any] = {"threads": args.threads, "queries": len(queries), "noise": args.noise, "sizes": []}
    for n in args.sizes:
        vectors = real[:n] if n <= len(real) else synthetic(real, n, args.noise)
        kinds = [k for k in args.kinds if not (k == "hnsw" and n > args.skip_hnsw_above)]
        console.print(f"[bold]{n:,} passages[/bold] ({'real' if n <= len(real) else 'synthetic'}): {', '.join(kinds)}")
        rows = measure_size(np.ascontiguousarray(vectors, dtype=np.float32), queries, query_texts, embedder, kinds, settings_for)
        results["sizes"].append({"n": n, "real": n <= len(real), "rows": rows})
        table(
            f"{n:,} passages, {len(queries)} queries, faiss threads {args.threads}",
            ["index", "build s", "MB", "p50 ms", "p99 ms", "p50 ms incl. embed", "p99 ms incl. embed", "recall@10"],
            [[r["kind"], r["build_s"], r["mb"], r["p50_ms"], r["p99_ms"], r["p50_incl_ms"], r["p99_incl_ms"], r["recall10"]] for r in rows],
        )
        for r in rows:
            if "sweep" in r:
                knob = "nprobe" if r["kind"] == "ivf" else "efSearch"
                table(f"{r['kind']} at {n:,}: {knob} sweep", [knob, "p50 ms", "p99 ms", "recall@10"],
                      [[s["value"], s["p50_ms"], s["p99_ms"], s["recall10"]] for s in r["sweep"]])
        save("retrieval_scale", results)
        del vectors
    if not args.no_build:
        rows = build_throughput(args.cache)
        results["build"] = [dict(zip(["kb", "passages", "seconds", "passages_per_s", "kind", "mb"], r)) for r in rows]
        table("index build (real rebuild, embedding included)", ["KB", "passages", "seconds", "passages/s", "kind", "MB"], rows)
    save("retrieval_scale", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
