"""Build or update the search index of a knowledge base: incremental and atomic.

Incremental: a passage whose embedded text did not change (content hash) keeps its
vector; only new or edited passages are embedded; deleted files simply drop out.

Every statement of the passages (sentence, list item, table row) is embedded too and stored
beside the passage vectors (:mod:`core.retrieval.statements`), so answering a question never
embeds knowledge-base text again; statements whose text did not change keep their vector.

The BM25 index and the intent classifier are rebuilt from the current passages every time
(cheap next to embedding; docs/retrieval.md) and written into the same
folder as the vectors, so the dense and lexical sides can never disagree.

Atomic: each build is written to a fresh sibling folder and ``index_dir`` (a symlink)
is switched to it with one ``os.replace``; a crash or Ctrl-C mid-build leaves the
previous index serving. Run as ``askdesk index build`` or ``python -m core.retrieval.build``.

With a scopes file (``ASKDESK_SCOPES_FILE``, core.scopes) the command builds every scope's
index from its own knowledge base (``--scope NAME`` builds one); without one, the single
``ASKDESK_KB_DIR`` → ``ASKDESK_INDEX_DIR`` as before.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.config import Settings
from core.devices import resolve_device
from core.errors import AskdeskError, IndexUnusableError
from core.retrieval.classifier import CLASSIFIER_VERSION, train_for_passages
from core.retrieval.embedder import embedder_for, embedding_identity
from core.retrieval.index import VectorIndex, index_bytes, index_config_from_settings
from core.retrieval.lexical import LEXICAL_VERSION, LexicalIndex, lexical_text
from core.retrieval.loader import FileProblem, load_knowledge_base
from core.retrieval.statements import StatementVectors
from core.scopes import load_scopes

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BuildReport:
    """What a build did; printed as the summary."""

    index_dir: Path
    files: int = 0
    passages: int = 0
    new: int = 0
    unchanged: int = 0
    removed: int = 0
    seconds: float = 0.0
    intents: int = 0  # labels the intent classifier was trained on (0: no classifier)
    up_to_date: bool = False
    problems: list[FileProblem] = field(default_factory=list)
    index_kind: str = ""  # flat, ivf or hnsw
    index_bytes: int = 0  # index.faiss + vectors.npy on disk
    statements: int = 0  # statement vectors stored
    statements_embedded: int = 0  # of those, embedded by this build (the others kept theirs)

    def summary(self) -> str:
        state = "already up to date" if self.up_to_date else "built"
        return (
            f"Index {state} at {self.index_dir}: {self.files} files, {self.passages} passages "
            f"({self.new} new, {self.unchanged} unchanged, {self.removed} removed)"
            + (f", intent classifier over {self.intents} intents" if self.intents else "")
            + (f", {self.statements} statements ({self.statements_embedded} embedded)" if self.statements else "")
            + (f", index {self.index_kind}, {self.index_bytes / 1e6:.1f} MB" if self.index_kind else "")
            + f" in {self.seconds:.1f}s"
        )


def _load_previous(index_dir: Path, model: str) -> VectorIndex | None:
    """The current index when it can seed an incremental build; else start from scratch."""
    if not (index_dir / "manifest.json").exists():
        return None
    try:
        return VectorIndex.load(index_dir, expected_model=model)
    except IndexUnusableError as exc:
        log.warning("previous index not reused: %s", exc)
        return None


def _load_previous_statements(index_dir: Path, previous: VectorIndex | None) -> StatementVectors | None:
    """The current index's statement vectors, when there are usable ones to keep."""
    if previous is None:
        return None
    try:
        return StatementVectors.load(index_dir, previous.dimension)
    except IndexUnusableError as exc:
        log.warning("previous statement vectors not reused: %s", exc)
        return None


def _recipe(settings: Settings) -> dict[str, object]:
    """Build choices besides the embeddings; a change to any of them forces a rebuild."""
    return {"lexical_version": LEXICAL_VERSION, "classifier_version": CLASSIFIER_VERSION,
            "classifier_setting": settings.classifier}


