"""Precision and recall of the grounding check on a hand-labelled set of drafts.

``python -m benchmarks.grounding_check [--show-errors] [--kind KIND ...] [--limit N]``

The set, ``benchmarks/data/grounding_drafts.csv`` (``id,question,draft,label,kind,note``),
holds drafts that a small (135M) or a good (7B) model might write for a customer
question, each labelled by hand against the sample knowledge base:

* ``good`` — every sentence is supported by one passage sentence (or a small window of
  adjacent sentences, a list item under its heading, a table row), and every specific in it
  (number, price, duration, name, shortcut, e-mail, URL, phone, setting name) stands in
  that sentence with the same subject as in the draft. Kinds: ``paraphrase``, ``quote``,
  ``short`` (a bare fact answering the question, e.g. "30 days."), ``multi`` (two or more
  supported sentences), ``zh`` (Chinese).
* ``bad`` — at least one sentence is not so supported. Kinds: ``wrong_number`` (a number of
  the passages bound to the wrong subject), ``question_specific`` (a specific taken only
  from the question), ``filler`` (no claim at all: "I hope this helps."), ``wrong_fact``,
  ``invented`` (a specific in no passage), ``mixed`` (one supported sentence and one not),
  ``off_topic`` (a true-sounding sentence on another topic whose claim is wrongly bound),
  ``loop`` (repetition), ``prompt_copy`` (the prompt's scaffolding echoed: "Article: ...",
  "Passage [2] (...", "Question: ..."), ``zh`` (Chinese bad drafts).

Irrelevant but true drafts (kind ``irrelevant``): the check judges *support*, not
*relevance*. A draft that restates a passage sentence correctly but does not answer the
question ("How do I contact customer support?" → "Our customer support team is here to help
with orders, shipping, returns, payments and your account.") is
labelled ``good`` when it is supported by the passages the pipeline retrieves for that
question, and ``bad`` only when it binds a claim wrongly (that is kind ``off_topic``).
Deciding whether a supported sentence answers the question is the job of retrieval, the
gate and the composer, not of the grounding check; counting such rows as errors of the
check would reward a check that rejects true statements. The other side of the same rule:
a sentence that is true somewhere in the knowledge base but in none of the passages
retrieved for the question ("how do I reset my password?" → "Northwind Goods gift cards
never expire.") is unsupported for the check, so it is ``bad``/``irrelevant``. Both kinds
have their own lines in the per-kind table.

For every row the benchmark retrieves the passages the pipeline would give the generator
for that question (no history: ``search_in_context`` then is a plain retrieve of
``top_k + 6`` and the first ``top_k`` are used), then asks
``Assistant.check_draft(draft, question, passages)`` for a verdict. "Positive" means the
check *accepts* the draft:

* TP: good and accepted · FP: bad and accepted · TN: bad and rejected · FN: good and rejected
* acceptance precision = TP / (TP + FP) — of accepted drafts, how many were good
* acceptance recall = TP / (TP + FN) — of good drafts, how many were accepted
* rejection recall = TN / (TN + FP) — of bad drafts, how many were rejected

Rows whose question the pipeline would refuse at the retrieval gate are still checked (the
check alone is measured) and counted in ``gated``. The note of every good row quotes its
evidence from the knowledge base as ``ev: «...» «...»``; ``evidence retrieved`` says whether
all of it was among the passages given to the check (a good row rejected without its
evidence is a retrieval miss, not only a check error). Results go to ``benchmarks/results/grounding_check.json``.
"""

from __future__ import annotations

import argparse
import csv
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import DATA, ROOT, percentile, save, table

DRAFTS = DATA / "grounding_drafts.csv"
RELATED_CANDIDATES = 6  # as core.assistant: extra passages retrieved beyond top_k
GOOD_KINDS = ["paraphrase", "quote", "short", "multi", "zh", "irrelevant"]
BAD_KINDS = ["wrong_number", "question_specific", "filler", "wrong_fact", "invented", "mixed", "off_topic",
             "loop", "prompt_copy", "zh", "irrelevant"]
_EVIDENCE = re.compile(r"«([^»]+)»")


def load_drafts(path: Path = DRAFTS) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def evidence(row: dict[str, str]) -> list[str]:
    """The knowledge-base text a good draft rests on: the ``«...»`` quotes of its note."""
    return _EVIDENCE.findall(row.get("note", ""))


