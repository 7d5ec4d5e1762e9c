"""End to end under concurrency: n different questions at once through the real bot, against the
same questions asked one after another.

``askdesk serve slack --http`` or ``askdesk serve telegram`` runs as its own process with default
settings (only paths set) against the fake platform of ``tests/fakes`` on loopback — the same
fakes the tests use, driven here by the benchmark process as Slack's and Telegram's data
centres would. Each question goes to its own channel or chat from its own user, so neither
conversation history nor the per-user limits couple them.

1. **Alone**: every question sent on its own, the next only once the previous one is answered;
   ``one after another`` is the sum of those times.
2. **Together**: the same n questions sent within a few milliseconds; ``wall`` is from the first
   send to the last final answer.

Each phase runs on a freshly started bot (warmed with one out-of-scope question, which loads the
index and models but no passage), so neither phase profits from the other's caches.

``speedup = one after another / wall``. Every answer given together is compared with the one the
same question got alone (``same answers``). Slack's acks (event → HTTP 200, what its 3-second limit
applies to) are timed in the together phase, while the other questions are being answered.

    python -m benchmarks.concurrency                       # both adapters, 8 and 16 questions
    python -m benchmarks.concurrency --adapter slack --n 8
    python -m benchmarks.concurrency --answer-mode generate  # answers written by the generator

Default settings compose answers from the sources (``ASKDESK_ANSWER_MODE=auto`` with the bundled
model); ``--answer-mode generate`` makes the generator write them (checked sentence by sentence),
which is where the batch scheduler has to reach users.

Prints a table and writes ``benchmarks/results/concurrency.json`` (``concurrency-generate.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.bot_process import bot_env, free_port, sample_index, start_bot, stop_bot
from benchmarks.common import out_of_scope_questions, percentile, sample_questions, save, scrape, wait_ready
from core.timeline import STAGES

START_TIMEOUT_S = 300.0
ANSWER_TIMEOUT_S = 300.0


@dataclass
class Asked:
    """One question's trip: when it was sent, acknowledged and finally answered, and with what."""

    question: str
    sent: float
    acked: float | None = None
    answered: float | None = None
    text: str = ""

    @property
    def seconds(self) -> float:
        return (self.answered or float("nan")) - self.sent


@dataclass
class Phase:
    asked: list[Asked] = field(default_factory=list)
    # Mean seconds per question in each pipeline stage, and in the whole answer (the bot's /metrics).
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return max(a.answered or float("nan") for a in self.asked) - min(a.sent for a in self.asked)


class Platform:
    """What the benchmark needs of a fake platform: start the bot, ask, and see the final answer."""

    name: str
    settings: dict[str, str]  # extra ASKDESK_* settings of the bot process
    metrics_url: str  # the bot's /metrics
    proc: Any  # the bot's process, once started
    fake: Any  # the fake platform API, once started

    async def start(self, workdir: Path, index_dir: Path, kb_dir: Path, session: aiohttp.ClientSession) -> None:
        raise NotImplementedError

    async def ask(self, number: int, question: str, session: aiohttp.ClientSession) -> Asked:
        raise NotImplementedError

    def answered(self, number: int) -> tuple[float, str] | None:
        """(when, final text) once question ``number`` has its final answer, else None."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop the bot (SIGTERM, as a deploy does), then its fake platform."""
        await asyncio.to_thread(stop_bot, self.proc)
        await self.fake.close()


