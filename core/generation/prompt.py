"""Grounded prompts: the retrieved passages, the question, and the rule to answer only from them.

Two layouts, both with the passages in the user turn before the question:

* ``numbered`` — passages labelled ``Passage [1] (title)`` … ``[k]`` and the model asked to cite
  them like ``[1]``. What capable instruct models follow best.
* ``plain`` — passages labelled ``Article: title``, no numbers, no citation request.

The bundled SmolLM2-135M-Instruct handles the numbered layout worst: it continues the numbered
list ("Passage [4] (…", "[2]: …") instead of answering. With the passages in the system prompt
it invents specifics ("1.5 %", order codes). Plain passages in the user turn pass verification
most often (docs/performance.md). So ``auto`` picks ``plain`` for the bundled model and
``numbered`` for any other. Either way the generator is never allowed to write the label words
(:data:`BANNED_WORDS`), and the answer's citations are decided by verification against the real
retrieved passages, numbered [1]..[k] in retrieval order.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.config import BUNDLED_GENERATOR, Settings
from core.generation.base import ChatMessage
from core.messages import HistoryTurn
from core.retrieval.passages import Passage

SYSTEM = "You are a helpful customer support assistant. If the passages do not contain the answer, say you don't know."
SYSTEM_ZH = "你是乐于助人的客服助手。段落里没有答案时，就说不知道。"

#: Labels of the passages in the two layouts.
PASSAGE_LABEL = "Passage"
ARTICLE_LABEL = "Article"
#: Words a generator must never produce: copying a label means copying the prompt instead of
#: answering (singular and plural tokenise differently, so both are listed).
QUESTION_LABEL = "Question"
BANNED_WORDS = (PASSAGE_LABEL, f"{PASSAGE_LABEL}s", ARTICLE_LABEL, f"{ARTICLE_LABEL}s", QUESTION_LABEL, f"{QUESTION_LABEL}s")
RULES = {
    ("numbered", "en"): "Using only the passages above, answer the question in one or two sentences and cite the passage number like [1].",
    ("numbered", "zh"): "只根据上面的段落，用一两句话回答问题，并用 [1] 这样的编号注明出处。",
    ("plain", "en"): "Using only the articles above, answer in one or two sentences.",
    ("plain", "zh"): "只根据上面的文章，用一两句话回答。",
}
#: Everything the model is told; an answer that echoes it is degenerate.
INSTRUCTIONS = " ".join((SYSTEM, *(rule for (_, lang), rule in RULES.items() if lang == "en")))
LAYOUTS = ("numbered", "plain")


def resolve_layout(settings: Settings) -> str:
    if settings.prompt_layout != "auto":
        return settings.prompt_layout
    bundled = settings.generator_backend == "transformers" and settings.generator_model == BUNDLED_GENERATOR
    return "plain" if bundled else "numbered"


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " …"


def format_passages(passages: Sequence[Passage], layout: str = "numbered", max_chars: int = 700) -> str:
    blocks = []
    for n, p in enumerate(passages, start=1):
        heading = " > ".join((p.title, *p.headings))
        label = f"{PASSAGE_LABEL} [{n}] ({heading})" if layout == "numbered" else f"{ARTICLE_LABEL}: {heading}"
        blocks.append(f"{label}:\n{_clip(p.text, max_chars)}" if layout == "numbered" else f"{label}\n{_clip(p.text, max_chars)}")
    return "\n\n".join(blocks)


def build_messages(
    question: str,
    passages: Sequence[Passage],
    history: Sequence[HistoryTurn] = (),
    language: str = "en",
    layout: str = "numbered",
) -> list[ChatMessage]:
    """Chat messages for a grounded answer; ``history`` (earlier turns) is kept short by the caller."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown prompt layout {layout!r}; choose from {LAYOUTS}")
    system = SYSTEM_ZH if language == "zh" else SYSTEM
    rule = RULES[(layout, "zh" if language == "zh" else "en")]
    context = format_passages(passages, layout)
    earlier = earlier_questions(history, language)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{context}\n\n{rule}\n{earlier}{QUESTION_LABEL}: {question}"},
    ]


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
