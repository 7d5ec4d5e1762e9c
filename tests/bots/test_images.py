"""Which pictures go beside an answer (bots/images.py), shared by the Slack and Telegram adapters."""

from __future__ import annotations

from dataclasses import replace

from bots.images import MAX_IMAGES, AnswerImage, answer_images
from core.messages import Answer, Citation

SHOT = "https://help.example/figures/a11y-font-size.png"


def cite(number: int, title: str, url: str | None = None) -> Citation:
    return Citation(passage_id=f"p{number}", title=title, source=f"{number}.html", snippet="…", score=0.8,
                    url=url, number=number)


ANSWER = Answer(text="Switch Large Text on [1].", citations=(cite(1, "Change text size on the screen"),),
                mode="extractive", images=(SHOT,))


def test_pictures_of_a_sourced_answer_with_the_cited_title():
    assert answer_images(ANSWER) == [AnswerImage(SHOT, "Picture from “Change text size on the screen”")]
    zh = replace(ANSWER, language="zh")
    assert answer_images(zh)[0].alt == "图片来自“Change text size on the screen”"


def test_several_cited_articles_get_a_general_description():
    two = replace(ANSWER, citations=(cite(1, "A"), cite(2, "B")))
    assert [i.alt for i in answer_images(two)] == ["Picture from the sources of this answer"]
    same = replace(ANSWER, citations=(cite(1, "A"), cite(2, "A")))  # two passages of one article
    assert answer_images(same)[0].alt == "Picture from “A”"


def test_no_pictures_beside_refusals_hand_offs_small_talk_or_unsourced_text():
    assert answer_images(replace(ANSWER, refused=True, mode="refusal")) == []
    assert answer_images(replace(ANSWER, handoff=True)) == []
    assert answer_images(replace(ANSWER, mode="smalltalk")) == []
    assert answer_images(replace(ANSWER, mode="unscoped")) == []
    assert answer_images(replace(ANSWER, silent=True, text="")) == []
    assert answer_images(replace(ANSWER, citations=())) == []


def test_only_fetchable_addresses_each_once_and_at_most_the_limit():
    urls = (SHOT, SHOT, "img/local.png", "ftp://h/x.png", "https://h/a b.png", "https://",
            *(f"https://h/{n}.png" for n in range(5)))
    chosen = [i.url for i in answer_images(replace(ANSWER, images=urls))]
    assert chosen == [SHOT, "https://h/0.png", "https://h/1.png"][:MAX_IMAGES]