class SlackPlatform(Platform):
    """Signed ``app_mention`` events over HTTP; an answer is final when the bot removes its 👀 reaction."""

    name = "slack"

    async def start(self, workdir: Path, index_dir: Path, kb_dir: Path, session: aiohttp.ClientSession) -> None:
        from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack

        self.fake = await FakeSlack().start()
        port = free_port()
        env = bot_env(workdir, index_dir, kb_dir, {
            "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_BASE_URL": self.fake.api_url,
            **self.settings,
        })
        self.log = workdir / "slack.log"
        self.proc = start_bot(["serve", "slack", "--http", "--host", "127.0.0.1", "--port", str(port)], env, self.log)
        self.url = f"http://127.0.0.1:{port}/slack/events"
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self.secret = SIGNING_SECRET
        await wait_ready(session, f"http://127.0.0.1:{port}/readyz", self.proc, self.log, timeout_s=START_TIMEOUT_S,
                         what="slack bot", poll_s=0.2)

    @staticmethod
    def _where(number: int) -> tuple[str, str]:
        return f"CB{number:04d}", f"{1_800_000_000 + number}.000100"

    async def ask(self, number: int, question: str, session: aiohttp.ClientSession) -> Asked:
        from tests.fakes.slack_api import mention

        channel, ts = self._where(number)
        asked = Asked(question, time.monotonic())
        await self.post_event(mention(question, ts=ts, channel=channel, user=f"UB{number:04d}"), session)
        asked.acked = time.monotonic()
        return asked

    async def post_event(self, event: dict[str, Any], session: aiohttp.ClientSession) -> None:
        """Deliver ``event`` as Slack does (signed, in an event_callback); returns once it is acknowledged."""
        from tests.fakes.slack_api import event_callback, sign

        body = json.dumps(event_callback(event))
        headers = {"Content-Type": "application/json", **sign(self.secret, body)}
        async with session.post(self.url, data=body.encode(), headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"Slack event not acknowledged: HTTP {response.status}")

    def answered(self, number: int) -> tuple[float, str] | None:
        channel, ts = self._where(number)
        done = [c for c in self.fake.calls_to("reactions.remove") if c.args.get("channel") == channel
                and c.args.get("timestamp") == ts]
        if not done:
            return None
        replies = [m for (ch, _), m in sorted(self.fake.messages.items()) if ch == channel and m.get("thread_ts") == ts]
        return done[0].at, "\n".join(str(m.get("text", "")) for m in replies)


class TelegramPlatform(Platform):
    """Private messages through long polling; an answer is final when its message gets its buttons."""

    name = "telegram"

    async def start(self, workdir: Path, index_dir: Path, kb_dir: Path, session: aiohttp.ClientSession) -> None:
        from tests.fakes.telegram_api import TOKEN, FakeTelegramAPI

        self.fake = await FakeTelegramAPI().start()
        ops_port = free_port()
        env = bot_env(workdir, index_dir, kb_dir, {
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": self.fake.root_url,
            "ASKDESK_OPS_HOST": "127.0.0.1", "ASKDESK_OPS_PORT": str(ops_port), **self.settings,
        })
        self.log = workdir / "telegram.log"
        self.proc = start_bot(["serve", "telegram"], env, self.log)
        self.metrics_url = f"http://127.0.0.1:{ops_port}/metrics"
        await wait_ready(session, f"http://127.0.0.1:{ops_port}/readyz", self.proc, self.log, timeout_s=START_TIMEOUT_S,
                         what="telegram bot", poll_s=0.2)

    async def ask(self, number: int, question: str, session: aiohttp.ClientSession) -> Asked:
        asked = Asked(question, time.monotonic())
        await self.fake.enqueue(self.fake.message_update(question, chat_id=50_000 + number, user_id=50_000 + number))
        return asked

    def answered(self, number: int) -> tuple[float, str] | None:
        chat = 50_000 + number
        final = [c for c in self.fake.sent_to(chat) if c.params.get("reply_markup")]
        return (final[0].at, self.fake.final_text(chat)) if final else None


