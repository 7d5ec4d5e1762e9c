"""The unit of retrieval: a passage of a knowledge-base article or one FAQ row."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Passage:
    """A chunk of the knowledge base with everything needed to cite it."""

    passage_id: str  # unique and stable across rebuilds: "<file>#<n>" or the FAQ id
    doc_id: str  # the article it belongs to (file path, or FAQ id); retrieval ranks distinct docs
    text: str  # what the generator reads and what snippets are cut from
    title: str
    source: str  # knowledge-base-relative file path
    headings: tuple[str, ...] = ()
    url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # e.g. {"intent": "refund"} from a CSV column

    @property
    def embed_text(self) -> str:
        """Text given to the embedder: title and heading path give short chunks their topic."""
        head = " > ".join(h for h in (self.title, *self.headings) if h)
        return f"{head}\n{self.text}" if head else self.text

    @property
    def images(self) -> tuple[str, ...]:
        """The passage's pictures that a chat platform can fetch: absolute http(s) URLs only.

        Relative sources (a Markdown file's ``img/shot.png``, a Notion or Confluence export's
        attachment folder) have no public address, so they stay metadata and are never sent.
        """
        sources = (s.strip() for s in self.extra.get("images", "").split(", "))
        return tuple(s for s in sources if s.startswith(("https://", "http://")))

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that is embedded changes; drives incremental rebuilds."""
        return hashlib.sha256(self.embed_text.encode("utf-8")).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["headings"] = list(self.headings)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Passage":
        return cls(
            passage_id=data["passage_id"],
            doc_id=data["doc_id"],
            text=data["text"],
            title=data["title"],
            source=data["source"],
            headings=tuple(data.get("headings") or ()),
            url=data.get("url"),
            extra=dict(data.get("extra") or {}),
        )