def normalise(text: str) -> str:
    """Text compared for evidence: no emphasis or code markup, whitespace collapsed."""
    return re.sub(r"\s+", " ", text.replace("**", "").replace("`", "")).strip()


def passage_text(passage) -> str:
    """A passage as the check can read it: its heading path, then its text."""
    return " > ".join(h for h in (passage.title, *passage.headings) if h) + "\n" + passage.text


def evidence_in(row: dict[str, str], texts: list[str]) -> bool | None:
    """Whether every evidence quote of ``row`` stands in one of ``texts`` (None: the row names none)."""
    quotes = evidence(row)
    if not quotes:
        return None
    haystack = [normalise(t) for t in texts]
    return all(any(normalise(q) in h for h in haystack) for q in quotes)


def make_assistant(index_dir: Path, db_path: Path):
    """The real pipeline on the sample knowledge base, index built into ``index_dir``."""
    from core.assistant import Assistant
    from core.config import Settings
    from core.retrieval.build import build_index

    kb = ROOT / "sample_kb"
    settings = Settings(_env_file=None, kb_dir=kb, index_dir=index_dir, db_path=db_path,
                        cache_dir=ROOT / ".askdesk" / "cache")
    build_index(settings, kb, index_dir)
    return Assistant(settings, remember=False)


def pipeline_passages(assistant, question: str) -> tuple[list, bool]:
    """The passages the pipeline gives the generator for ``question``, and whether it passes the gate."""
    helper = getattr(assistant, "passages_for", None)
    if callable(helper):  # the assistant's own helper, when it has one
        passages = list(helper(question))
        return passages, bool(passages)
    from core.memory import search_in_context

    settings = assistant.settings
    retrieval = search_in_context(assistant.retriever.retrieve, question, [], settings.top_k + RELATED_CANDIDATES)
    hits = retrieval.hits
    return [h.passage for h in hits[: settings.top_k]], assistant.passes_gate(hits)


def judge(assistant, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One verdict per row, with the passages' sources and the time the check took."""
    judged = []
    for row in rows:
        passages, passes = pipeline_passages(assistant, row["question"])
        started = time.perf_counter()
        verdict = assistant.check_draft(row["draft"], row["question"], passages)
        elapsed = time.perf_counter() - started
        got = [p.source for p in passages]
        judged.append({
            **row,
            "accepted": bool(verdict.ok),
            "reason": getattr(verdict, "reason", None),
            "seconds": elapsed,
            "gated": not passes,
            "retrieved": got,
            "evidence_retrieved": evidence_in(row, [passage_text(p) for p in passages]),
        })
    return judged


def confusion(judged: list[dict[str, Any]]) -> dict[str, Any]:
    tp = sum(r["label"] == "good" and r["accepted"] for r in judged)
    fp = sum(r["label"] == "bad" and r["accepted"] for r in judged)
    tn = sum(r["label"] == "bad" and not r["accepted"] for r in judged)
    fn = sum(r["label"] == "good" and not r["accepted"] for r in judged)

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {"rows": len(judged), "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "acceptance_precision": ratio(tp, tp + fp), "acceptance_recall": ratio(tp, tp + fn),
            "rejection_recall": ratio(tn, tn + fp), "accuracy": ratio(tp + tn, len(judged))}


def per_kind(judged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in judged:
        groups.setdefault((r["label"], r["kind"]), []).append(r)
    order = {k: i for i, k in enumerate(GOOD_KINDS + BAD_KINDS)}
    out = []
    for (label, kind), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "good", order.get(kv[0][1], 99), kv[0][1])):
        accepted = sum(r["accepted"] for r in rs)
        right = accepted if label == "good" else len(rs) - accepted
        out.append({"label": label, "kind": kind, "rows": len(rs), "accepted": accepted, "rejected": len(rs) - accepted,
                    "right": right, "right_share": right / len(rs)})
    return out