async def _time_sums(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Seconds the bot has spent so far in each pipeline stage, and in answers (``answer``), summed."""
    sums: dict[str, float] = {}
    for sample in await scrape(session, url):
        if sample.name == "askdesk_answer_stage_seconds_sum":
            sums[sample.labels["stage"]] = sample.value
        elif sample.name == "askdesk_answer_seconds_sum":
            sums["answer"] = sample.value
        elif sample.name == "askdesk_generation_seconds_total":  # the scheduler's share of generation
            sums[f"{sample.labels['phase']}_read" if sample.labels["phase"] == "prompt" else "decoding"] = sample.value
    return sums


async def _until_answered(platform: Platform, numbers: list[int], asked: list[Asked]) -> None:
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        results = [platform.answered(n) for n in numbers]
        if all(results):
            for item, (at, text) in zip(asked, results):  # type: ignore[misc]
                item.answered, item.text = at, text
            return
        if time.monotonic() > deadline:
            missing = [n for n, r in zip(numbers, results) if r is None]
            raise RuntimeError(f"{platform.name}: questions {missing} not answered in {ANSWER_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.005)


async def _phase(platform: Platform, session: aiohttp.ClientSession, numbered: list[tuple[int, str]],
                 together: bool) -> Phase:
    phase = Phase()
    if together:
        phase.asked = list(await asyncio.gather(*(platform.ask(n, q, session) for n, q in numbered)))
        await _until_answered(platform, [n for n, _ in numbered], phase.asked)
        return phase
    for n, q in numbered:
        asked = await platform.ask(n, q, session)
        await _until_answered(platform, [n], [asked])
        phase.asked.append(asked)
    return phase


def _summary(alone: Phase, together: Phase, platform: str) -> dict[str, Any]:
    one_by_one = sum(a.seconds for a in alone.asked)
    changed = [{"question": a.question, "alone": a.text, "together": t.text}
               for a, t in zip(alone.asked, together.asked) if a.text != t.text]
    acks = [(t.acked - t.sent) * 1000 for t in together.asked if t.acked is not None]
    seconds = [t.seconds for t in together.asked]
    return {
        "adapter": platform, "n": len(together.asked),
        "alone_s": {"mean": round(one_by_one / len(alone.asked), 3), "max": round(max(a.seconds for a in alone.asked), 3)},
        "one_after_another_s": round(one_by_one, 2), "together_wall_s": round(together.wall, 2),
        "speedup": round(one_by_one / together.wall, 2),
        "together_answer_s": {"p50": round(percentile(seconds, 50), 2), "max": round(max(seconds), 2)},
        "ack_ms": {"p50": round(percentile(acks, 50), 1), "p99": round(percentile(acks, 99), 1)} if acks else None,
        "same_answers": len(together.asked) - len(changed), "changed": changed,
        "stages_s": {"alone": _breakdown(alone), "together": _breakdown(together)},
    }


def _breakdown(phase: Phase) -> dict[str, float]:
    """Mean seconds per question: end to end, each pipeline stage, and outside the core (the adapter,
    the platform's API calls, the event's way in): end to end minus the answer's own time."""
    end_to_end = sum(a.seconds for a in phase.asked) / len(phase.asked)
    stages = {name: phase.stages.get(name, 0.0) for name in (*STAGES, "prompt_read", "decoding")}
    return {"end_to_end": round(end_to_end, 4), **stages,
            "outside_core": round(max(0.0, end_to_end - phase.stages.get("answer", 0.0)), 4)}


@asynccontextmanager
async def fresh_bot(make: type[Platform], workdir: Path, settings: dict[str, str], tag: str,
                    warm_number: int) -> AsyncIterator[tuple[Platform, aiohttp.ClientSession]]:
    """A freshly started bot with its own database (in ``workdir/phase-TAG``), warmed and ready, and
    a session to talk to it; stopped on the way out. Question ``warm_number`` is the warm-up's."""
    index_dir, kb_dir = sample_index(workdir)
    phase_dir = workdir / f"phase-{tag}"
    phase_dir.mkdir()
    platform = make()
    platform.settings = settings
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await platform.start(phase_dir, index_dir, kb_dir, session)
        try:
            # Loads the index and the models; refused, so it warms no passage's statements.
            await _phase(platform, session, [(warm_number, out_of_scope_questions()[0])], False)
            yield platform, session
        finally:
            await platform.stop()


async def _fresh_phase(make: type[Platform], workdir: Path, numbered: list[tuple[int, str]],
                       together: bool, settings: dict[str, str]) -> Phase:
    """One phase on a freshly started bot with its own database, so no phase inherits another's caches."""
    async with fresh_bot(make, workdir, settings, str(numbered[0][0]),
                         9_000 + len(numbered) + together) as (platform, session):
        before = await _time_sums(session, platform.metrics_url)
        phase = await _phase(platform, session, numbered, together)
        after = await _time_sums(session, platform.metrics_url)
        phase.stages = {k: round((after.get(k, 0.0) - before.get(k, 0.0)) / len(numbered), 4)
                        for k in dict.fromkeys([*before, *after])}
        return phase


async def _measure(make: type[Platform], sizes: list[int], workdir: Path,
                   settings: dict[str, str]) -> list[dict[str, Any]]:
    questions = list(dict.fromkeys(q for q, _ in sample_questions()))[: max(sizes)]
    results = []
    for offset, size in enumerate(sizes, 1):
        numbered = [(offset * 1_000 + i, q) for i, q in enumerate(questions[:size])]
        alone = await _fresh_phase(make, workdir, [(n + 500, q) for n, q in numbered], together=False, settings=settings)
        together = await _fresh_phase(make, workdir, numbered, together=True, settings=settings)
        results.append(_summary(alone, together, make.name))
    return results


PLATFORMS: dict[str, type[Platform]] = {"slack": SlackPlatform, "telegram": TelegramPlatform}


def run(adapters: list[str], sizes: list[int], answer_mode: str = "auto") -> list[dict[str, Any]]:
    settings = {"ASKDESK_ANSWER_MODE": answer_mode}
    rows: list[dict[str, Any]] = []
    for name in adapters:
        with tempfile.TemporaryDirectory(prefix=f"askdesk-concurrency-{name}-") as tmp:
            rows += [{**row, "answer_mode": answer_mode}
                     for row in asyncio.run(_measure(PLATFORMS[name], sizes, Path(tmp), settings))]
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'adapter':9} {'n':>3} {'alone mean':>11} {'one by one':>11} {'together':>9} {'speedup':>8} "
            f"{'p50 / max answer':>17} {'ack p99':>8} {'same answers':>13}")
    modes = sorted({r.get("answer_mode", "auto") for r in rows})
    what = "default settings" if modes == ["auto"] else f"answer mode {', '.join(modes)}"
    lines = [f"End to end through the bot, {os.cpu_count()} CPUs, {what}", head]
    for r in rows:
        ack = f"{r['ack_ms']['p99']:.0f} ms" if r["ack_ms"] else "—"
        lines.append(
            f"{r['adapter']:9} {r['n']:>3} {r['alone_s']['mean']:>9.2f} s {r['one_after_another_s']:>9.2f} s "
            f"{r['together_wall_s']:>7.2f} s {r['speedup']:>7.2f}x "
            f"{r['together_answer_s']['p50']:>7.2f} / {r['together_answer_s']['max']:>5.2f} s {ack:>8} "
            f"{r['same_answers']:>6} of {r['n']:<3}"
        )
    return "\n".join(lines)


