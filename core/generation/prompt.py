"""Grounded prompts: the retrieved passages numbered [1]..[k], the question, and the rules.

Layout matters for small models. Measured with the bundled SmolLM2-135M-Instruct on 20
sample questions (share of answers passing verification): passages in the *system*
prompt 7/20 (it invents specifics: "1.5%", order codes); passages in the user turn, then
the rule, then the question last 9/20 — and most of its failures were the model going on
with the list ("Passage [4] …") instead of answering, which the backend now prevents by
never generating the word that labels passages (:data:`PASSAGE_LABEL`).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.generation.base import ChatMessage
from core.messages import HistoryTurn
from core.retrieval.passages import Passage

SYSTEM = "You are a helpful customer support assistant. If the passages do not contain the answer, say you don't know."
SYSTEM_ZH = "你是乐于助人的客服助手。段落里没有答案时，就说不知道。"

LAYOUTS = ("user", "system")
#: Labels each passage in the prompt; generators are told never to produce it, so a small
#: model cannot drift into inventing "Passage [4]" instead of answering.
PASSAGE_LABEL = "Passage"
#: Words a generator must never produce (singular and plural tokenise differently).
BANNED_WORDS = (PASSAGE_LABEL, f"{PASSAGE_LABEL}s")
RULE = "Using only the passages above, answer the question in one or two sentences and cite the passage number like [1]."
RULE_ZH = "只根据上面的段落，用一两句话回答问题，并用 [1] 这样的编号注明出处。"
#: Everything the model is told; an answer that echoes it is degenerate.
INSTRUCTIONS = " ".join((SYSTEM, RULE))


def format_passages(passages: Sequence[Passage], max_chars: int = 700) -> str:
    blocks = []
    for n, p in enumerate(passages, start=1):
        text = p.text if len(p.text) <= max_chars else p.text[:max_chars].rsplit(" ", 1)[0] + " …"
        heading = " > ".join((p.title, *p.headings))
        blocks.append(f"{PASSAGE_LABEL} [{n}] ({heading}):\n{text}")
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
    earlier = earlier_questions(history, language)
    if layout == "system":
        messages.append({"role": "user", "content": f"{earlier}{question}"})
    else:
        rule = RULE_ZH if language == "zh" else RULE
        messages.append({"role": "user", "content": f"{context}\n\n{rule}\n{earlier}Question: {question}"})
    return messages


def earlier_questions(history: Sequence[HistoryTurn], language: str = "en") -> str:
    """The conversation so far as one line of the customer's earlier questions.

    Earlier *answers* are left out on purpose: given them as chat turns, the small bundled
    model repeats its previous answer instead of answering the new question.
    """
    asked = [t.text for t in history if t.role == "user"]
    if not asked:
        return ""
    label = "上一个问题" if language == "zh" else "Previous question"
    return f"{label}: " + " / ".join(asked) + "\n"
