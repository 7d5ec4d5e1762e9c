"""A knowledge base that grows: taught and agent-written Q&A, reviewed, then indexed.

Nothing learned is served until an admin approves it (``askdesk kb review``); approved
entries are appended to a learned-FAQ CSV inside the knowledge base and the index is
updated incrementally, so the next identical question is answered from them with a
citation like any other article.

Every entry belongs to the knowledge-base scope (core.scopes) of the conversation it came
from: an agent's reply to a Telegram customer's escalation, or an admin's ``/teach`` in an
internal Slack channel, is approved into that scope's knowledge base and index only, never
into another's. An entry without a scope (stored before scopes were recorded, or taught at
the command line without ``--scope``) belongs to the default scope; without a scopes file
there is one implicit scope, ``ASKDESK_KB_DIR`` → ``ASKDESK_INDEX_DIR``, as before.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from core.config import Settings
from core.retrieval.build import BuildReport, build_index
from core.scopes import Scope, ScopeMap, ScopesConfigError, load_scopes
from core.store import LearnedQA, Store

LEARNED_FAQ = "learned_faq.csv"
FIELDS = ["id", "question", "answer", "url"]


def target_scope(scopes: ScopeMap, name: str | None, qa_id: int | None = None) -> Scope:
    """The scope an entry learned in scope ``name`` is approved into (``None``: the default scope).

    Raises ValueError when there is no such scope (the scopes file changed since), or when the
    entry has none and the scopes file names no default: it is never guessed.
    """
    what = f"learned Q&A #{qa_id}" if qa_id is not None else "the learned Q&A"
    config = scopes.config
    if name is None:
        if scopes.implicit or config.default is not None:
            return config.get(config.default or config.scopes[0].name)
        raise ValueError(f"{what} has no scope and the scopes file sets no default; approve it with "
                         f"--scope NAME (one of: {', '.join(config.names)})")
    try:
        return config.get(name)
    except ScopesConfigError:
        raise ValueError(f"{what} was learned in scope {name!r}, which the scopes file does not have "
                         f"(the scopes are: {', '.join(config.names)}); approve it with --scope NAME or reject it") from None


def learned_faq_path(settings: Settings, scope: Scope | None = None) -> Path:
    """The learned FAQ of ``scope``'s knowledge base (default: ``ASKDESK_KB_DIR``'s)."""
    return Path(scope.kb_dir if scope is not None else settings.kb_dir) / LEARNED_FAQ


def teach(store: Store, question: str, answer: str, author: str | None, source: str = "teach",
          scope: str | None = None) -> LearnedQA:
    """Save a Q&A as pending review, in knowledge-base scope ``scope`` (None: the default scope)."""
    if not question.strip() or not answer.strip():
        raise ValueError("both a question and an answer are needed")
    return store.add_learned_qa(question, answer, source=source, author=author, scope=scope)


def _append(path: Path, entry: LearnedQA) -> None:
    new_file = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        writer.writerow({"id": f"learned-{entry.id}", "question": entry.question, "answer": entry.answer, "url": ""})


def rebuild_scope(settings: Settings, scope: Scope, scopes: ScopeMap | None = None) -> BuildReport:
    """Update ``scope``'s index, and those of scopes reading the same knowledge-base folder.

    Scopes that share a folder share its learned FAQ by configuration; rebuilding them too keeps
    their indexes from drifting apart. No other scope's index is touched.
    """
    scopes = scopes or load_scopes(settings)
    report = build_index(settings, scope.kb_dir, scope.index_dir)
    folder = Path(scope.kb_dir).absolute()
    for other in scopes.config.scopes:
        if other.name != scope.name and Path(other.kb_dir).absolute() == folder:
            build_index(settings, other.kb_dir, other.index_dir)
    return report


def approve(store: Store, settings: Settings, qa_id: int, rebuild: bool = True, *,
            scopes: ScopeMap | None = None, scope: str | None = None) -> BuildReport | None:
    """Approve a pending entry: write it into its scope's learned FAQ and update that scope's index.

    ``scope`` overrides the scope the entry was learned in (an admin's explicit choice at review).
    """
    entry = store.learned_qa(qa_id)
    if entry is None or entry.status != "pending":
        raise ValueError(f"no pending learned Q&A with id {qa_id}")
    scopes = scopes or load_scopes(settings)
    target = target_scope(scopes, scope or entry.scope, qa_id)
    _append(learned_faq_path(settings, target), entry)
    store.review_learned_qa(qa_id, "approved")
    return rebuild_scope(settings, target, scopes) if rebuild else None


def rebuild_all(settings: Settings, names: Iterable[str], scopes: ScopeMap | None = None) -> list[tuple[str, BuildReport]]:
    """Update the indexes of the named scopes (after approving several entries without rebuilding)."""
    scopes = scopes or load_scopes(settings)
    done: list[tuple[str, BuildReport]] = []
    for name in dict.fromkeys(names):
        done.append((name, rebuild_scope(settings, scopes.config.get(name), scopes)))
    return done


def reject(store: Store, qa_id: int) -> None:
    if not store.review_learned_qa(qa_id, "rejected"):
        raise ValueError(f"no pending learned Q&A with id {qa_id}")
