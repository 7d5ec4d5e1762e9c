"""``Answer.images``: the public pictures of the cited passages only (core.assistant.cited_images)."""

from __future__ import annotations

from core.assistant import cited_images
from core.messages import Citation
from core.retrieval.index import ScoredPassage
from core.retrieval.passages import Passage


def hit(pid: str, images: str) -> ScoredPassage:
    return ScoredPassage(Passage(pid, pid.split("#")[0], "text", pid, pid.split("#")[0], extra={"images": images}), 0.7)


def cite(pid: str, number: int) -> Citation:
    return Citation(passage_id=pid, title=pid, source=pid, snippet="", score=0.7, number=number)


def test_only_the_cited_passages_pictures_in_citation_order():
    hits = [hit("a.html#0", "https://h/a.png, img/local.png"), hit("b.html#0", "https://h/b.png"),
            hit("c.html#0", "https://h/c.png, https://h/a.png")]
    assert cited_images(hits, (cite("c.html#0", 1), cite("a.html#0", 2))) == ("https://h/c.png", "https://h/a.png")
    assert cited_images(hits, ()) == ()  # nothing cited (a refusal): no pictures, whatever was retrieved
    assert cited_images(hits, (cite("gone#0", 1),)) == ()
