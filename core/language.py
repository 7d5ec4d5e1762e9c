"""Tell which language a user writes in, and the fixed phrases the core says in it.

Only the reply frame (refusals, labels, hand-off offers) is localised here; answers
themselves come from the knowledge base and the model.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LETTER = re.compile(r"[A-Za-z]")

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "refusal": "I don't know that from our help centre.",
        "offer_person": "Would you like me to connect you with a person from our support team?",
        "sources": "Sources",
        "quote_intro": "Here is what our help centre says",
        "empty": "Please type a question.",
        "too_long": "That message is too long for me ({length} characters; the limit is {limit}). Please shorten it.",
        "error": "Sorry, something went wrong while answering. Please try again in a moment.",
    },
    "zh": {
        "refusal": "抱歉，帮助中心里没有找到这个问题的答案。",
        "offer_person": "需要为您转接人工客服吗？",
        "sources": "来源",
        "quote_intro": "帮助中心的相关说明",
        "empty": "请输入您的问题。",
        "too_long": "消息太长了（{length} 个字符，上限 {limit}），请精简后再发。",
        "error": "抱歉，回答时出了点问题，请稍后再试。",
    },
}


def detect_language(text: str) -> str:
    """``zh`` when Chinese characters dominate the letters, else ``en``."""
    cjk = len(_CJK.findall(text))
    latin = len(_LETTER.findall(text))
    return "zh" if cjk and cjk * 3 >= latin else "en"


def phrase(key: str, language: str = "en", **values: object) -> str:
    table = PHRASES.get(language, PHRASES["en"])
    return table.get(key, PHRASES["en"][key]).format(**values)


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))
