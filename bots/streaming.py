"""Render the core's stream of text deltas as one message that is edited as text arrives.

Shared by the Slack (``chat.update``) and Telegram (``editMessageText``) adapters: each
passes its own ``show`` coroutine; this module only decides *when* to call it, so a
fast model never floods a platform with edits.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

from core.messages import Answer

Show = Callable[[str], Awaitable[None]]


async def relay_stream(
    events: AsyncIterator[str | Answer],
    show: Show,
    interval: float = 1.0,
    min_chars: int = 1,
    clock: Callable[[], float] = time.monotonic,
) -> Answer:
    """Call ``show(text_so_far)`` at most once per ``interval`` seconds; return the final answer.

    The final rendering is the caller's job (it knows sources, buttons, splitting), so
    the last partial text is not forced out here.
    """
    text = ""
    shown = ""
    last = float("-inf")
    async for event in events:
        if isinstance(event, Answer):
            return event
        text += event
        now = clock()
        if now - last >= interval and len(text.strip()) >= min_chars and text != shown:
            await show(text)
            shown = text
            last = clock()
    raise RuntimeError("the answer stream ended without a final answer")
