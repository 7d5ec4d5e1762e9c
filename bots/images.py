"""Pictures beside an answer, for the adapters that show them (Slack image blocks, Telegram photos).

The core puts the public pictures of the passages an answer cites in ``Answer.images`` (never
those of passages it does not cite; see ``core.assistant.cited_images``). What every adapter
then decides the same way lives here, once:

* pictures go only beside an answer that stands on its sources — none beside a refusal, a
  hand-off, small talk, an unscoped or silent reply, or an answer without citations;
* only absolute ``http(s)`` addresses a platform can fetch, each once, at most
  :data:`MAX_IMAGES` (the core's own limit too);
* each picture gets a short description in the answer's language: the cited article's title
  when the answer cites one article, else "the sources" (Slack's ``alt_text``, Telegram's caption).

How a picture is sent, and what happens when the platform cannot fetch it, is the adapter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from core.language import phrase
from core.messages import Answer

MAX_IMAGES = 3
#: Slack's limit for an image block's ``image_url``; Telegram's for a URL is larger.
MAX_URL_CHARS = 3000
ALT_CHARS = 200  # Slack allows 2,000 for alt_text, Telegram 1,024 for a caption: a title fits either way
_ANSWER_MODES = ("generated", "extractive")


@dataclass(frozen=True, slots=True)
class AnswerImage:
    url: str
    alt: str


def _fetchable(url: str) -> bool:
    if len(url) > MAX_URL_CHARS or any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _clip(text: str, limit: int = ALT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def answer_images(answer: Answer, limit: int = MAX_IMAGES) -> list[AnswerImage]:
    """The pictures to show beside ``answer``, in the core's order (empty when none should be)."""
    if (answer.refused or answer.handoff or answer.silent or answer.mode not in _ANSWER_MODES
            or not answer.citations or not answer.text.strip()):
        return []
    labels = list(dict.fromkeys(c.label for c in answer.citations if c.label))
    alt = _clip(phrase("image_alt", answer.language, title=labels[0]) if len(labels) == 1
                else phrase("image_alt_sources", answer.language))
    urls = [u.strip() for u in answer.images]
    chosen = [u for n, u in enumerate(urls) if _fetchable(u) and u not in urls[:n]]
    return [AnswerImage(url, alt) for url in chosen[:limit]]


__all__ = ["MAX_IMAGES", "AnswerImage", "answer_images"]
