"""Fairness end to end: one user floods the bot with questions while another asks one.

How long does the second user's question take, against the same question asked when the bot has
nothing else to do?

The fair queue (:mod:`core.fairness`) promises that a busy user cannot starve everyone else; a unit
test of the queue cannot show what a person actually waits for, because what slows the second
user is everything around the queue too: the flood's events being acknowledged and stored, its
polite refusals being posted, its accepted questions being answered on the same CPUs. So the
real ``askdesk serve`` process runs, with default settings, against the fakes of ``tests/fakes``,
exactly as ``benchmarks/concurrency.py`` runs it (its platforms and fresh bots are reused here).

1. **Alone**: user B asks three in-scope questions, one after another, each in a conversation of
   its own; the median of the three is the single-question latency (send → final answer).
2. **Flood**: on a freshly started bot, user A sends ``--flood`` questions (the other sample
   questions, cycled) as fast as the platform delivers them, all in one conversation (a Slack DM
   channel, one Telegram private chat) — someone pasting a list, or a script. 50 ms after the last
   of them, B asks the question that had the median latency alone, in a conversation of its own.

``ratio = B's latency under the flood / B's median latency alone``; issue 13's target is 2.0 or
less. B's flood question is the median one, so the ratio compares a question with itself, and A's
questions never share an expected article with B's, so A's answers do not warm the article B's
answer comes from and flatter the ratio. Each phase starts its own bot (warmed by one out-of-scope question), so the
flood phase inherits nothing from the alone phase either.

A's questions are counted from what A's conversation shows once all of them have been handled
or ``ANSWER_TIMEOUT_S`` has passed: answered (a final answer, with its feedback buttons), turned
away (the bot's ``busy`` or ``slow_down`` phrase, :mod:`core.language`, or, once A has been told,
no reply at all, counted by the bot's ``askdesk_turned_away_total{told="no"}``), apologised for (the
``error`` phrase), and lost (none of these: never answered, never told). A lost question is a
bug; turned-away ones are the per-user limits (``ASKDESK_PER_USER_*``) doing their job.

    python -m benchmarks.fairness                         # both adapters, a flood of 100
    python -m benchmarks.fairness --adapter slack --flood 50
    python -m benchmarks.fairness --answer-mode generate  # answers written by the generator

Default settings compose answers from the sources (``ASKDESK_ANSWER_MODE=auto`` with the bundled
model); ``--answer-mode generate`` makes the generator write them, the slower and realistic case,
where A's accepted questions hold the generator while B's is answered.

Prints a table and writes ``benchmarks/results/fairness.json`` (``fairness-generate.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import sample_questions, save, scrape, table
from benchmarks.concurrency import (
    ANSWER_TIMEOUT_S,
    Asked,
    Platform,
    SlackPlatform,
    TelegramPlatform,
    _phase,
    _until_answered,
    fresh_bot,
)
from core.language import CJK_CHAR, PHRASES

TARGET_RATIO = 2.0
ALONE_RUNS = 3
FLOOD_GAP_S = 0.05  # between A's last question and B's
B_FLOOD_NUMBER = 100  # B's question under the flood (alone they are 1 … ALONE_RUNS)

TURNED_AWAY = tuple(dict.fromkeys(t[k] for t in PHRASES.values() for k in ("busy", "slow_down") if k in t))
APOLOGY = tuple(dict.fromkeys(t["error"] for t in PHRASES.values() if "error" in t))


class Flooded(Platform):
    """A platform on which user A can send many questions in one conversation, and what A sees there."""

    async def flood(self, questions: list[str], session: aiohttp.ClientSession) -> None:
        """Send all of ``questions`` from A, as fast as the platform takes them."""
        raise NotImplementedError

    def flood_replies(self) -> list[tuple[str, bool]]:
        """Every bot message in A's conversation as it stands now: (visible text, is a final answer)."""
        raise NotImplementedError

    def began(self, number: int) -> float | None:
        """When the bot's answer to question ``number`` visibly began (Slack's 👀, Telegram's typing)."""
        raise NotImplementedError


