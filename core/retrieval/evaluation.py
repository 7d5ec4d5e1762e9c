"""Retrieval evaluation: recall@k, MRR over distinct documents, and the confidence gate.

Used by ``askdesk eval`` and the benchmarks. A question set is a CSV with ``question`` and
``expected`` columns (``expected_url``/``expected_id``/``expected_title`` are accepted too);
``expected`` names the document that should rank first by its doc id, a passage id, its
title, its URL or its file; when several documents answer a question equally well,
``a | b`` names them all (any of them ranked first is right). Rankings are over distinct documents (``doc_id``): several
passages of one article count once, at the rank of its best passage.

The gate part answers: at the configured threshold, how many in-scope questions would be
answered and how many out-of-scope questions refused, and which threshold balances the two
(maximises the smaller of the two rates).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import AskdeskError
from core.retrieval.index import ScoredPassage
from core.retrieval.passages import Passage

EXPECTED_COLUMNS = ("expected", "expected_id", "expected_url", "expected_title", "expected_doc")
CANDIDATE_PASSAGES = 50  # passages retrieved per question to rank distinct documents


class EvaluationDataError(AskdeskError):
    """A question file cannot be used for evaluation."""


@dataclass(frozen=True, slots=True)
class LabelledQuestion:
    question: str
    expected: str


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise EvaluationDataError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise EvaluationDataError(f"{path} is not UTF-8 text; save it as UTF-8 CSV.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip().lower() for c in (reader.fieldnames or []) if c]
    rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    return columns, rows


def read_questions(path: Path) -> list[LabelledQuestion]:
    """``question,expected`` rows (rows with an empty cell are skipped)."""
    columns, rows = _rows(path)
    expected = next((c for c in EXPECTED_COLUMNS if c in columns), None)
    if "question" not in columns or expected is None:
        raise EvaluationDataError(
            f"{path} needs the columns question,expected (expected: the doc id, passage id, title or URL "
            f"that should rank first); found: {', '.join(columns) or 'none'}."
        )
    questions = [LabelledQuestion(r["question"], r[expected]) for r in rows if r.get("question") and r.get(expected)]
    if not questions:
        raise EvaluationDataError(f"{path} has no rows with both a question and an expected answer.")
    return questions


def read_out_of_scope(path: Path) -> list[str]:
    """Questions that have no answer in the knowledge base (a ``question`` column)."""
    columns, rows = _rows(path)
    if "question" not in columns:
        raise EvaluationDataError(f"{path} needs a question column; found: {', '.join(columns) or 'none'}.")
    questions = [r["question"] for r in rows if r.get("question")]
    if not questions:
        raise EvaluationDataError(f"{path} has no questions.")
    return questions


def _norm(value: str) -> str:
    return value.strip().casefold().rstrip("/")


def document_keys(passages: Iterable[Passage]) -> dict[str, set[str]]:
    """Every name a document can be referred to by (normalised) → its doc ids."""
    keys: dict[str, set[str]] = {}
    for p in passages:
        for name in (p.doc_id, p.passage_id, p.title, p.url or "", p.source):
            if name:
                keys.setdefault(_norm(name), set()).add(p.doc_id)
    return keys


def expected_names(expected: str, keys: dict[str, set[str]]) -> list[str]:
    """The names in an ``expected`` cell: the cell itself, or its ``|``-separated alternatives.

    A cell that is itself a name (a title with a ``|`` in it) stays one name.
    """
    if "|" not in expected or _norm(expected) in keys:
        return [expected]
    return [part.strip() for part in expected.split("|") if part.strip()]


def resolve_expected(expected: str, keys: dict[str, set[str]]) -> set[str]:
    """The doc ids of every document ``expected`` names (empty when it names none)."""
    return set().union(*(keys.get(_norm(name), set()) for name in expected_names(expected, keys)))


def distinct_documents(hits: Sequence[ScoredPassage]) -> list[str]:
    """Doc ids in order of their best passage."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.passage.doc_id, None)
    return list(seen)


def first_rank(ranked: Sequence[str], expected: set[str]) -> int | None:
    """1-based rank of the first expected document, or ``None``."""
    return next((n for n, doc in enumerate(ranked, start=1) if doc in expected), None)


def ranking_metrics(ranks: Sequence[int | None], k: int = 5) -> dict[str, float]:
    """recall@1, recall@k and MRR of 1-based ranks (``None``: not found)."""
    n = len(ranks) or 1
    return {
        "recall@1": sum(1 for r in ranks if r == 1) / n,
        f"recall@{k}": sum(1 for r in ranks if r is not None and r <= k) / n,
        "mrr": sum(1.0 / r for r in ranks if r) / n,
    }


def gate_rates(in_scope: Sequence[float], out_of_scope: Sequence[float], threshold: float) -> tuple[float, float]:
    """(answer rate of in-scope, refusal rate of out-of-scope) when answering at ``score >= threshold``."""
    answered = sum(1 for c in in_scope if c >= threshold) / (len(in_scope) or 1)
    refused = sum(1 for c in out_of_scope if c < threshold) / (len(out_of_scope) or 1)
    return answered, refused


