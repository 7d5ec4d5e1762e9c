"""A scripted stand-in for a model: the real pipeline around it, text chosen by the test.

``ScriptedGenerator`` implements :class:`core.generation.base.Generator`: it yields the deltas it
was given (optionally pausing between them, so an adapter's paced edits happen) and records every
prompt it receives. Tests use it to drive the real :class:`core.assistant.Assistant` with a draft
of their choice — a supported answer, one that invents a number, one that is off topic.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator

from core.generation.base import ChatMessage


def split_deltas(text: str, size: int = 0) -> list[str]:
    """``text`` as a model might stream it: word by word (``size=0``), else ``size`` characters at a time."""
    if size > 0:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return re.findall(r"\S+\s*|\s+", text)


class ScriptedGenerator:
    """Yields a fixed script of deltas for every prompt; thread-safe, remembers the prompts."""

    name = "scripted"

    def __init__(self, deltas: str | Iterable[str], delay: float = 0.0) -> None:
        self.deltas = split_deltas(deltas) if isinstance(deltas, str) else list(deltas)
        self.delay = delay
        self.prompts: list[list[ChatMessage]] = []
        self.max_new_tokens: list[int] = []
        self.warmed = False
        self._lock = threading.Lock()

    @property
    def text(self) -> str:
        """The whole draft the script writes."""
        return "".join(self.deltas)

    def stream(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        with self._lock:
            self.prompts.append([dict(m) for m in messages])  # type: ignore[misc]
            self.max_new_tokens.append(max_new_tokens)
        for n, delta in enumerate(self.deltas):
            if n and self.delay:
                time.sleep(self.delay)
            yield delta

    def warm_up(self) -> None:
        self.warmed = True


# ---- drafts the adapters' streaming tests replay (questions on the sample knowledge base) --------
RETURN_QUESTION = "How long do I have to return an item?"
#: The first sentence is in the sample KB; the second invents a number.
DRAFT_INVENTED = ("Most items can be returned within 30 days of delivery if they're unused and in their original "
                  "packaging. You can also return them within 365 days for store credit.")
#: Nothing of it is in the sources.
DRAFT_UNSUPPORTED = "The answer to this puzzle is: 365 days."
#: A longer answer the sample KB supports sentence by sentence, with Markdown the adapters convert.
DRAFT_LONG = (
    "Most items can be returned within **30 days of delivery** for a refund to your original payment method. "
    "The 30 days start on the delivery date shown in your tracking information. "
    "You need to start your return within the window. "
    "Once you've started it, you have 14 days to drop off your package."
)
ZH_QUESTION = "退货期限是多久？"
DRAFT_ZH = "大多数商品可在**签收之日起 30 天内**退货，退款将退回您的原支付方式。电子产品的退货期限较短，为**签收之日起 15 天**。"


def generate_overrides() -> dict[str, object]:
    """Settings that make the core call the generator rather than compose from sources, where it can."""
    from core.config import Settings

    return {"answer_mode": "generate"} if "answer_mode" in Settings.model_fields else {}


def prefix_violations(texts: list[str], final: str) -> list[tuple[int, str]]:
    """``(index, text)`` of every shown text that is not the start of ``final``."""
    return [(n, t) for n, t in enumerate(texts) if not final.startswith(t)]


def answers_in_time(assistant, question: str, timeout: float = 60.0) -> bool:
    """Whether the core answers ``question`` at all within ``timeout`` s (checked in a daemon thread,
    so a core that never returns fails the test instead of hanging the test run)."""
    import threading

    from core.messages import IncomingMessage

    done = threading.Event()

    def work() -> None:
        try:
            assistant.answer(IncomingMessage(text=question, conversation_id="liveness"))
        finally:
            done.set()

    threading.Thread(target=work, daemon=True, name="liveness-check").start()
    return done.wait(timeout)


#: Markdown-rich text for the preview renderers: every prefix must render as the start of the final message.
MARKDOWN_RICH = (
    "## Returns\n\nMost items **can** be returned [1]. See [the page](https://x.example/a_b) & "
    "<https://y.example>.\n\n- one *item* here\n- two __items__ & <more> ~~old~~\n\n```py\nprint('a ** b')\n```\n"
    "Done `code` here_and_there *a*b. 大多数商品可在**签收之日起 30 天内**退货。"
)