def stage_table(rows: list[dict[str, Any]]) -> str:
    """Where a question's time went (mean per question, ms): the pipeline's stages and the rest."""
    names = ["end_to_end", *STAGES, "outside_core"]
    if any(r["stages_s"][phase].get("prompt_read") for r in rows for phase in ("alone", "together")):
        names += ["prompt_read", "decoding"]  # the scheduler's time, not per question: summed over the phase / n
    head = f"{'adapter':9} {'n':>3} {'phase':9} " + " ".join(f"{n.replace('_', ' '):>12}" for n in names)
    lines = ["Mean per question, ms (stages from the bot's /metrics; outside core = adapter + platform calls)", head]
    for r in rows:
        for phase in ("alone", "together"):
            values = r["stages_s"][phase]
            lines.append(f"{r['adapter']:9} {r['n']:>3} {phase:9} "
                         + " ".join(f"{values.get(n, 0.0) * 1000:>12.1f}" for n in names))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", nargs="+", choices=sorted(PLATFORMS), default=sorted(PLATFORMS))
    parser.add_argument("--n", nargs="+", type=int, default=[8, 16])
    parser.add_argument("--answer-mode", choices=["auto", "generate", "compose"], default="auto",
                        help="ASKDESK_ANSWER_MODE of the bot (auto: the default settings)")
    args = parser.parse_args(argv)
    rows = run(args.adapter, sorted(args.n), args.answer_mode)
    print(table(rows))
    print()
    print(stage_table(rows))
    for r in rows:
        for c in r["changed"]:
            print(f"  {r['adapter']} n={r['n']} changed: {c['question']!r}\n    alone:    {c['alone'][:160]!r}\n"
                  f"    together: {c['together'][:160]!r}")
    name = "concurrency" if args.answer_mode == "auto" else f"concurrency-{args.answer_mode}"
    save(name, {"rows": rows, "cpu_count": os.cpu_count()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
