"""The answering pipeline: retrieve → gate → generate (streamed) → verify → answer.

Adapters call :meth:`Assistant.answer` (blocking, with an optional per-delta callback) or
:meth:`Assistant.stream` (async iterator of text deltas, then the final :class:`Answer`).
Model work never runs on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable

import numpy as np

from core.config import Settings
from core.errors import InvalidMessageError
from core.generation.base import Generator
from core.generation.factory import create_generator
from core.generation.prompt import SYSTEM, build_messages
from core.generation.verification import extractive_answer, verify_answer
from core.language import detect_language, phrase
from core.messages import Answer, Citation, IncomingMessage
from core.retrieval.index import ScoredPassage
from core.retrieval.retriever import Retriever

log = logging.getLogger(__name__)

DeltaCallback = Callable[[str], None]
HISTORY_TURNS = 4  # earlier turns carried into the prompt


def _snippet(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _citation(hit: ScoredPassage, number: int) -> Citation:
    p = hit.passage
    return Citation(
        passage_id=p.passage_id, title=p.title, source=p.source, snippet=_snippet(p.text),
        score=round(hit.score, 4), url=p.url, number=number,
    )


class Assistant:
    """Answers one :class:`IncomingMessage` at a time; safe to share across threads."""

    def __init__(self, settings: Settings, retriever: Retriever | None = None, generator: Generator | None = None):
        self.settings = settings
        self.retriever = retriever or Retriever(settings)
        self._generator = generator
        self._generator_lock = threading.Lock()

    @property
    def generator(self) -> Generator:
        with self._generator_lock:
            if self._generator is None:
                self._generator = create_generator(self.settings)
            return self._generator

    def warm_up(self) -> None:
        """Load index, embedder and generator now (``serve`` start), not on the first question."""
        self.retriever.warm_up()
        self.generator.warm_up()

    # ---- pipeline ----------------------------------------------------------------------
    def validate(self, message: IncomingMessage) -> str:
        """The question text, or :class:`InvalidMessageError` with a reply the user can act on."""
        text = (message.text or "").strip()
        language = detect_language(text)
        if not text:
            raise InvalidMessageError(phrase("empty", language))
        if len(text) > self.settings.max_question_chars:
            raise InvalidMessageError(phrase("too_long", language, length=len(text), limit=self.settings.max_question_chars))
        return text

    def _similarity(self, question: str, sentences: list[str]) -> list[float]:
        embedder = self.retriever.embedder
        q = embedder.embed_queries([question])[0]
        return list(np.asarray(embedder.embed_passages(sentences)) @ q)

    def refusal(self, language: str, confidence: float = 0.0) -> Answer:
        text = f"{phrase('refusal', language)} {phrase('offer_person', language)}"
        return Answer(text=text, confidence=confidence, refused=True, mode="refusal")

    def answer(self, message: IncomingMessage, on_delta: DeltaCallback | None = None) -> Answer:
        """Run the whole pipeline; ``on_delta`` receives generated text as it is produced."""
        started = time.perf_counter()
        question = self.validate(message)
        language = detect_language(question)
        history = list(message.history)[-HISTORY_TURNS:]
        retrieval = self.retriever.retrieve(question, self.settings.top_k)
        hits, intent = retrieval.hits, retrieval.intent
        confidence = hits[0].score if hits else 0.0
        if confidence < self.settings.threshold:
            log.info("refused: best score %.3f below threshold %.3f", confidence, self.settings.threshold)
            return self._timed(self.refusal(language, confidence), started, intent)

        passages = [h.passage for h in hits]
        messages = build_messages(question, passages, history, language)
        parts: list[str] = []
        for delta in self.generator.stream(messages, self.settings.max_new_tokens):
            parts.append(delta)
            if on_delta is not None:
                on_delta(delta)
        text = "".join(parts).strip()

        verdict = verify_answer(text, passages, question, instructions=SYSTEM) if self.settings.verify else None
        if verdict is None or verdict.ok:
            cited = verdict.cited if verdict else [1]
            citations = tuple(_citation(hits[n - 1], n) for n in cited)
            return self._timed(Answer(text=text, citations=citations, confidence=confidence), started, intent)

        log.info("generated answer rejected (%s); answering with a quote", verdict.reason)
        best = hits[0]
        quote = extractive_answer(question, best.passage, self._similarity)
        intro = phrase("quote_intro", language)
        return self._timed(
            Answer(
                text=f"{intro} ({best.passage.title}): “{quote}” [1]",
                citations=(_citation(best, 1),),
                confidence=confidence,
                mode="extractive",
                rejected_reason=verdict.reason,
            ),
            started,
            intent,
        )

    @staticmethod
    def _timed(answer: Answer, started: float, intent: str | None = None) -> Answer:
        from dataclasses import replace

        return replace(answer, latency_s=round(time.perf_counter() - started, 3), intent=intent)

    async def stream(self, message: IncomingMessage) -> AsyncIterator[str | Answer]:
        """Yield text deltas as generated, then the final :class:`Answer` (always last).

        The pipeline runs in a worker thread; deltas cross to the event loop through a queue,
        so an adapter's loop keeps serving other events meanwhile.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

        def put(kind: str, value: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def work() -> None:
            try:
                put("answer", self.answer(message, on_delta=lambda d: put("delta", d)))
            except BaseException as exc:  # noqa: BLE001 - re-raised on the loop
                put("error", exc)

        future = loop.run_in_executor(None, work)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "delta":
                    yield value  # type: ignore[misc]
                elif kind == "answer":
                    yield value  # type: ignore[misc]
                    return
                else:
                    raise value  # type: ignore[misc]
        finally:
            await asyncio.shield(future)

