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
from dataclasses import asdict, replace

import numpy as np

from core.config import Settings
from core.errors import InvalidMessageError
from core.generation.base import Generator
from core.generation.factory import create_generator
from core.generation.prompt import INSTRUCTIONS, build_messages, resolve_layout
from core.generation.verification import extractive_answer, supported_prefix
from core.language import asks_for_person, detect_language, phrase
from core.memory import is_follow_up, search_in_context
from core.messages import Answer, Citation, HistoryTurn, IncomingMessage
from core.retrieval.index import ScoredPassage
from core.retrieval.retriever import Retriever
from core.store import Store

log = logging.getLogger(__name__)

DeltaCallback = Callable[[str], None]
HISTORY_TURNS = 4  # earlier turns (2 exchanges) used for follow-up questions
PROMPT_HISTORY_TURNS = 2  # of those, carried into the prompt (a small model loses the passages otherwise)
RELATED_CANDIDATES = 6  # extra passages retrieved to find related articles
MAX_RELATED = 3
EXTRACTIVE_MARGIN = 0.1  # retrieval-score gap within which a passage may be quoted instead of the top one


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

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever | None = None,
        generator: Generator | None = None,
        store: Store | None = None,
        remember: bool = True,
    ):
        self.settings = settings
        self.retriever = retriever or Retriever(settings)
        # Conversation memory, profiles and turns for stats; ``remember=False`` keeps nothing.
        self.store = store if store is not None or not remember else Store(settings.db_path)
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
        return Answer(text=text, confidence=confidence, refused=True, mode="refusal", language=language)

    def _language(self, message: IncomingMessage, question: str) -> str:
        """The question's language; a profile's preference decides when the text says little."""
        detected = detect_language(question)
        if self.store is not None and message.user_id and len(question) < 12 and detected == "en":
            profile = self.store.profile(message.platform, message.user_id)
            if profile and profile.language:
                return profile.language
        return detected

    def history(self, message: IncomingMessage) -> list[HistoryTurn]:
        """Earlier turns: what the adapter passed (e.g. a Slack thread), else the stored conversation."""
        if message.history:
            return list(message.history)[-HISTORY_TURNS:]
        if self.store is None:
            return []
        conversation = self.store.conversation(message.platform, message.conversation_id, message.thread_id)
        turns: list[HistoryTurn] = []
        for turn in self.store.recent_turns(conversation, HISTORY_TURNS // 2):
            turns += [HistoryTurn("user", turn.question), HistoryTurn("assistant", turn.answer)]
        return turns

    def answer(self, message: IncomingMessage, on_delta: DeltaCallback | None = None) -> Answer:
        """Run the whole pipeline and record the turn; ``on_delta`` receives generated text as produced."""
        started = time.perf_counter()
        question = self.validate(message)
        language = self._language(message, question)
        answer = self._compose(message, question, language, on_delta)
        answer = replace(answer, latency_s=round(time.perf_counter() - started, 3))
        return self._record(message, question, answer)

    def _compose(self, message: IncomingMessage, question: str, language: str, on_delta: DeltaCallback | None) -> Answer:
        if asks_for_person(question):
            return Answer(text=phrase("handoff", language), handoff=True, mode="refusal", language=language)
        history = self.history(message)
        retrieval = search_in_context(self.retriever.retrieve, question, history, self.settings.top_k + RELATED_CANDIDATES)
        hits, intent = retrieval.hits, retrieval.intent
        confidence = hits[0].score if hits else 0.0
        if confidence < self.settings.threshold:
            log.info("refused: best score %.3f below threshold %.3f", confidence, self.settings.threshold)
            return replace(self.refusal(language, confidence), intent=intent)

        top = hits[: self.settings.top_k]
        passages = [h.passage for h in top]
        # Earlier questions reach the prompt only for a follow-up; otherwise they distract a small model.
        context = history[-PROMPT_HISTORY_TURNS:] if is_follow_up(question) else []
        messages = build_messages(question, passages, context, language, layout=resolve_layout(self.settings))
        parts: list[str] = []
        for delta in self.generator.stream(messages, self.settings.max_new_tokens):
            parts.append(delta)
            if on_delta is not None:
                on_delta(delta)
        text = "".join(parts).strip()

        verdict = None
        if self.settings.verify:
            text, verdict = supported_prefix(text, passages, question, INSTRUCTIONS)
        if verdict is None or verdict.ok:
            cited = verdict.cited if verdict else [1]
            citations = tuple(_citation(top[n - 1], n) for n in cited)
            return Answer(text=text, citations=citations, confidence=confidence, language=language,
                          related=self._related(hits, citations), intent=intent)

        log.info("generated answer rejected (%s); answering with a quote", verdict.reason)
        # Candidates: passages that retrieval scored almost as high as the best one.
        close = [h for h in hits if h.score >= confidence - EXTRACTIVE_MARGIN]
        chosen, quote = extractive_answer(
            question, [h.passage for h in close], self._similarity, retrieval_scores=[h.score for h in close]
        )
        best = close[chosen]
        citations = (_citation(best, 1),)
        return Answer(
            text=f"{phrase('quote_intro', language)} ({best.passage.title}): “{quote}” [1]",
            citations=citations,
            confidence=confidence,
            mode="extractive",
            rejected_reason=verdict.reason,
            language=language,
            related=self._related(hits, citations),
            intent=intent,
        )

    def _related(self, hits: list[ScoredPassage], citations: tuple[Citation, ...]) -> tuple[Citation, ...]:
        """Up to three other articles that match well enough on their own — never filler."""
        cited_docs = {h.passage.doc_id for h in hits if h.passage.passage_id in {c.passage_id for c in citations}}
        cited_urls = {c.url for c in citations if c.url}
        related: list[Citation] = []
        seen = set(cited_docs)
        for hit in hits:
            p = hit.passage
            key = p.url or p.doc_id
            if hit.score < self.settings.related_threshold or p.doc_id in seen or key in seen or p.url in cited_urls:
                continue
            seen |= {p.doc_id, key}
            related.append(_citation(hit, 0))
            if len(related) == MAX_RELATED:
                break
        return tuple(related)

    def _record(self, message: IncomingMessage, question: str, answer: Answer) -> Answer:
        """Store the turn and the asker's profile; the turn id lets adapters attach feedback buttons."""
        if self.store is None:
            return answer
        conversation = self.store.conversation(message.platform, message.conversation_id, message.thread_id)
        turn_id = self.store.record_turn(
            conversation, message.user_id, question, answer.text,
            [asdict(c) for c in answer.citations], answer.confidence, answer.refused, answer.mode,
            answer.language, answer.latency_s,
        )
        if message.user_id:
            self.store.touch_profile(message.platform, message.user_id, message.user_name, answer.language)
        return replace(answer, turn_id=turn_id)

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