def run(show_errors: bool = False, kinds: list[str] | None = None, limit: int | None = None) -> dict[str, Any]:
    rows = load_drafts()
    if kinds:
        rows = [r for r in rows if r["kind"] in kinds]
    if limit:
        rows = rows[:limit]
    with tempfile.TemporaryDirectory(prefix="askdesk-grounding-") as tmp:
        started = time.perf_counter()
        assistant = make_assistant(Path(tmp) / "index", Path(tmp) / "askdesk.db")
        assistant.retriever.warm_up()
        assistant.check_draft("Warm-up.", "warm up", pipeline_passages(assistant, "How long do I have to return an item?")[0])
        setup = time.perf_counter() - started
        judged = judge(assistant, rows)

    c = confusion(judged)
    times = [r["seconds"] for r in judged]
    c["check_p50_ms"] = percentile(times, 50) * 1000
    c["check_p90_ms"] = percentile(times, 90) * 1000
    table("Grounding check on labelled drafts (positive = the check accepts)", ["measure", "value"], [
        ["rows", c["rows"]],
        ["TP (good, accepted)", c["tp"]],
        ["FP (bad, accepted)", c["fp"]],
        ["TN (bad, rejected)", c["tn"]],
        ["FN (good, rejected)", c["fn"]],
        ["acceptance precision TP/(TP+FP)", c["acceptance_precision"]],
        ["acceptance recall TP/(TP+FN)", c["acceptance_recall"]],
        ["rejection recall TN/(TN+FP)", c["rejection_recall"]],
        ["accuracy", c["accuracy"]],
        ["check p50 ms", round(c["check_p50_ms"], 1)],
        ["check p90 ms", round(c["check_p90_ms"], 1)],
    ])
    kinds_out = per_kind(judged)
    table("Per kind (right = accepted for good rows, rejected for bad rows)",
          ["label / kind", "rows", "accepted", "rejected", "right", "right share"],
          [[f"{k['label']} / {k['kind']}", k["rows"], k["accepted"], k["rejected"], k["right"], k["right_share"]]
           for k in kinds_out])

    gated = sum(r["gated"] for r in judged)
    good = [r for r in judged if r["label"] == "good" and r["evidence_retrieved"] is not None]
    missed = [r for r in good if not r["evidence_retrieved"]]
    print(f"{gated} of {len(judged)} questions would be refused at the retrieval gate (checked anyway); "
          f"evidence retrieved for {len(good) - len(missed)} of {len(good)} good rows; setup {setup:.1f}s")
    if missed:
        print("good rows whose evidence is not among the passages given to the check (retrieval misses): "
              + ", ".join(r["id"] for r in missed))
    # Reasons grouped without their details ("states specifics found in no passage: 24" → the text before ":").
    reasons = Counter(re.split(r" \(|: ", r["reason"] or "")[0] for r in judged if not r["accepted"])
    if reasons:
        table("Rejection reasons (all rejected rows)", ["reason", "rows"], [[k or "(none)", v] for k, v in reasons.most_common()])

    errors = [r for r in judged if r["accepted"] != (r["label"] == "good")]
    if show_errors:
        print(f"\n{len(errors)} misjudged rows:")
        for r in errors:
            verdict = "ACCEPTED" if r["accepted"] else "REJECTED"
            extra = "" if r["evidence_retrieved"] is not False else "  [evidence not retrieved]"
            why = f": {r['reason']}" if r["reason"] else ""
            print(f"\n[{r['id']}] {r['label']}/{r['kind']} {verdict}{why}{extra}")
            print(f"  Q: {r['question']}")
            print(f"  D: {r['draft']}")
            print(f"  passages: {', '.join(r['retrieved'])}")
            if r["note"]:
                print(f"  note: {r['note']}")

    result = {**c, "setup_s": setup, "gated": gated, "evidence_missed": [r["id"] for r in missed], "per_kind": kinds_out,
              "rows_detail": [{k: r[k] for k in ("id", "label", "kind", "accepted", "reason", "seconds", "gated",
                                                  "retrieved", "evidence_retrieved")} for r in judged]}
    save("grounding_check", result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grounding_check", description=__doc__.split("\n")[0])
    parser.add_argument("--show-errors", action="store_true", help="print every misjudged row with the verdict's reason")
    parser.add_argument("--kind", nargs="*", help="only rows of these kinds")
    parser.add_argument("--limit", type=int, help="only the first N rows")
    args = parser.parse_args(argv)
    run(args.show_errors, args.kind, args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