def _swap_in(new_dir: Path, index_dir: Path) -> None:
    """Point ``index_dir`` at ``new_dir`` atomically and delete the folder it replaced."""
    old_target: Path | None = None
    if index_dir.is_symlink():
        old_target = index_dir.parent / os.readlink(index_dir)
    elif index_dir.exists():
        # A plain folder (copied by hand, or an older layout): move it aside first.
        old_target = index_dir.with_name(f".{index_dir.name}-previous-{os.getpid()}")
        index_dir.rename(old_target)
    link_tmp = index_dir.with_name(f".{index_dir.name}-link-{os.getpid()}")
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    link_tmp.symlink_to(new_dir.name)
    os.replace(link_tmp, index_dir)
    if old_target is not None and old_target.resolve() != new_dir.resolve():
        shutil.rmtree(old_target, ignore_errors=True)


def _remove_stale_builds(index_dir: Path, keep: Path) -> None:
    """Folders of builds that were interrupted before their swap."""
    for sibling in index_dir.parent.glob(f".{index_dir.name}-*"):
        if sibling.is_dir() and not sibling.is_symlink() and sibling.resolve() != keep.resolve():
            shutil.rmtree(sibling, ignore_errors=True)


def build_index(
    settings: Settings,
    kb_dir: Path | None = None,
    index_dir: Path | None = None,
    progress: bool = False,
) -> BuildReport:
    """Bring the index at ``index_dir`` in line with the knowledge base at ``kb_dir``."""
    started = time.perf_counter()
    kb_dir = Path(kb_dir or settings.kb_dir)
    index_dir = Path(index_dir or settings.index_dir).absolute()
    model = embedding_identity(settings)
    loaded = load_knowledge_base(kb_dir, settings.chunk_chars, settings.chunk_overlap)
    for problem in loaded.problems:
        log.warning("skipped %s", problem)
    report = BuildReport(index_dir=index_dir, files=loaded.files, passages=len(loaded.passages), problems=loaded.problems)

    previous = _load_previous(index_dir, model)
    previous_statements = _load_previous_statements(index_dir, previous)
    statement_texts = StatementVectors.texts_of(loaded.passages)
    reusable = previous.hashes() if previous else {}
    current_hashes = [p.content_hash for p in loaded.passages]
    todo = [i for i, h in enumerate(current_hashes) if h not in reusable]
    report.new = len(todo)
    report.unchanged = len(loaded.passages) - len(todo)
    if previous is not None:
        kept = set(current_hashes)
        report.removed = sum(1 for p in previous.passages if p.content_hash not in kept)
        same_passages = [p.to_dict() for p in previous.passages] == [p.to_dict() for p in loaded.passages]
        same_recipe = all(previous.meta.get(key) == value for key, value in _recipe(settings).items())
        wanted = index_config_from_settings(settings, len(loaded.passages))
        same_index = all(previous.index_config.get(key) == value for key, value in wanted.items())
        skipped = [{"path": p.path, "reason": p.reason} for p in loaded.problems]
        same_skipped = (previous.meta.get("skipped") or []) == skipped  # `kb list` reports them from the manifest
        has_statements = previous_statements is not None and previous_statements.texts == statement_texts
        if not todo and same_passages and same_recipe and same_index and same_skipped and has_statements:
            report.up_to_date = True
            report.index_kind, report.index_bytes = previous.kind, index_bytes(index_dir)
            report.seconds = time.perf_counter() - started
            return report

    dimension = previous.dimension if previous else None
    new_vectors = np.zeros((0, dimension or 0), dtype=np.float32)

    def embed(texts: list[str]) -> np.ndarray:
        embedder = embedder_for(settings, resolve_device(settings.device))
        return embedder.embed_passages(texts, progress=progress and len(texts) > 64)

    if todo:
        new_vectors = embed([loaded.passages[i].embed_text for i in todo])
        dimension = new_vectors.shape[1]
    if dimension is None:  # an empty knowledge base and no previous index
        dimension = embedder_for(settings, resolve_device(settings.device)).dimension
    vectors = np.zeros((len(loaded.passages), dimension), dtype=np.float32)
    for row, i in enumerate(todo):
        vectors[i] = new_vectors[row]
    for i, h in enumerate(current_hashes):
        if h in reusable:
            vectors[i] = previous.vectors[reusable[h]]  # type: ignore[union-attr]

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    new_dir = index_dir.with_name(f".{index_dir.name}-{stamp}")
    meta = {
        "built_at": datetime.now(timezone.utc).isoformat(),
        "kb_dir": str(kb_dir.absolute()),
        "files": loaded.files,
        "skipped": [{"path": p.path, "reason": p.reason} for p in loaded.problems],  # for `askdesk kb list`
        **_recipe(settings),
    }
    statements, report.statements_embedded = StatementVectors.build(statement_texts, embed, dimension, previous_statements)
    report.statements = len(statements)
    lexical = LexicalIndex.build([lexical_text(p) for p in loaded.passages])
    classifier = train_for_passages(loaded.passages, vectors, settings.classifier)
    report.intents = len(classifier.labels) if classifier else 0
    meta["classifier"] = {"method": classifier.method, "intents": report.intents} if classifier else None
    try:
        new_dir.mkdir(parents=True)
        lexical.save(new_dir)
        statements.save(new_dir)
        if classifier is not None:
            classifier.save(new_dir)
        config = index_config_from_settings(settings, len(loaded.passages))
        built = VectorIndex(loaded.passages, vectors, model, meta, index_config=config)
        built.save(new_dir)  # writes the manifest last
        report.index_kind, report.index_bytes = built.kind, index_bytes(new_dir)
        _swap_in(new_dir, index_dir)
    except BaseException:
        shutil.rmtree(new_dir, ignore_errors=True)
        raise
    _remove_stale_builds(index_dir, keep=new_dir)
    report.seconds = time.perf_counter() - started
    return report


