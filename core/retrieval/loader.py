"""Read a knowledge-base folder into passages, reporting every file that cannot be used.

A bad file never aborts the build silently and never takes good files down with it:
it is named in :attr:`LoadResult.problems` and skipped.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import KnowledgeBaseError
from core.retrieval.chunking import chunk_text, parse_front_matter
from core.retrieval.markdown import (
    ATTACHMENT_SUFFIXES,
    MARKDOWN_SUFFIXES,
    Normalised,
    Vault,
    normalise_markdown,
    normalise_plain_text,
    take_images,
)
from core.retrieval.loaders import UnusableFile
from core.retrieval.loaders.notion import is_notion_export, load_notion_markdown
from core.retrieval.loaders.registry import DOCUMENT_SUFFIXES, read_documents
from core.retrieval.passages import Passage

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
CSV_SUFFIXES = {".csv"}
SUPPORTED = TEXT_SUFFIXES | CSV_SUFFIXES | DOCUMENT_SUFFIXES


@dataclass(slots=True)
class FileProblem:
    """A file that was skipped, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(slots=True)
class LoadResult:
    passages: list[Passage] = field(default_factory=list)
    files: int = 0
    problems: list[FileProblem] = field(default_factory=list)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _title_from(meta: dict[str, str], body: str, path: Path) -> str:
    if meta.get("title"):
        return meta["title"]
    for line in body.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


def _normalise(path: Path, body: str, vault: Vault | None) -> Normalised:
    """Markdown dialects → plain prose and table rows; ``.txt`` only loses comments."""
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return normalise_markdown(body, vault, source=path)
    return normalise_plain_text(body)


def _extra(meta: dict[str, str], images: list[str]) -> dict[str, str]:
    """Passage metadata worth keeping: front-matter tags/aliases and the chunk's image sources."""
    extra = {key: meta[key] for key in ("tags", "aliases", "page") if meta.get(key)}
    if images:
        extra["images"] = ", ".join(images)
    return extra


def _passages(
    doc: Normalised,
    rel: str,
    meta: dict[str, str],
    title: str,
    url: str | None,
    max_chars: int,
    overlap: int,
    doc_id: str | None = None,
    part: str | None = None,
) -> list[Passage]:
    """A normalised body chunked into passages; each passage keeps the images of its own chunk."""
    doc_id = doc_id or rel
    prefix = f"{doc_id}#{part}-" if part else f"{doc_id}#"
    passages: list[Passage] = []
    pending: list[str] = []  # images of chunks that held nothing else go to the next passage
    for chunk in chunk_text(doc.text, max_chars, overlap):
        text, images = take_images(chunk.text, doc.images)
        images = [*pending, *(i for i in images if i not in pending)]
        if not text.strip():
            pending = images
            continue
        pending = []
        # The H1 that repeats the title adds nothing to the heading path.
        headings = tuple(h for h in chunk.headings if h != title)
        passages.append(
            Passage(
                passage_id=f"{prefix}{len(passages)}",
                doc_id=doc_id,
                text=text,
                title=title,
                source=rel,
                headings=headings,
                url=url,
                extra=_extra(meta, images),
            )
        )
    if pending and passages:
        last = passages[-1]
        known = [i for i in last.extra.get("images", "").split(", ") if i]
        passages[-1] = replace(last, extra=_extra(meta, [*known, *(i for i in pending if i not in known)]))
    return passages


def load_text_file(
    path: Path,
    rel: str,
    max_chars: int,
    overlap: int,
    kb_dir: Path | None = None,
    vault: Vault | None = None,
) -> list[Passage]:
    """Markdown or plain text → passages with heading path, title and front-matter URL.

    The body is normalised first (:mod:`core.retrieval.markdown`) so passages hold what a
    reader sees, not markup. ``![[embeds]]`` are resolved in ``vault`` (or a vault over
    ``kb_dir``; without either, in the file's own folder). A page of a Notion export
    (``Title <id>.md``) loses the id in its title and its property lines.
    """
    meta, body = parse_front_matter(_read_text(path))
    if vault is None:
        vault = Vault(kb_dir if kb_dir is not None else path.parent)
    url = meta.get("url") or None
    if path.suffix.lower() in MARKDOWN_SUFFIXES and is_notion_export(path):
        (page,) = load_notion_markdown(path, body)
        body, url = page.body, url or page.url
        meta = {**page.extra, **meta, **({"title": page.title} if page.title and not meta.get("title") else {})}
    doc = _normalise(path, body, vault)
    title = _title_from(meta, doc.plain, path)
    passages = _passages(doc, rel, meta, title, url, max_chars, overlap)
    if not passages:
        raise ValueError("no text in the file")
    return passages