def balanced_threshold(in_scope: Sequence[float], out_of_scope: Sequence[float]) -> tuple[float, float, float]:
    """The threshold that maximises min(answer rate, refusal rate): (threshold, answer, refusal).

    Candidates lie midway between neighbouring observed confidences, so the threshold does
    not sit exactly on a measured score.
    """
    values = sorted(set(in_scope) | set(out_of_scope))
    if not values:
        return 0.0, 0.0, 0.0
    candidates = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]
    best = max(candidates, key=lambda t: (min(gate_rates(in_scope, out_of_scope, t)), sum(gate_rates(in_scope, out_of_scope, t))))
    return (round(best, 4), *gate_rates(in_scope, out_of_scope, best))


def threshold_curve(
    in_scope: Sequence[float], out_of_scope: Sequence[float], thresholds: Iterable[float] | None = None
) -> list[dict[str, float]]:
    """Answer and refusal rates over a range of thresholds (default 0.00–1.00 by 0.05)."""
    points = thresholds if thresholds is not None else [round(0.05 * i, 2) for i in range(21)]
    out = []
    for t in points:
        answered, refused = gate_rates(in_scope, out_of_scope, t)
        out.append({"threshold": t, "answer_rate": answered, "refusal_rate": refused})
    return out


@dataclass(slots=True)
class QuestionOutcome:
    question: str
    expected: str
    rank: int | None
    confidence: float
    top: str | None  # doc id ranked first
    resolved: bool = True


@dataclass(slots=True)
class EvaluationReport:
    k: int
    questions: int
    recall_at_1: float
    recall_at_k: float
    mrr: float
    threshold: float
    answer_rate: float  # in-scope questions whose confidence reaches the threshold
    unresolved: list[str] = field(default_factory=list)  # expected values that match no document
    out_of_scope: int = 0
    refusal_rate: float | None = None
    balanced: dict[str, float] | None = None
    curve: list[dict[str, float]] | None = None
    outcomes: list[QuestionOutcome] = field(default_factory=list)
    out_of_scope_confidences: list[float] = field(default_factory=list)

    def to_dict(self, details: bool = False) -> dict:
        data = {
            "k": self.k,
            "questions": self.questions,
            "recall@1": round(self.recall_at_1, 4),
            f"recall@{self.k}": round(self.recall_at_k, 4),
            "mrr": round(self.mrr, 4),
            "threshold": self.threshold,
            "answer_rate": round(self.answer_rate, 4),
            "unresolved_expected": self.unresolved,
        }
        if self.refusal_rate is not None:
            data.update(
                out_of_scope=self.out_of_scope,
                refusal_rate=round(self.refusal_rate, 4),
                balanced_threshold=self.balanced,
                curve=self.curve,
            )
        if details:
            data["per_question"] = [asdict(o) for o in self.outcomes]
        return data


def evaluate(
    retriever,
    questions: Sequence[LabelledQuestion],
    k: int = 5,
    out_of_scope: Sequence[str] = (),
    threshold: float | None = None,
    **search_options,
) -> EvaluationReport:
    """Run every question through ``retriever`` (a :class:`~core.retrieval.retriever.Retriever`)."""
    threshold = retriever.settings.threshold if threshold is None else threshold
    keys = document_keys(retriever.index.passages)
    texts = [q.question for q in questions] + list(out_of_scope)
    vectors = retriever.embedder.embed_queries(texts) if texts else []
    depth = max(CANDIDATE_PASSAGES, 10 * k)

    outcomes: list[QuestionOutcome] = []
    unresolved: list[str] = []
    for q, vector in zip(questions, vectors[: len(questions)]):
        result = retriever.retrieve(q.question, depth, query_vector=vector, **search_options)
        ranked = distinct_documents(result.hits)
        expected = resolve_expected(q.expected, keys)
        unresolved += [name for name in expected_names(q.expected, keys) if not keys.get(_norm(name))]
        outcomes.append(
            QuestionOutcome(q.question, q.expected, first_rank(ranked, expected), round(result.confidence, 4),
                            ranked[0] if ranked else None, bool(expected))
        )
    oos_conf = [
        round(retriever.retrieve(text, 1, query_vector=vector, **search_options).confidence, 4)
        for text, vector in zip(out_of_scope, vectors[len(questions):])
    ]
    metrics = ranking_metrics([o.rank for o in outcomes], k)
    in_conf = [o.confidence for o in outcomes]
    answer_rate, refusal_rate = gate_rates(in_conf, oos_conf, threshold)
    report = EvaluationReport(
        k=k, questions=len(outcomes), recall_at_1=metrics["recall@1"], recall_at_k=metrics[f"recall@{k}"],
        mrr=metrics["mrr"], threshold=threshold, answer_rate=answer_rate, unresolved=sorted(set(unresolved)),
        outcomes=outcomes, out_of_scope_confidences=oos_conf,
    )
    if out_of_scope:
        t, a, r = balanced_threshold(in_conf, oos_conf)
        report.out_of_scope = len(oos_conf)
        report.refusal_rate = refusal_rate
        report.balanced = {"threshold": t, "answer_rate": round(a, 4), "refusal_rate": round(r, 4)}
        report.curve = threshold_curve(in_conf, oos_conf)
    return report