class SlackFlood(SlackPlatform, Flooded):
    """A writes direct messages (``message.im`` events) in one DM channel, delivered all at once."""

    CHANNEL, USER = "DFLOOD0001", "UFLOOD0001"

    async def flood(self, questions: list[str], session: aiohttp.ClientSession) -> None:
        from tests.fakes.slack_api import direct_message

        await asyncio.gather(*(
            self.post_event(direct_message(q, ts=f"{1_850_000_000 + i}.000100", channel=self.CHANNEL, user=self.USER),
                            session)
            for i, q in enumerate(questions)
        ))

    def flood_replies(self) -> list[tuple[str, bool]]:
        from bots.slack.blocks import FEEDBACK_BLOCK

        return [(str(m.get("text", "")), any(b.get("block_id") == FEEDBACK_BLOCK for b in m.get("blocks") or ()))
                for (channel, _), m in list(self.fake.messages.items()) if channel == self.CHANNEL]

    def began(self, number: int) -> float | None:
        channel, ts = self._where(number)
        return next((c.at for c in self.fake.calls_to("reactions.add")
                     if c.args.get("channel") == channel and c.args.get("timestamp") == ts), None)


class TelegramFlood(TelegramPlatform, Flooded):
    """A writes in one private chat; every update is queued for the bot's next ``getUpdates``."""

    CHAT = 70_001

    async def flood(self, questions: list[str], session: aiohttp.ClientSession) -> None:
        for q in questions:
            await self.fake.enqueue(self.fake.message_update(q, chat_id=self.CHAT, user_id=self.CHAT))

    def flood_replies(self) -> list[tuple[str, bool]]:
        return [(str(m["visible"]), bool(m.get("reply_markup")))
                for (chat, _), m in list(self.fake.messages.items()) if chat == self.CHAT]

    def began(self, number: int) -> float | None:
        return next((c.at for c in self.fake.calls if c.params.get("chat_id") == 50_000 + number), None)


async def turned_away_unreplied(session: aiohttp.ClientSession, url: str) -> int:
    """Questions the bot turned away without a reply in words (its asker had just been told), from
    ``askdesk_turned_away_total{told="no"}`` on the bot's /metrics."""
    return int(sum(sample.value for sample in await scrape(session, url)
                   if sample.name == "askdesk_turned_away_total" and sample.labels.get("told") == "no"))


def outcomes(replies: list[tuple[str, bool]], unreplied: int = 0) -> dict[str, int]:
    """How A's questions were handled, from A's conversation (and the bot's count of those turned
    away without a reply): any other message is a preview, or a further piece of a long answer
    (only the last piece carries the buttons)."""
    counts = {"answered": 0, "turned_away": unreplied, "apologised": 0}
    for text, final in replies:
        text = html.unescape(text)
        if final:
            counts["answered"] += 1
        elif any(p in text for p in TURNED_AWAY):
            counts["turned_away"] += 1
        elif any(p in text for p in APOLOGY):
            counts["apologised"] += 1
    return counts


def pick_questions() -> tuple[list[str], list[str]]:
    """B's questions (English, each the only one for its article) and A's (every question about
    another article)."""
    pairs = list(dict.fromkeys(sample_questions()))
    per_url = {url: sum(u == url for _, u in pairs) for _, url in pairs}
    b = [(q, url) for q, url in pairs if per_url[url] == 1 and not CJK_CHAR.search(q)][:ALONE_RUNS]
    taken = {url for _, url in b}
    return [q for q, _ in b], [q for q, url in pairs if url not in taken]


def _began_after(platform: Flooded, number: int, asked: Asked) -> float | None:
    began = platform.began(number)
    return None if began is None else round(began - asked.sent, 4)


async def _alone(make: type[Flooded], workdir: Path, settings: dict[str, str],
                 questions: list[str]) -> tuple[list[Asked], list[float | None]]:
    async with fresh_bot(make, workdir, settings, "alone", 9_001) as (platform, session):
        assert isinstance(platform, Flooded)
        asked = (await _phase(platform, session, list(enumerate(questions, 1)), together=False)).asked
        return asked, [_began_after(platform, n, a) for n, a in enumerate(asked, 1)]


async def _flood(make: type[Flooded], workdir: Path, settings: dict[str, str], question: str,
                 flood: list[str]) -> dict[str, Any]:
    async with fresh_bot(make, workdir, settings, "flood", 9_002) as (platform, session):
        assert isinstance(platform, Flooded)
        started = time.monotonic()
        await platform.flood(flood, session)
        sent = time.monotonic()
        await asyncio.sleep(FLOOD_GAP_S)
        asked = await platform.ask(B_FLOOD_NUMBER, question, session)
        try:
            await _until_answered(platform, [B_FLOOD_NUMBER], [asked])
        except RuntimeError:  # B starved: reported as such, A still counted
            pass
        when_b = outcomes(platform.flood_replies(), await turned_away_unreplied(session, platform.metrics_url))
        deadline = started + ANSWER_TIMEOUT_S
        while True:  # until every one of A's questions is answered or turned away, or the time is up
            counts = outcomes(platform.flood_replies(), await turned_away_unreplied(session, platform.metrics_url))
            if sum(counts.values()) >= len(flood) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
        finished = time.monotonic()
        return {"b": asked, "b_began_s": _began_after(platform, B_FLOOD_NUMBER, asked), "a": counts,
                "a_when_b_answered": when_b, "send_s": sent - started, "a_handled_s": finished - started}


