"""Render the core's stream of text deltas as one message that is edited as text arrives.

Shared by the Slack (``chat.update``) and Telegram (``editMessageText``) adapters: each
passes its own ``show`` coroutine; this module only decides *when* to call it, so a
fast model never floods a platform with edits.

The rule every adapter keeps: a user never sees text that is later taken back. The core
streams only verified text (the deltas always add up to a prefix of the final answer), and
the helpers here let an adapter show a half-written answer so that what it shows is a prefix
of what the final message will show after the platform's own formatting:

- :func:`stable_prefix` holds back the end of a partial text whose rendering could still change
  (an unclosed ``**bold``, a half link, a ``#`` that may become a heading, an open code fence …);
- :func:`first_piece` cuts a partial text where the final message split can cut no earlier,
  so a preview never shows text that the final answer moves into a second message.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from bots.text import _cut
from core.messages import Answer

Show = Callable[[str], Awaitable[None]]
Render = Callable[[str], str]

#: Continuations that close (or change) whatever Markdown construct a partial text may have open:
#: emphasis, code, links, autolinks, headings, bullets and fences. A prefix whose rendering stays a
#: prefix of the rendering of every one of these (and of the text that really followed) is shown.
PROBES = (
    "a", " a", "\n", "\na", "\n```", "]", ")", ">", "|", "](https://x.example)", "(https://x.example)",
    "a](https://x.example)", "a)", "a>", "# a", "- a",
) + tuple(
    probe
    for m in ("*", "_", "~", "`")
    for probe in (m, m * 2, m * 3, f"a{m}", f"a{m * 2}", f" a{m}", f" a{m * 2}", f"{m}a{m}", f"{m}a{m * 2}",
                  f"{m * 2}a{m * 2}")
)
#: A link or autolink still being written: its text shows differently once it is closed.
_OPEN_LINK = re.compile(r"(?:\[[^\]\n]*(?:\]\([^)\s]*)?|<[^<>\s]*)$")
#: Cuts tried before giving up for this edit (bounds the work done on the event loop).
MAX_CUTS_TRIED = 24
#: Characters before which a cut is tried when the whole partial text is not yet stable.
_MARKUP = set("`[]()*_~<>#-+•|!&")


def _is_stable(text: str, rest: str, render: Render) -> bool:
    if _OPEN_LINK.search(text):
        return False
    shown = render(text)
    if not shown.strip():
        return True
    for probe in PROBES:
        if not render(text + probe).startswith(shown):
            return False
        if rest and not render(text + rest + probe).startswith(shown):
            return False
    return True


def stable_prefix(text: str, render: Render) -> str:
    """The longest prefix of ``text`` (tried at markup and line boundaries) whose rendering cannot change.

    ``render`` maps source text to what the user sees (the visible text, or the exact message text
    when that is what is compared). The result has no trailing whitespace, so the final answer,
    which the core strips, still extends it.
    """
    text = text.rstrip()
    candidates = [len(text)]
    line_start = text.rfind("\n") + 1
    for i in range(len(text) - 1, line_start - 1, -1):
        if text[i] in _MARKUP or (text[i].isspace() and i and text[i - 1] in _MARKUP):
            candidates.append(i)
    candidates.append(line_start)
    pos = line_start - 1
    while pos > 0:  # then whole lines, backwards (e.g. an open code fence)
        candidates.append(pos)
        pos = text.rfind("\n", 0, pos)
    seen: set[int] = set()
    for cut in candidates:
        head = text[:cut].rstrip()
        if len(head) in seen:
            continue
        seen.add(len(head))
        if len(seen) > MAX_CUTS_TRIED:
            break  # e.g. a long code block still open: show nothing new until it closes
        if _is_stable(head, text[len(head):], render):
            return head
    return ""


def first_piece(text: str, limit: int) -> str:
    """What of ``text`` (the start of a longer text) the final split's first piece surely contains.

    :func:`bots.text.split_text` cuts at the last paragraph, line, sentence or word boundary in the
    first ``limit`` characters. More text can only move that cut to the right, so cutting the partial
    text the same way now never shows text that the final split puts into a later message.
    """
    text = text.strip()
    if len(text) > limit:
        cut = _cut(text, limit)  # the window is already the final one: the same cut
    else:
        cut = min(_cut(text, limit), len(text))
    return text[:cut].rstrip()


async def relay_stream(
    events: AsyncIterator[str | Answer],
    show: Show,
    interval: float = 1.0,
    min_chars: int = 1,
    clock: Callable[[], float] = time.monotonic,
) -> Answer:
    """Call ``show(text_so_far)`` at most once per ``interval`` seconds; return the final answer.

    ``text_so_far`` is the concatenation of the core's deltas, which the core guarantees to be a
    prefix of the final answer's text; ``show`` renders it (holding back what could still change).
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