def load_document_file(path: Path, rel: str, max_chars: int, overlap: int) -> list[Passage]:
    """HTML, PDF, Word or a JSON article export → passages (see :mod:`core.retrieval.loaders`)."""
    passages: list[Passage] = []
    for document in read_documents(path):
        doc = normalise_markdown(document.body)
        title = document.title or _title_from({}, doc.plain, path)
        doc_id = f"{rel}#{document.article}" if document.article else rel
        passages += _passages(doc, rel, document.extra, title, document.url, max_chars, overlap,
                              doc_id=doc_id, part=document.part)
    if not passages:
        raise UnusableFile("no text in the file")
    return passages


def load_faq_csv(path: Path, rel: str) -> list[Passage]:
    """A CSV FAQ: one passage per row, ``question,answer`` required, ``id``/``url``/``intent`` optional.

    Rows that share an ``id`` are paraphrases of one entry: they keep that id as ``doc_id``
    and get unique passage ids ``<id>~<n>``.
    """
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    columns = {c.strip().lower(): c for c in (reader.fieldnames or []) if c}
    missing = [c for c in ("question", "answer") if c not in columns]
    if missing:
        found = ", ".join(columns) or "none"
        raise ValueError(f"CSV FAQ needs columns question,answer; missing {', '.join(missing)} (found: {found})")
    rows = list(reader)
    ids = [(row.get(columns["id"]) or "").strip() if "id" in columns else "" for row in rows]
    id_counts = Counter(ids)
    seen: dict[str, int] = {}
    passages: list[Passage] = []
    for n, (row, given_id) in enumerate(zip(rows, ids), start=1):
        question = (row.get(columns["question"]) or "").strip()
        answer = (row.get(columns["answer"]) or "").strip()
        if not question or not answer:
            log.warning("%s row %d: empty question or answer, skipped", rel, n)
            continue
        doc_id = given_id or f"{rel}#{n}"
        count = seen.get(doc_id, 0)
        seen[doc_id] = count + 1
        passage_id = f"{doc_id}~{count}" if given_id and id_counts[given_id] > 1 else doc_id
        extra = {}
        if "intent" in columns and (row.get(columns["intent"]) or "").strip():
            extra["intent"] = row[columns["intent"]].strip()
        url = (row.get(columns["url"]) or "").strip() if "url" in columns else ""
        passages.append(
            Passage(
                passage_id=passage_id,
                doc_id=doc_id,
                text=answer,
                title=question,
                source=rel,
                url=url or None,
                extra=extra,
            )
        )
    if not passages:
        raise ValueError("CSV FAQ has no rows with both a question and an answer")
    return passages


def _load_document_safely(path: Path, rel: str, max_chars: int, overlap: int) -> list[Passage]:
    """:func:`load_document_file`, with any parser failure turned into a reported problem.

    The PDF, Word and HTML parsers meet files from anywhere; an exception type they did not
    document (a damaged object stream, a zip bomb guard) must still skip the file, not stop
    the build of every other file.
    """
    try:
        return load_document_file(path, rel, max_chars, overlap)
    except (OSError, ValueError):
        raise
    except Exception as exc:  # noqa: BLE001 - third-party parsers on arbitrary files
        log.debug("%s: parser failure", rel, exc_info=True)
        raise UnusableFile(f"could not be read ({type(exc).__name__}: {exc}); check the file opens") from None


def load_knowledge_base(kb_dir: Path, max_chars: int = 900, overlap: int = 120) -> LoadResult:
    """Load every supported file under ``kb_dir``; problems are collected, not raised."""
    kb_dir = Path(kb_dir)
    if not kb_dir.exists():
        raise KnowledgeBaseError(
            f"Knowledge base folder {kb_dir} does not exist. Create it with Markdown, text, CSV FAQ, HTML, "
            "PDF or Word files, or set ASKDESK_KB_DIR to the right folder."
        )
    if not kb_dir.is_dir():
        raise KnowledgeBaseError(f"Knowledge base path {kb_dir} is a file, not a folder.")
    result = LoadResult()
    vault = Vault(kb_dir)
    for path in sorted(p for p in kb_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(kb_dir).as_posix()
        if any(part.startswith(".") for part in path.relative_to(kb_dir).parts):
            continue
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED:
            what = "an attachment, not indexed as text" if suffix in ATTACHMENT_SUFFIXES else "skipped"
            result.problems.append(FileProblem(rel, f"unsupported file type {suffix or '(none)'}; {what}"))
            continue
        result.files += 1
        try:
            if suffix in CSV_SUFFIXES:
                result.passages.extend(load_faq_csv(path, rel))
            elif suffix in DOCUMENT_SUFFIXES:
                result.passages.extend(_load_document_safely(path, rel, max_chars, overlap))
            else:
                result.passages.extend(load_text_file(path, rel, max_chars, overlap, vault=vault))
        except (OSError, ValueError, csv.Error) as exc:
            result.problems.append(FileProblem(rel, str(exc)))
    if not result.passages:
        detail = "; ".join(str(p) for p in result.problems) or "no Markdown, text, CSV, HTML, PDF, Word or JSON article files found"
        raise KnowledgeBaseError(f"Knowledge base {kb_dir} has nothing to index ({detail}).")
    return result
