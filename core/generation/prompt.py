"""Grounded prompts: the retrieved passages numbered [1]..[k], the question, and the rules.

Layout matters for small models. Measured with the bundled SmolLM2-135M-Instruct
(see ``benchmarks/generation_quality.py``): passages in the *system* prompt make it
ignore them and invent specifics; passages in the *user* turn right before the question,
with a one-line instruction, keep it closest to the text. That is the default layout.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.generation.base import ChatMessage
from core.messages import HistoryTurn
from core.retrieval.passages import Passage

SYSTEM = (
    "You are a customer support assistant. Answer the customer's question using only the "
    "numbered help-centre passages. Be brief: one to three sentences. Cite the passage you "
    "used like [1]. If the passages do not contain the answer, say you don't know."
)
SYSTEM_ZH = "你是客服助手。只根据编号的帮助中心段落回答客户的问题，简短作答（一到三句），并用 [1] 这样的编号注明出处。段落里没有答案时，就说不知道。"

LAYOUTS = ("user", "system")


def format_passages(passages: Sequence[Passage], max_chars: int = 700) -> str:
    blocks = []
    for n, p in enumerate(passages, start=1):
        text = p.text if len(p.text) <= max_chars else p.text[:max_chars].rsplit(" ", 1)[0] + " …"
        heading = " > ".join((p.title, *p.headings))
        blocks.append(f"[{n}] {heading}\n{text}")
    return "\n\n".join(blocks)


def build_messages(
    question: str,
    passages: Sequence[Passage],
    history: Sequence[HistoryTurn] = (),
    language: str = "en",
    layout: str = "user",
) -> list[ChatMessage]:
    """Chat messages for a grounded answer; ``history`` is kept short by the caller."""
    system = SYSTEM_ZH if language == "zh" else SYSTEM
    context = format_passages(passages)
    messages: list[ChatMessage] = []
    if layout == "system":
        messages.append({"role": "system", "content": f"{system}\n\nPassages:\n{context}"})
    else:
        messages.append({"role": "system", "content": system})
    for turn in history:
        messages.append({"role": turn.role, "content": turn.text})
    if layout == "system":
        messages.append({"role": "user", "content": question})
    else:
        messages.append({"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {question}"})
    return messages
