"""Retrieval and question classification on Banking77 (public data; not a timed test).

    python -m benchmarks.retrieval_banking77 [--cache DIR] [--json PATH]

Protocol
- Knowledge base: the 10,003 training questions as a CSV FAQ in a temporary folder, one row per
  question with ``id`` = its intent, ``question`` = ``answer`` = the text. Built with the real
  rebuild (``build_index``): FAISS + BM25 + the intent classifier the build trains on rows that
  share an id. The embedder (bundled all-MiniLM-L6-v2) is not fine-tuned.
- Queries: the 3,080 test questions; a query is right at rank r when its intent is the r-th
  distinct doc id (intent) retrieved. Reported: recall@1, recall@5, MRR for dense only, BM25
  only, hybrid (RRF of both), the classifier alone (kNN vote, logistic head, their average) and
  hybrid + classifier (the default configuration of askdesk).
- Out of scope: a second KB from the training questions of the first 50 intents in sorted
  order (built incrementally from the full index, so nothing is re-embedded). In-scope
  queries: those intents' test questions; out-of-scope: the test questions of the other 27
  intents. Reported: answer rate (in-scope, confidence ≥ threshold) and refusal rate
  (out-of-scope, confidence < threshold) at the configured threshold, the threshold that
  balances them, and the curve.

The data set is read from ``../shared/datasets/banking77`` (CC BY 4.0, Casanueva et al. 2020).
Results are printed as tables and written to ``benchmarks/results/retrieval_banking77.json``.
With ``--cache DIR`` the full index is kept there, so a second run only re-does BM25 and the
classifier (build time then excludes embedding; the first run's time includes it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "banking77"
RESULTS = ROOT / "benchmarks" / "results"
IN_SCOPE_INTENTS = 50


def read_split(name: str) -> list[tuple[str, str]]:
    with open(DATA / f"{name}.csv", encoding="utf-8") as fh:
        return [(r["text"], r["category"]) for r in csv.DictReader(fh)]


def write_faq(folder: Path, rows: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "faq.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "question", "answer"])
        writer.writerows((intent, text, text) for text, intent in rows)


def distinct_intents(hits) -> list[str]:
    return list(dict.fromkeys(h.passage.doc_id for h in hits))


def metrics(ranked: list[list[str]], gold: list[str]) -> dict[str, float]:
    from core.retrieval.evaluation import first_rank, ranking_metrics

    return ranking_metrics([first_rank(r, {g}) for r, g in zip(ranked, gold)], k=5)


def run(cache: Path | None) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from core.config import Settings
    from core.retrieval.build import build_index
    from core.retrieval.evaluation import balanced_threshold, gate_rates, threshold_curve
    from core.retrieval.hybrid import SearchIndex
    from core.retrieval.retriever import Retriever

    train, test = read_split("train"), read_split("test")
    work = Path(tempfile.mkdtemp(prefix="askdesk-banking77-"))
    base = cache or work
    settings = Settings(_env_file=None, kb_dir=work / "kb", index_dir=base / "index", cache_dir=work / "cache")
    write_faq(work / "kb", train)
    results: dict = {"protocol": __doc__.split("Protocol", 1)[1].split("The data set", 1)[0].strip(), "train": len(train), "test": len(test)}
    try:
        report = build_index(settings, work / "kb", base / "index", progress=False)
        results["build"] = {"seconds": round(report.seconds, 1), "embedded": report.new, "reused": report.unchanged,
                            "intents": report.intents}
        retriever = Retriever(settings)
        index: SearchIndex = retriever.index
        texts, gold = [t for t, _ in test], [i for _, i in test]
        started = time.perf_counter()
        vectors = retriever.embedder.embed_queries(texts)
        results["query_embedding_seconds"] = round(time.perf_counter() - started, 1)

        def ranked(mode: str, use_classifier: bool) -> tuple[list[list[str]], float]:
            started = time.perf_counter()
            out = [distinct_intents(index.search(t, v, 50, mode=mode, use_classifier=use_classifier).hits)
                   for t, v in zip(texts, vectors)]
            return out, (time.perf_counter() - started) / len(texts) * 1000

        table = {}
        for name, mode, clf in (("dense", "dense", False), ("bm25", "lexical", False), ("hybrid", "hybrid", False),
                                ("hybrid + classifier", "hybrid", True)):
            lists, ms = ranked(mode, clf)
            table[name] = {**metrics(lists, gold), "ms_per_query": round(ms, 2)}
        for method in ("knn", "logreg", "ensemble"):
            probs = index.classifier.probabilities(vectors, texts, method)
            labels = index.classifier.labels
            lists = [[labels[j] for j in np.argsort(-p)] for p in probs]
            table[f"classifier ({method})"] = metrics(lists, gold)
        results["ranking"] = table

        # ---- out of scope ---------------------------------------------------------------
        keep = sorted({i for _, i in train})[:IN_SCOPE_INTENTS]
        oos_dir = work / "oos"
        write_faq(oos_dir / "kb", [r for r in train if r[1] in keep])
        shutil.copytree(Path(base / "index").resolve(), oos_dir / "seed")
        (oos_dir / "index").symlink_to("seed")
        oos_settings = settings.model_copy(update={"kb_dir": oos_dir / "kb", "index_dir": oos_dir / "index"})
        oos_report = build_index(oos_settings, oos_dir / "kb", oos_dir / "index")
        oos_index = Retriever(oos_settings).index
        inside = [n for n, (_, i) in enumerate(test) if i in keep]
        outside = [n for n, (_, i) in enumerate(test) if i not in keep]
        conf = np.array([oos_index.search(texts[n], vectors[n], 1).confidence for n in range(len(texts))])
        clf_conf = oos_index.classifier.probabilities(vectors, texts).max(axis=1)
        gate = {}
        for signal, values in (("confidence (hits[0].score)", conf), ("classifier max probability", clf_conf)):
            a, r = gate_rates(values[inside].tolist(), values[outside].tolist(), settings.threshold)
            t, ba, br = balanced_threshold(values[inside].tolist(), values[outside].tolist())
            gate[signal] = {
                "threshold": settings.threshold, "answer_rate": round(a, 4), "refusal_rate": round(r, 4),
                "balanced": {"threshold": t, "answer_rate": round(ba, 4), "refusal_rate": round(br, 4)},
                "curve": threshold_curve(values[inside].tolist(), values[outside].tolist()),
            }
        results["out_of_scope"] = {
            "in_scope_intents": keep, "in_scope_queries": len(inside), "out_of_scope_queries": len(outside),
            "rebuild_seconds": round(oos_report.seconds, 1), "signals": gate,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def print_tables(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    b = results["build"]
    console.print(f"Banking77: {results['train']} training questions indexed, {results['test']} test questions. "
                  f"Index build {b['seconds']}s ({b['embedded']} embedded, {b['reused']} reused; "
                  f"classifier over {b['intents']} intents); query embedding {results['query_embedding_seconds']}s.")
    t = Table(title="Banking77 intent retrieval (first distinct intent)")
    for c in ("method", "recall@1", "recall@5", "MRR", "ms/query"):
        t.add_column(c, justify="right" if c != "method" else "left")
    for name, m in results["ranking"].items():
        t.add_row(name, f"{m['recall@1']:.4f}", f"{m['recall@5']:.4f}", f"{m['mrr']:.4f}", str(m.get("ms_per_query", "")))
    console.print(t)
    o = results["out_of_scope"]
    t = Table(title=f"Out of scope: {o['in_scope_queries']} in-scope vs {o['out_of_scope_queries']} out-of-scope queries")
    for c in ("signal", "answer@thr", "refuse@thr", "balanced thr", "answer", "refuse"):
        t.add_column(c)
    for name, g in o["signals"].items():
        bal = g["balanced"]
        t.add_row(name, f"{g['answer_rate']:.3f}", f"{g['refusal_rate']:.3f}", f"{bal['threshold']:.3f}",
                  f"{bal['answer_rate']:.3f}", f"{bal['refusal_rate']:.3f}")
    console.print(t)
    g = o["signals"]["confidence (hits[0].score)"]
    t = Table(title="Gate curve (confidence)")
    for c in ("threshold", "answer rate", "refusal rate"):
        t.add_column(c, justify="right")
    for p in g["curve"]:
        if 0.2 <= p["threshold"] <= 0.9:
            t.add_row(f"{p['threshold']:.2f}", f"{p['answer_rate']:.3f}", f"{p['refusal_rate']:.3f}")
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval_banking77", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="keep the full index here between runs")
    parser.add_argument("--json", type=Path, default=RESULTS / "retrieval_banking77.json", help="where to write the numbers")
    args = parser.parse_args(argv)
    if not (DATA / "train.csv").exists():
        print(f"Banking77 not found at {DATA}; see ../shared/datasets/README.md.")
        return 1
    results = run(args.cache)
    print_tables(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