async def _measure(make: type[Flooded], flood_size: int, workdir: Path, settings: dict[str, str]) -> dict[str, Any]:
    b_questions, a_questions = pick_questions()
    alone, alone_began = await _alone(make, workdir, settings, b_questions)
    median = statistics.median(a.seconds for a in alone)
    middle = min(alone, key=lambda a: abs(a.seconds - median))
    flood = list(itertools.islice(itertools.cycle(a_questions), flood_size))
    under = await _flood(make, workdir, settings, middle.question, flood)
    b: Asked = under["b"]
    a = under["a"]
    return {
        "adapter": make.name, "flood": flood_size,
        "alone_s": [round(x.seconds, 4) for x in alone], "alone_median_s": round(median, 4),
        "b_question": middle.question, "b_flood_s": round(b.seconds, 4) if b.answered else None,
        # From the send to the first sign of the answer (👀, typing): the wait before the answering itself.
        "began_s": {"alone": alone_began[alone.index(middle)], "flood": under["b_began_s"]},
        "ratio": round(b.seconds / median, 2) if b.answered else None, "target_ratio": TARGET_RATIO,
        "b_same_answer": b.text == middle.text if b.answered else None,
        "a": {**a, "lost": flood_size - sum(a.values())},
        "a_when_b_answered": under["a_when_b_answered"],
        "a_send_s": round(under["send_s"], 3), "a_handled_s": round(under["a_handled_s"], 2),
    }


PLATFORMS: dict[str, type[Flooded]] = {"slack": SlackFlood, "telegram": TelegramFlood}


def run(adapters: list[str], flood: int, answer_mode: str = "auto") -> list[dict[str, Any]]:
    settings = {"ASKDESK_ANSWER_MODE": answer_mode}
    rows = []
    for name in adapters:
        with tempfile.TemporaryDirectory(prefix=f"askdesk-fairness-{name}-") as tmp:
            rows.append({**asyncio.run(_measure(PLATFORMS[name], flood, Path(tmp), settings)), "answer_mode": answer_mode})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    modes = sorted({r["answer_mode"] for r in rows})
    what = "default settings" if modes == ["auto"] else f"answer mode {', '.join(modes)}"
    floods = "/".join(sorted({str(r["flood"]) for r in rows}))
    table(
        f"B's one question while A sends {floods} at once (target ratio <= {TARGET_RATIO:g}); "
        f"{os.cpu_count()} CPUs, {what}",
        ["adapter", "alone", "B", "ratio", "A ok", "A away", "A err", "A lost", "A done"],
        [[r["adapter"], r["alone_median_s"], r["b_flood_s"] if r["b_flood_s"] is not None else "starved",
          f"{r['ratio']:.2f}x" if r["ratio"] is not None else "—",
          r["a"]["answered"], r["a"]["turned_away"], r["a"]["apologised"], r["a"]["lost"], f"{r['a_handled_s']:.1f}"]
         for r in rows],
    )
    print("alone: B's median latency alone (s); B: B's latency under the flood (s); A ok / away / err / lost: A's\n"
          "questions answered, turned away politely, apologised for, never answered; A done: seconds from A's\n"
          "first question until all were handled (or the time was up)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", nargs="+", choices=sorted(PLATFORMS), default=sorted(PLATFORMS))
    parser.add_argument("--flood", type=int, default=100, help="questions user A sends at once (default 100)")
    parser.add_argument("--answer-mode", choices=["auto", "generate", "compose"], default="auto",
                        help="ASKDESK_ANSWER_MODE of the bot (auto: the default settings)")
    args = parser.parse_args(argv)
    rows = run(args.adapter, args.flood, args.answer_mode)
    print_table(rows)
    for r in rows:
        print(f"  {r['adapter']}: B asked {r['b_question']!r}; alone {', '.join(f'{s:.3f}' for s in r['alone_s'])} s; "
              f"same answer under the flood: {r['b_same_answer']}; its answer began (👀 / typing) after "
              f"{r['began_s']['alone']} s alone, {r['began_s']['flood']} s under the flood; A's {r['flood']} sent in "
              f"{r['a_send_s']:.3f} s; when B was answered, A had {r['a_when_b_answered']}")
    name = "fairness" if args.answer_mode == "auto" else f"fairness-{args.answer_mode}"
    save(name, {"rows": rows, "cpu_count": os.cpu_count()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
