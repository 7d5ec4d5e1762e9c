"""Help-centre article exports as JSON: Zendesk Guide and Intercom Articles (and plain lists).

Zendesk's API gives ``{"articles": [{"id", "title", "body", "html_url", "draft", …}]}``,
Intercom's ``{"type": "list", "data": [{"id", "title", "body", "url", "state", …}]}``; an
export script may also write a bare list of such objects. Each article is one document
(its id keeps it apart from the others in the file); the article URL is its citation link and
the base for relative image sources. Drafts and unpublished articles are left out, as a
customer must not be answered from them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from core.retrieval.loaders import Document, UnusableFile
from core.retrieval.loaders.html import fragment_to_markdown

log = logging.getLogger(__name__)

JSON_SUFFIXES = (".json",)
_URL_KEYS = ("html_url", "url", "public_url")


def _items(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("articles", "data", "items", "results"):
            if isinstance(data.get(key), list):
                return data[key]
        if "title" in data and "body" in data:
            return [data]
    return []


def _published(item: dict[str, Any]) -> bool:
    if item.get("draft") is True:
        return False
    state = str(item.get("state") or item.get("status") or "published").lower()
    return state in ("published", "public", "live")


def load_articles_json(path: Path) -> list[Document]:
    """Every published article with a title and a body → a document."""
    raw = path.read_bytes()
    if not raw.strip():
        raise UnusableFile("empty file")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnusableFile(f"not valid JSON ({exc})") from None
    items = [i for i in _items(data) if isinstance(i, dict) and i.get("title") and i.get("body")]
    if not items:
        raise UnusableFile(
            "JSON is not an article export: expected a list of articles with title and body "
            "(Zendesk {\"articles\": […]}, Intercom {\"data\": […]})"
        )
    documents: list[Document] = []
    drafts = 0
    for n, item in enumerate(items, start=1):
        if not _published(item):
            drafts += 1
            continue
        url = next((str(item[k]) for k in _URL_KEYS if str(item.get(k) or "").startswith("http")), None)
        body = fragment_to_markdown(str(item["body"]), url)
        if not body.strip():
            continue
        extra = {}
        labels = item.get("label_names") or item.get("tags")
        if isinstance(labels, list) and labels:
            extra["tags"] = ", ".join(str(t) for t in labels)
        documents.append(Document(body=body, title=" ".join(str(item["title"]).split()), url=url,
                                  article=str(item.get("id") or n), extra=extra))
    if drafts:
        log.info("%s: %d draft/unpublished article(s) left out", path.name, drafts)
    if not documents:
        raise UnusableFile(f"no published article with text ({drafts} draft(s) left out)")
    return documents
