"""Interactive terminal chat and one-shot questions, streaming answers as they are written."""

from __future__ import annotations

import getpass
import json
import logging
import sys
import uuid
from typing import TextIO

from bots.terminal.render import answer_text, format_answer, format_sources
from core.assistant import Assistant
from core.errors import InvalidMessageError
from core.messages import IncomingMessage

log = logging.getLogger(__name__)

BANNER = "askdesk — ask a question about our help centre. /new starts over; /quit (or Ctrl-D) ends."
QUIT_COMMANDS = {"/quit", "/exit", "quit", "exit"}
COMMAND_HELP = "Commands: /new (start a new conversation), /quit (end). Anything else is a question."


def ask_once(
    assistant: Assistant,
    question: str,
    as_json: bool = False,
    out: TextIO | None = None,
    conversation_id: str | None = None,
) -> int:
    """Answer one question; with ``conversation_id`` it continues that stored conversation."""
    out = out or sys.stdout
    message = IncomingMessage(
        text=question, platform="terminal", conversation_id=conversation_id or f"ask-{uuid.uuid4().hex}",
        user_id=local_user(), user_name=local_user(),
    )
    try:
        answer = assistant.answer(message)
    except InvalidMessageError as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}, ensure_ascii=False), file=out)
        else:
            print(exc, file=out)
        return 1
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2), file=out)
    elif not answer.silent:
        print(format_answer(answer), file=out)
    return 0


def _answer_streaming(assistant: Assistant, message: IncomingMessage, out: TextIO):
    """Print the core's deltas as they come, then the rest of the answer and its sources.

    The core streams only verified text, so what was printed is the start of ``answer.text``:
    only the part not printed yet follows, and nothing shown is ever taken back. Should the
    printed text not be the start of the answer (a core bug), it is not silently repeated or
    corrected in place: a new line carries the full answer and the log a warning.
    """
    streamed: list[str] = []

    def on_delta(delta: str) -> None:
        if not streamed:
            delta = delta.lstrip()  # the answer text starts with its first word
            if not delta:
                return
        streamed.append(delta)
        out.write(delta)
        out.flush()

    answer = assistant.answer(message, on_delta=on_delta)
    printed = "".join(streamed)
    text = answer_text(answer)
    if text.startswith(printed):
        out.write(text[len(printed):])
    elif text.startswith(printed.rstrip()):  # only trailing whitespace the final text lacks
        out.write(text[len(printed.rstrip()):])
    else:
        log.warning("terminal: the streamed text is not the start of the final answer (mode=%s); "
                    "printing the whole answer", answer.mode)
        out.write("\n" + text)
    out.write("\n")
    sources = format_sources(answer)
    if sources:
        out.write(sources + "\n")
    out.flush()
    return answer


def local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "local"


def chat(
    assistant: Assistant,
    inp: TextIO | None = None,
    out: TextIO | None = None,
    conversation_id: str | None = None,
    new: bool = False,
) -> int:
    """Read questions line by line until EOF or Ctrl-C.

    The conversation is stored, so a later ``askdesk chat`` continues it; ``new`` starts fresh.
    """
    inp, out = inp or sys.stdin, out or sys.stdout
    conversation_id = conversation_id or f"chat-{local_user()}"
    if new and assistant.store is not None:
        assistant.store.reset_conversation("terminal", conversation_id)
    print(BANNER, file=out)
    while True:
        try:
            out.write("\nyou> ")
            out.flush()
            line = inp.readline()
            if not line:
                out.write("\n")
                return 0
            question = line.strip()
            if not question:
                continue
            if question.lower() in QUIT_COMMANDS:
                return 0
            if question.startswith("/"):
                # A slash word is a command here, never a question for the knowledge base.
                if question.lower() == "/new":
                    if assistant.store is not None:
                        assistant.store.reset_conversation("terminal", conversation_id)
                    out.write("(new conversation)\n")
                else:
                    out.write(f"{COMMAND_HELP}\n")
                continue
            out.write("askdesk> ")
            out.flush()
            message = IncomingMessage(
                text=question, platform="terminal", conversation_id=conversation_id,
                user_id=local_user(), user_name=local_user(),
            )
            try:
                _answer_streaming(assistant, message, out)
            except InvalidMessageError as exc:
                out.write(f"{exc}\n")
        except KeyboardInterrupt:
            out.write("\n")
            return 0
