"""Refusal-threshold calibration on the sample knowledge base.

Scores every in-scope and out-of-scope sample question with the configured retriever and
prints, per threshold, how many in-scope questions would be answered and how many
out-of-scope ones refused. ``python -m benchmarks.calibrate``.
"""

from __future__ import annotations

from benchmarks.common import out_of_scope_questions, sample_questions, save, table
from core.config import get_settings
from core.retrieval.build import build_index
from core.retrieval.retriever import Retriever


def best_scores(retriever: Retriever, questions: list[str]) -> list[float]:
    return [retriever.search(q, 1)[0].score for q in questions]


def run() -> dict:
    settings = get_settings()
    build_index(settings)
    retriever = Retriever(settings)
    inside = best_scores(retriever, [q for q, _ in sample_questions()])
    outside = best_scores(retriever, out_of_scope_questions())
    rows = []
    for step in range(20, 62, 2):
        t = step / 100
        answered = sum(s >= t for s in inside) / len(inside)
        refused = sum(s < t for s in outside) / len(outside)
        rows.append([t, answered, refused, min(answered, refused)])
    best = max(rows, key=lambda r: (r[3], -abs(r[0] - settings.threshold)))
    table("Refusal threshold on the sample knowledge base", ["threshold", "in-scope answered", "out-of-scope refused", "worse of both"], rows)
    print(f"configured threshold {settings.threshold}; best balanced threshold {best[0]:.2f} "
          f"(answers {best[1]:.2f}, refuses {best[2]:.2f})")
    result = {"configured": settings.threshold, "best": best[0], "curve": rows,
              "in_scope_scores": inside, "out_of_scope_scores": outside}
    save("calibrate", result)
    return result


def main(argv: list[str] | None = None) -> int:
    run()
    return 0


if __name__ == "__main__":
    main()