def build_scopes(settings: Settings, only: str | None = None, progress: bool = False) -> list[tuple[str, BuildReport | AskdeskError]]:
    """Build every scope's index (or only the scope named ``only``), each from its own KB.

    One scope's failure (a missing folder, no readable files) does not stop the others: its
    error is returned in its place, so the caller reports it and still exits non-zero.
    """
    scope_map = load_scopes(settings)
    scopes = [scope_map.config.get(only)] if only else scope_map.config.scopes
    results: list[tuple[str, BuildReport | AskdeskError]] = []
    for scope in scopes:
        try:
            results.append((scope.name, build_index(settings, scope.kb_dir, scope.index_dir, progress)))
        except AskdeskError as exc:
            log.error("scope %s not built: %s", scope.name, exc)
            results.append((scope.name, exc))
    return results


def add_build_arguments(parser: "argparse.ArgumentParser") -> None:
    parser.add_argument("kb_dir", nargs="?", type=Path, help="knowledge base folder (default: every scope's, else ASKDESK_KB_DIR)")
    parser.add_argument("--index", dest="index_dir", type=Path, help="index folder (default: every scope's, else ASKDESK_INDEX_DIR)")
    parser.add_argument("--scope", help="build only this scope of ASKDESK_SCOPES_FILE")
    parser.add_argument("--quiet", action="store_true", help="print only problems and the summary line")


def run_build(args: "argparse.Namespace", settings: Settings) -> int:
    """Build, print skipped files and the summary; shared by the CLI and this script.

    An explicit folder (``KB_DIR`` / ``--index``) builds just that; otherwise every scope.
    """
    scope = getattr(args, "scope", None)
    if args.kb_dir or args.index_dir:
        if scope:
            raise AskdeskError("--scope builds a scope's own folders; leave out KB_DIR and --index with it.")
        results: list[tuple[str | None, BuildReport | AskdeskError]] = [
            (None, build_index(settings, args.kb_dir, args.index_dir, progress=not args.quiet))]
    else:
        named = not load_scopes(settings).implicit
        results = [(name if named else None, r) for name, r in build_scopes(settings, scope, progress=not args.quiet)]
    failed = 0
    for name, report in results:
        prefix = f"scope {name}: " if name else ""
        if isinstance(report, AskdeskError):
            print(f"error: {prefix}{report}", file=sys.stderr)
            failed += 1
            continue
        for problem in report.problems:
            print(f"skipped {prefix}{problem}", file=sys.stderr)
        print(prefix + report.summary())
    if failed and len(results) == 1 and results[0][0] is None:
        raise results[0][1]  # type: ignore[misc]  - the single build: the usual one-line error
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """The rebuild script: ``python -m core.retrieval.build [KB_DIR] [--index DIR]``."""
    from core.config import get_settings
    from core.errors import AskdeskError

    parser = argparse.ArgumentParser(prog="python -m core.retrieval.build", description=__doc__.splitlines()[0])
    add_build_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_build(args, get_settings())
    except AskdeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
