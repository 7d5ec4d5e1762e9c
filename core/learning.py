"""A knowledge base that grows: taught and agent-written Q&A, reviewed, then indexed.

Nothing learned is served until an admin approves it (``askdesk kb review``); approved
entries are appended to a learned-FAQ CSV inside the knowledge base and the index is
updated incrementally, so the next identical question is answered from them with a
citation like any other article.
"""

from __future__ import annotations

import csv
from pathlib import Path

from core.config import Settings
from core.retrieval.build import BuildReport, build_index
from core.store import LearnedQA, Store

LEARNED_FAQ = "learned_faq.csv"
FIELDS = ["id", "question", "answer", "url"]


def learned_faq_path(settings: Settings) -> Path:
    return Path(settings.kb_dir) / LEARNED_FAQ


def teach(store: Store, question: str, answer: str, author: str | None, source: str = "teach") -> LearnedQA:
    """Save a Q&A as pending review."""
    if not question.strip() or not answer.strip():
        raise ValueError("both a question and an answer are needed")
    return store.add_learned_qa(question, answer, source=source, author=author)


def _append(path: Path, entry: LearnedQA) -> None:
    new_file = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        writer.writerow({"id": f"learned-{entry.id}", "question": entry.question, "answer": entry.answer, "url": ""})


def approve(store: Store, settings: Settings, qa_id: int, rebuild: bool = True) -> BuildReport | None:
    """Approve a pending entry: write it into the learned FAQ and update the index."""
    entry = store.learned_qa(qa_id)
    if entry is None or entry.status != "pending":
        raise ValueError(f"no pending learned Q&A with id {qa_id}")
    _append(learned_faq_path(settings), entry)
    store.review_learned_qa(qa_id, "approved")
    return build_index(settings) if rebuild else None


def reject(store: Store, qa_id: int) -> None:
    if not store.review_learned_qa(qa_id, "rejected"):
        raise ValueError(f"no pending learned Q&A with id {qa_id}")
