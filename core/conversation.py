"""Conversation sense: greetings, thanks and yes/no replies are not knowledge-base questions.

"hello" or "thanks!" searched in the help centre finds nothing and would be refused with
"I don't know that"; a "yes" to the bot's own offer of a person must start the hand-off.
These are recognised before retrieval, on the whole (short) message only, so a real
question that starts with "hi" or "thanks" still goes to the knowledge base.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from core.language import PHRASES
from core.messages import HistoryTurn

SmallTalk = Literal["greeting", "thanks", "yes", "no", "bye"]

_PATTERNS: list[tuple[SmallTalk, re.Pattern[str]]] = [
    ("greeting", re.compile(r"^(hi+|hello+|hey+|hiya|howdy|yo|good (morning|afternoon|evening|day)|greetings|hallo|hola|你好|您好|嗨|哈喽|早上好|下午好|晚上好)( there| all| everyone| team| askdesk)?$")),
    ("thanks", re.compile(r"^((many |great |big )?thanks?( you)?( so much| a lot| very much)?|thx|ty|cheers|thank u|appreciated?|perfect,? thanks?|great,? thanks?|ok,? thanks?|谢谢(你|您)?|多谢|感谢)( for (the|your) help)?$")),
    ("yes", re.compile(r"^(yes+|yeah|yep|yup|sure|ok(ay)?|please|yes,? please|please do|go ahead|do it|of course|absolutely|是|是的|好|好的|可以|需要|要)$")),
    ("no", re.compile(r"^(no+|nope|nah|no,? thanks?( you)?|not now|no need|不|不用|不用了|不需要|算了)$")),
    ("bye", re.compile(r"^(bye+|goodbye|good bye|see (you|ya)|that'?s all|再见|拜拜)$")),
]
_TRIM = re.compile(r"^[\s,.!?~:;。！？，、]+|[\s,.!?~:;。！？，、:)(😊🙂👍]+$")


def small_talk(text: str) -> SmallTalk | None:
    """What a short social message is, or ``None`` for anything that may be a question."""
    cleaned = " ".join(_TRIM.sub("", text.strip().lower()).split())
    if not cleaned or len(cleaned) > 40:
        return None
    for kind, pattern in _PATTERNS:
        if pattern.match(cleaned):
            return kind
    return None


_OFF_TASK = re.compile(
    r"^\s*(please\s+|can you\s+|could you\s+)?(translate|write( me)?|compose|draw|summari[sz]e|solve|calculate)\b"
    r"|\btell me (a|an|some|another) (joke|story|poem|riddle|fun fact)"
    r"|\b(who|when) (invented|discovered|painted|wrote|founded|won|was born)\b"
    r"|^\s*what(?:'s| is) \d+(\.\d+)?\s*(%|percent)? (of|plus|minus|times)\b"
    r"|翻译|写一首|写一篇|讲个笑话|讲一个笑话",
    re.I,
)


def off_task(text: str) -> bool:
    """A request no help centre answers: translate, write a poem, tell a joke, trivia, sums.

    Such a request shares words with some article ("translate *keyboard*", "a joke about
    *printers*") and would otherwise be answered from it.
    """
    return bool(_OFF_TASK.search(text))


def offered_person(history: Sequence[HistoryTurn]) -> bool:
    """Whether the bot's last message offered to connect the user with a person."""
    last = next((t.text for t in reversed(history) if t.role == "assistant"), None)
    if not last:
        return False
    offers = [table[key] for table in PHRASES.values() for key in ("offer_person", "feedback_sorry")]
    return any(offer in last for offer in offers)
