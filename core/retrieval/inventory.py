"""What an index holds, for ``askdesk kb list``: sources, passage counts, last build, skipped files.

Read from the index folder alone (``manifest.json``, ``passages.jsonl``) and the crawl state
files beside it, without loading vectors or models, so it answers instantly even for a large
knowledge base and works while a bot serves the same index.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import IndexUnusableError

KINDS = {
    ".md": "Markdown", ".markdown": "Markdown", ".txt": "text", ".csv": "CSV FAQ", ".html": "HTML page",
    ".htm": "HTML page", ".pdf": "PDF", ".docx": "Word", ".json": "article export",
}


@dataclass(slots=True)
class SourceRow:
    source: str
    kind: str
    passages: int
    url: str | None = None


@dataclass(slots=True)
class CrawlRow:
    start_url: str
    pages: int
    crawled_at: str
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Inventory:
    index_dir: Path
    kb_dir: str
    built_at: str
    passages: int
    sources: list[SourceRow] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    crawls: list[CrawlRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["index_dir"] = str(self.index_dir)
        return data


def source_kind(source: str) -> str:
    """A file's kind as a person names it; Notion and crawled pages are told apart by their layout."""
    from core.retrieval.loaders.notion import NOTION_NAME

    path = Path(source)
    kind = KINDS.get(path.suffix.lower(), path.suffix or "file")
    if NOTION_NAME.match(path.stem):
        return f"Notion {kind}"
    if source.startswith("web/"):
        return "crawled page" if kind == "HTML page" else f"crawled {kind}"
    return kind


def read_inventory(index_dir: Path) -> Inventory:
    index_dir = Path(index_dir)
    manifest_path = index_dir / "manifest.json"
    if not manifest_path.exists():
        raise IndexUnusableError(f"No index at {index_dir}. Build it first: `askdesk index build`.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        counts: Counter[str] = Counter()
        urls: dict[str, str] = {}
        with open(index_dir / "passages.jsonl", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                passage = json.loads(line)
                counts[passage["source"]] += 1
                if passage.get("url") and passage["source"] not in urls:
                    urls[passage["source"]] = passage["url"]
    except (OSError, ValueError, KeyError) as exc:
        raise IndexUnusableError(f"The index at {index_dir} cannot be read ({exc}); rebuild it: `askdesk index build`.") from None
    inventory = Inventory(
        index_dir=index_dir, kb_dir=str(manifest.get("kb_dir", "")), built_at=str(manifest.get("built_at", "")),
        passages=int(manifest.get("passages", sum(counts.values()))),
        skipped=list(manifest.get("skipped") or []),
    )
    for source in sorted(counts):
        url = urls.get(source) if source.startswith("web/") or source.endswith((".json",)) else None
        inventory.sources.append(SourceRow(source, source_kind(source), counts[source], url))
    link = index_dir.absolute()
    for state_path in sorted(link.parent.glob(f"{link.name}.crawl-*.json")):
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        inventory.crawls.append(CrawlRow(str(state.get("start_url", "")), len(state.get("pages") or {}),
                                         str(state.get("crawled_at", "")), list(state.get("skipped") or [])))
    return inventory
