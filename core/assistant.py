"""The answering pipeline: retrieve → gate → generate (streamed) → verify → answer.

Adapters call :meth:`Assistant.answer` (blocking, with an optional per-delta callback) or
:meth:`Assistant.stream` (async iterator of text deltas, then the final :class:`Answer`).
Model work never runs on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace

import numpy as np

from core.config import BUNDLED_GENERATOR, Settings
from core.conversation import off_task, offered_person, small_talk
from core.errors import InvalidMessageError
from core.generation.base import Generator
from core.generation.compose import Composer, Composition
from core.retrieval.units import passage_units
from core.generation.factory import create_generator
from core.generation.prompt import INSTRUCTIONS, build_messages, resolve_layout
from core.generation.verification import _EMAIL, _PHONE_NUMBER, GroundingChecker, Verdict, content_tokens
from core.generation.verified_stream import VerifiedDraft
from core.language import asks_for_person, detect_language, is_cjk, phrase
from core.memory import search_in_context, standalone_query
from core.messages import Answer, Citation, HistoryTurn, IncomingMessage
from core.retrieval.index import ScoredPassage
from core.retrieval.retriever import Retriever
from core.scopes import Scope, ScopeMap, load_scopes
from core.store import Store, open_store
from core.timeline import Timeline, recording, stage

log = logging.getLogger(__name__)

DeltaCallback = Callable[[str], None]
HISTORY_TURNS = 4  # earlier turns (2 exchanges) used to rewrite follow-up questions for search
RELATED_CANDIDATES = 6  # extra passages retrieved to find related articles and composed answers
MAX_RELATED = 3
SURE_DESPITE_NAMES = 0.8  # retrieval score that answers even a question naming things the KB lacks
LEXICAL_GATE_MARGIN = 0.1  # how far under the threshold the word-coverage gate may answer
CONTACT_QUERY = {
    "en": "Ways to reach customer support: phone number, email address, live chat hours",
    "zh": "如何联系客服 电话 邮箱",
}
CONTACT_WAY = re.compile(f"{_PHONE_NUMBER.pattern}|{_EMAIL.pattern}")
WARNING = re.compile(r"never ask|don't share|do not share|冒充|不要提供", re.I)
# A sentence that only sends the reader elsewhere: "… see "My package is lost, late or damaged."".
POINTER = re.compile(r"\bsee\s+[\"“'‘]?(?P<title>[^\"”’]{4,160}?)[\"”’]?[.)]?\s*$|(?:请)?参阅[“\"《]?(?P<zh>[^”\"》]{2,80})", re.I)


def _snippet(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def cited_images(hits: list[ScoredPassage], citations: tuple[Citation, ...], limit: int = 3) -> tuple[str, ...]:
    """The public pictures of the cited passages, in citation order (never of passages not cited)."""
    by_id = {h.passage.passage_id: h.passage for h in hits}
    images: list[str] = []
    for citation in citations:
        passage = by_id.get(citation.passage_id)
        for url in passage.images if passage is not None else ():
            if url not in images:
                images.append(url)
    return tuple(images[:limit])


def _citation(hit: ScoredPassage, number: int) -> Citation:
    p = hit.passage
    return Citation(
        passage_id=p.passage_id, title=p.title, source=p.source, snippet=_snippet(p.text),
        score=round(hit.score, 4), url=p.url, number=number,
    )


def cited_text(composition: Composition) -> tuple[str, tuple[Citation, ...]]:
    """The composed answer with each part's citation marker after it (adapters list two sections of
    one article under one title)."""
    parts = (composition, *composition.also)
    pieces = [f"{part.text}{'' if is_cjk(part.text) else ' '}[{n}]" for n, part in enumerate(parts, 1)]
    return ("" if is_cjk(composition.text) else " ").join(pieces), tuple(_citation(p.hit, n) for n, p in enumerate(parts, 1))


def article_evidence(hits: list[ScoredPassage]) -> str:
    """The found article's passages among the hits, against which the question's words are judged
    foreign or not: all of them, not only the best one ("mute" is in the volume article's section
    on applications, not in the one that scored best)."""
    return " ".join(f"{h.passage.title} {h.passage.text}" for h in hits if h.passage.doc_id == hits[0].passage.doc_id) if hits else ""


class Assistant:
    """Answers one :class:`IncomingMessage` at a time; safe to share across threads.

    Every message is first mapped to its knowledge-base scope (core.scopes); each scope has its
    own retriever (index, BM25, speller, contact details) and nothing read for one scope is
    used for another. The embedder and the generator are shared: they hold no knowledge.
    """

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever | None = None,
        generator: Generator | None = None,
        store: Store | None = None,
        remember: bool = True,
        scopes: ScopeMap | None = None,
    ):
        self.settings = settings
        self.scopes = scopes or load_scopes(settings)
        if retriever is not None and not self.scopes.implicit:
            raise ValueError("a ready retriever serves the single implicit scope only; with scopes, each has its own")
        self.retrievers: dict[str, Retriever] = {
            scope.name: retriever or Retriever(settings, scope.index_dir) for scope in self.scopes.config.scopes
        }
        # The default scope's retriever (or the first): benchmarks and single-KB callers use it.
        self.retriever = self.retrievers[self.scopes.config.default or self.scopes.config.scopes[0].name]
        # Conversation memory, profiles and turns for stats; ``remember=False`` keeps nothing.
        self.store = store if store is not None or not remember else open_store(settings)
        self._generator = generator
        self._generator_lock = threading.Lock()
        # Its own threads, as many as questions may be answered at once (and at least a full decoding
        # batch): the loop's default pool is narrower on a small machine and shared with other work.
        self._workers = ThreadPoolExecutor(
            max_workers=max(settings.max_concurrent_answers, settings.generator_max_batch), thread_name_prefix="askdesk-answer")
        # Contact details per scope by language, for the index they were found in (a rebuild finds them again).
        self._contacts: dict[str, tuple[object, dict[str, str | None]]] = {}
        self.checker = GroundingChecker(self.embed, INSTRUCTIONS)
        self.composer = Composer(self.embed)

    @property
    def generator(self) -> Generator:
        with self._generator_lock:
            if self._generator is None:
                self._generator = create_generator(self.settings)
            return self._generator

    def warm_up(self) -> None:
        """Load every scope's index, the embedder and the generator now (``serve`` start), not on the first question."""
        for retriever in self.retrievers.values():
            retriever.warm_up()
        self.generator.warm_up()

    # ---- scopes --------------------------------------------------------------------------
    def scope_for(self, message: IncomingMessage) -> Scope | None:
        """The knowledge-base scope that may answer ``message``; None for an unknown audience."""
        return self.scopes.config.resolve(message)

    def _scope(self, which: "str | IncomingMessage | Scope | None") -> Scope | None:
        """A scope by name, by message, or itself; None (no scope) only picks the implicit one."""
        if isinstance(which, Scope):
            return which
        if isinstance(which, IncomingMessage):
            return self.scope_for(which)
        if which is None:
            # Without a scopes file there is one knowledge base for all; with one, an unnamed caller
            # gets nothing rather than a guess that could be another audience's knowledge base.
            return self.scopes.config.scopes[0] if self.scopes.implicit else None
        return self.scopes.config.get(which)

    def ignores(self, message: IncomingMessage) -> bool:
        """True when nothing at all may be shown to this audience (``unknown: ignore``): adapters
        check it before any reaction, typing indicator or placeholder."""
        return self.scope_for(message) is None and self.scopes.config.unknown == "ignore"

    def unscoped(self, message: IncomingMessage) -> Answer:
        """What an audience without a scope gets: a polite refusal, or (``unknown: ignore``) nothing."""
        language = detect_language(message.text or "")
        log.info("unscoped %s message (team %s, chat type %s): %s", message.platform, message.team_id,
                 message.chat_type, self.scopes.config.unknown)
        if self.scopes.config.unknown == "ignore":
            return Answer(text="", mode="unscoped", silent=True, language=language)
        return Answer(text=phrase("unscoped", language), refused=True, mode="unscoped", language=language)

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

    # ---- models the checks share ---------------------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        """Sentence vectors: the index's stored statement vectors, else the embedder (which keeps
        what it embedded recently).

        The knowledge base's statements were embedded when the index was built; only other
        texts (the question, a generated sentence, statements of an older index) are embedded here.
        """
        found: dict[str, np.ndarray] = {}
        tables = [table for r in self.retrievers.values() if (table := r.stored_statements()) is not None]
        for text in dict.fromkeys(texts):
            vector = next((v for table in tables if (v := table.get(text)) is not None), None)
            if vector is not None:
                found[text] = vector
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = np.asarray(self.retriever.embedder.embed_passages(missing), dtype=np.float32)
            found.update(zip(missing, vectors))
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    def composes(self) -> bool:
        """Whether answers are composed from the sources instead of generated (see ``answer_mode``)."""
        if self.settings.answer_mode != "auto":
            return self.settings.answer_mode == "compose"
        s = self.settings
        return s.generator_backend == "transformers" and s.generator_model == BUNDLED_GENERATOR

    def check_draft(self, draft: str, question: str, passages: list) -> Verdict:
        """The grounding check exactly as the pipeline applies it to a finished draft."""
        return self.checker.check(draft, passages, question)

    def refusal(self, language: str, confidence: float = 0.0) -> Answer:
        text = f"{phrase('refusal', language)} {phrase('offer_person', language)}"
        return Answer(text=text, confidence=confidence, refused=True, mode="refusal", language=language)

    def contact_details(self, language: str = "en", scope: "str | IncomingMessage | Scope | None" = None) -> str | None:
        """The knowledge base's own ways to reach a person (phone, e-mail, hours), if it has them.

        Said when a hand-off is asked for where no support destination is configured: better
        than "no one is available", and taken from the sources like any answer. Found once per
        index and language: the core and the adapter both ask for it on every hand-off.
        ``scope`` (a name, the customer's message, or a :class:`Scope`) says whose knowledge base;
        with a scopes file and no scope given there are none, so no scope's details leak.
        """
        target = self._scope(scope)
        if target is None:
            return None
        retriever = self.retrievers[target.name]
        index = retriever.index
        cached = self._contacts.get(target.name)
        if cached is None or cached[0] is not index:
            cached = self._contacts[target.name] = (index, {})
        found = cached[1]
        if language not in found:
            found[language] = self._find_contact_details(language, retriever)
        return found[language]

    def _find_contact_details(self, language: str, retriever: Retriever) -> str | None:
        query = CONTACT_QUERY[language if language in CONTACT_QUERY else "en"]
        hits = [h for h in retriever.retrieve(query, self.settings.top_k + RELATED_CANDIDATES).hits
                if h.score >= self.settings.threshold]
        best: tuple[float, ScoredPassage, list[str]] | None = None
        for hit in hits:
            lines = [u.text for u in passage_units(hit.passage) if CONTACT_WAY.search(u.text) and not WARNING.search(u.text)]
            if not lines:
                continue
            # A passage that lists several ways (phone and e-mail) beats one that mentions an address in passing.
            kinds = {"email" if "@" in m.group(0) else "phone" for line in lines for m in CONTACT_WAY.finditer(line)}
            score = len(kinds) + hit.score + 0.1 * min(len(lines), 3)
            if best is None or score > best[0]:
                best = (score, hit, lines[:3])
        if best is None:
            return None
        _, hit, lines = best
        link = f"\n{hit.passage.url}" if hit.passage.url else ""
        return phrase("contact_intro", language) + "\n" + "\n".join(f"- {line}" for line in lines) + link

    def handoff_unavailable(self, language: str = "en", scope: "str | IncomingMessage | Scope | None" = None) -> str:
        """What to tell a customer who asked for a person where nobody can take the hand-off.

        Pass the customer's message (or ``Answer.scope``) as ``scope`` so the contact details come
        from their own knowledge base; see :meth:`contact_details`.
        """
        contact = self.contact_details(language, scope)
        return f"{phrase('handoff_unavailable', language)}\n\n{contact}" if contact else phrase("handoff_unavailable", language)

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

    def answer(self, message: IncomingMessage, on_delta: DeltaCallback | None = None, queued_s: float = 0.0) -> Answer:
        """Run the whole pipeline and record the turn.

        ``on_delta`` receives verified text only: the deltas joined are always a prefix of
        (usually all of) the final ``Answer.text``, so an adapter never shows text it must take back.
        ``queued_s``: how long the question waited for a worker (:meth:`stream`), reported as the
        ``queue`` stage of ``Answer.stages``.
        """
        started = time.perf_counter()
        timeline = Timeline()
        if queued_s:
            timeline.add("queue", queued_s)
        with recording(timeline):
            answer = self._answer(message, on_delta)
        if answer.mode == "unscoped":  # nothing of the pipeline ran
            return answer
        return replace(answer, stages=timeline.stages(queued_s + time.perf_counter() - started))

    def _answer(self, message: IncomingMessage, on_delta: DeltaCallback | None) -> Answer:
        started = time.perf_counter()
        scope = self.scope_for(message)  # before anything reads an index, the store or the text
        if scope is None:
            return self.unscoped(message)
        question = self.validate(message)
        language = self._language(message, question)
        shown: list[str] = []

        def emit(text: str) -> None:
            if text:
                shown.append(text)
                if on_delta is not None:
                    on_delta(text)

        answer = self._compose(message, question, language, emit, scope)
        if not answer.text.startswith("".join(shown)):  # a broken promise would show retracted text
            raise AssertionError("streamed text is not a prefix of the answer")
        answer = replace(answer, latency_s=round(time.perf_counter() - started, 3), scope=scope.name)
        with stage("record"):
            return self._record(message, question, answer)

    def _handoff(self, language: str, scope: Scope) -> Answer:
        """The user wants a person: the adapter escalates; ``contact`` is for where none can come."""
        return Answer(text=phrase("handoff", language), handoff=True, mode="refusal", language=language,
                      contact=self.contact_details(language, scope))

    def _small_talk(self, question: str, language: str, history: list[HistoryTurn], scope: Scope) -> Answer | None:
        kind = small_talk(question)
        if kind is None:
            return None
        if kind == "yes" and offered_person(history):
            return self._handoff(language, scope)
        return Answer(text=phrase(f"smalltalk_{kind}", language), mode="smalltalk", language=language)

    def _compose(self, message: IncomingMessage, question: str, language: str, emit: DeltaCallback,
                 scope: Scope) -> Answer:
        retriever = self.retrievers[scope.name]  # the only index this message may read
        history = self.history(message)
        chat = self._small_talk(question, language, history, scope)
        if chat is not None:
            if chat.mode == "smalltalk":
                emit(chat.text)  # a hand-off is rendered by the adapter, never streamed
            return chat
        if off_task(question):
            log.info("refused: a request no help centre answers")
            return self.refusal(language)
        if asks_for_person(question):
            return self._handoff(language, scope)
        # History only rewrites the search query; earlier answers never reach the prompt.
        with stage("retrieval"):
            retrieval = search_in_context(retriever.retrieve, question, history, self.settings.top_k + RELATED_CANDIDATES)
        hits, intent = retrieval.hits, retrieval.intent
        best = self.best_hit(hits)
        confidence = best.score if best is not None else 0.0
        if not self.passes_gate(hits, retrieval.dense_supported):
            log.info("refused: best score %.3f below threshold %.3f", confidence, self.settings.threshold)
            return replace(self.refusal(language, confidence), intent=intent)
        with stage("retrieval"):
            evidence = article_evidence(hits)
            foreign = retriever.foreign_names(question, evidence)
        if foreign and confidence < SURE_DESPITE_NAMES:
            log.info("refused: the question names %d thing(s) the knowledge base never mentions", len(foreign))
            return replace(self.refusal(language, confidence), intent=intent)
        query = standalone_query(question, history)
        top = hits[: self.settings.top_k]
        rejected: str | None = None
        if not self.composes():
            with stage("generation"):
                answer = self._generate(question, top, language, emit)
            if isinstance(answer, Answer):
                return replace(answer, confidence=confidence, related=self._related(hits, answer.citations), intent=intent,
                               images=cited_images(hits, answer.citations))
            rejected = answer
            log.info("generated draft rejected before anything was shown (%s); composing from the sources", rejected)
        with stage("composition"):
            # Typos fixed against the knowledge base's words, as retrieval saw them: "temporarly"
            # must match the sentence that says "temporarily".
            query = retriever.correct(query)
            composition = self._follow_pointer(query, self.composer.compose(query, hits), retriever)
        text, citations = cited_text(composition)
        emit(text)
        return Answer(
            text=text, citations=citations, confidence=confidence, mode="extractive", rejected_reason=rejected,
            language=language, related=self._related(hits, citations), intent=intent,
            images=cited_images(hits, citations),
        )

    def _follow_pointer(self, query: str, composition, retriever: Retriever):
        """A composed answer that only says "see <article>" is answered from that article instead.

        The article is found by its title (or, where a link's text is not the title, by searching
        for that text); the customer gets what it says, cited to it, not a pointer to go and read it.
        """
        pointer = next((m for u in composition.units if (m := POINTER.search(u.text))), None)
        if pointer is None or len(composition.units) > 2:
            return composition
        title = (pointer.group("title") or pointer.group("zh") or "").strip().rstrip(".?")
        passages = retriever.index.passages
        wanted = " ".join(content_tokens(title))
        doc = next((p.doc_id for p in passages if wanted and " ".join(content_tokens(p.title.rstrip("?."))).startswith(wanted)), None)
        if doc is None:
            found = [h for h in retriever.retrieve(title, 3).hits
                     if h.score >= self.settings.threshold and h.passage.doc_id != composition.hit.passage.doc_id]
            doc = found[0].passage.doc_id if found else None
        if doc is None or doc == composition.hit.passage.doc_id:
            return composition
        score = composition.hit.score
        target = [ScoredPassage(p, score) for p in passages if p.doc_id == doc]
        followed = self.composer.compose(query, target)
        return followed if followed.units else composition

    def best_hit(self, hits: list[ScoredPassage]) -> ScoredPassage | None:
        """The best match among the passages an answer may use (fusion may rank another first)."""
        return max(hits[: self.settings.top_k], key=lambda h: h.score, default=None)

    def passes_gate(self, hits: list[ScoredPassage], dense_supported: bool = True) -> bool:
        """Confident enough to answer: the threshold, or just under it with the words all there.

        Where the embedder does not cover the question's language, the score is word coverage
        alone, on another scale: it has its own threshold (``lexical_threshold``).
        """
        best = self.best_hit(hits)
        if best is None:
            return False
        if not dense_supported:
            return best.score >= self.settings.lexical_threshold
        if best.score >= self.settings.threshold:
            return True
        return best.score >= self.settings.threshold - LEXICAL_GATE_MARGIN and (best.lexical or 0.0) >= self.settings.lexical_gate

    def _generate(self, question: str, top: list[ScoredPassage], language: str, emit: DeltaCallback) -> Answer | str:
        """A generated answer streamed sentence by sentence as verified, or why none could be shown."""
        passages = [h.passage for h in top]
        messages = build_messages(question, passages, (), language, layout=resolve_layout(self.settings))
        if not self.settings.verify:
            parts = []
            for delta in self.generator.stream(messages, self.settings.max_new_tokens):
                parts.append(delta)
                emit(delta)
            text = "".join(parts)
            if not text.strip():
                return "the generator wrote nothing"
            return Answer(text=text, citations=tuple(_citation(h, n) for n, h in enumerate(top, 1)), language=language)
        draft = VerifiedDraft(self.checker, self.checker.evidence(passages, question), question)
        stream = self.generator.stream(messages, self.settings.max_new_tokens)
        try:
            for delta in stream:
                emit(draft.feed(delta))
                if draft.stopped:
                    break
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # frees the batch slot of a draft stopped early
        emit(draft.close())
        if not draft.text:
            return draft.reason or "nothing was supported"
        citations = tuple(_citation(top[n - 1], i) for i, n in enumerate(draft.cited, 1))
        return Answer(text=draft.text, citations=citations, language=language,
                      rejected_reason=draft.reason if draft.reason not in (None, "long enough") else None)

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

        submitted = time.perf_counter()

        def work() -> None:
            try:
                queued = time.perf_counter() - submitted
                put("answer", self.answer(message, on_delta=lambda d: put("delta", d), queued_s=queued))
            except BaseException as exc:  # noqa: BLE001 - re-raised on the loop
                put("error", exc)

        future = loop.run_in_executor(self._workers, work)
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

