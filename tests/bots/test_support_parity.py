"""One support workflow, two platforms: each scenario runs through the Slack and the Telegram adapter.

Issue 16 named the ways the two adapters' hand-offs had drifted apart; each test here is one of
them, run against both adapters' fakes (the real Bolt app and the real PTB Application, with a
fixed-answer assistant), so the rule lives once, in :mod:`core.support`, and holds on both:

- the escalated customer's language: the escalated turn's, else their profile's, else the question's;
- locking: one lock per conversation (a slow post for one customer never holds up another's);
- transcripts: cut by whole lines (the oldest dropped), never in the middle of a line;
- a support post that fails closes the escalation (never open but invisible) and says so honestly;
- handled event ids are forgotten after the retention while the bot runs;
- the database is never called on the event loop by an adapter or the workflow.
"""

from __future__ import annotations

import asyncio
import itertools
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bots.slack.blocks import ACTION_CLOSE, ACTION_UP, block_texts
from core.language import phrase
from core.messages import Answer
from core.store import Store
from core.support import AgentAllowlist, clip_transcript
from tests.fakes.assistant import FixedAnswerAssistant
from tests.fakes.slack_api import BOT_USER, FakeSlack, block_action, button_value, channel_message, direct_message
from tests.fakes.slack_api import slash_command
from tests.fakes.telegram_api import FakeTelegramAPI

ANSWER = Answer(text="Refunds reach your card within 5 business days.", confidence=0.9, language="en")
PERSON = "I want to talk to a person"
ROOT = Path(__file__).resolve().parents[2]


def handoff(language: str = "en") -> Answer:
    """What the assistant returns when the customer asks for a person."""
    return Answer(text="", mode="refusal", language=language, handoff=True)


class SlackSide:
    """The Slack adapter over HTTP, customers in DMs, the support channel ``C0SUPPORT``."""

    platform = "slack"
    support = "C0SUPPORT"
    agent_name = "Sam from Support"
    customers = {"a": ("UALICE", "D0ALICE"), "b": ("UBOB", "D0BOB")}
    _ts = itertools.count(1)

    def __init__(self, fake: FakeSlack, running: Any, store: Store) -> None:
        self.fake, self.running, self.store = fake, running, store

    @classmethod
    @asynccontextmanager
    async def start(cls, assistant: Any, store: Store) -> AsyncIterator[SlackSide]:
        from tests.bots.slack.conftest import start_bot

        fake = await FakeSlack().start()
        running = await start_bot(fake, assistant, Path(store.path), store=store, support_channel=cls.support,
                                  admin_user_ids="UADMIN", support_agent_ids="UAGENT")
        try:
            yield cls(fake, running, store)
        finally:
            await running.stop()
            await fake.close()

    def next_ts(self) -> str:
        return f"1700009000.{next(self._ts):06d}"

    def user_id(self, who: str = "a") -> str:
        return self.customers[who][0]

    def customer_texts(self, who: str = "a") -> list[str]:
        channel = self.customers[who][1]
        found = [m for (ch, _), m in self.fake.messages.items() if ch == channel and m.get("user") == BOT_USER]
        return [m["text"] for m in sorted(found, key=lambda m: float(m["ts"]))]

    def support_posts(self) -> list[tuple[str, str]]:
        """The escalation posts in the support channel, oldest first: (ts, what it shows)."""
        found = [m for (ch, _), m in self.fake.messages.items() if ch == self.support and not m.get("thread_ts")]
        return [(m["ts"], "\n".join(block_texts(m.get("blocks") or [])) or m["text"])
                for m in sorted(found, key=lambda m: float(m["ts"]))]

    async def until(self, condition: Any, what: str) -> None:
        await self.fake.wait_for(condition, timeout=30, what=what)

    async def ask(self, text: str, who: str = "a", *, wait: bool = True) -> None:
        user, channel = self.customers[who]
        before = len(self.customer_texts(who))
        status, _, _ = await self.running.event(direct_message(text, ts=self.next_ts(), channel=channel, user=user))
        assert status == 200
        if wait:
            await self.until(lambda: len(self.customer_texts(who)) > before, f"the reply to {text!r}")

    async def agent_reply(self, text: str, who: str = "a") -> None:
        before = len(self.customer_texts(who))
        post_ts = self.support_posts()[-1][0]
        await self.running.event(channel_message(text, ts=self.next_ts(), channel=self.support, thread_ts=post_ts,
                                                 user="UAGENT"))
        await self.until(lambda: len(self.customer_texts(who)) > before, "the agent's reply relayed")

    async def close(self, who: str = "a") -> None:
        before = len(self.customer_texts(who))
        post_ts = self.support_posts()[-1][0]
        await self.running.click(block_action(self.fake, self.support, post_ts, ACTION_CLOSE, user="UAGENT"))
        await self.until(lambda: len(self.customer_texts(who)) > before, "the customer told it is closed")

    async def thumbs_up(self, who: str = "a") -> None:
        channel = self.customers[who][1]
        answer = [m for (ch, _), m in self.fake.messages.items() if ch == channel and m.get("blocks")][-1]
        button_value(answer["blocks"], ACTION_UP)
        await self.running.click(block_action(self.fake, channel, answer["ts"], ACTION_UP, user=self.user_id(who)))
        await self.until(lambda: self.fake.ephemerals, "the thank-you")

    async def teach(self, text: str) -> str:
        status, body, _ = await self.running.command(
            slash_command(f"teach {text}", self.fake.response_url("teach"), command="/askdesk", user="UADMIN"))
        assert status == 200
        return body

    def fail_next_support_post(self) -> None:
        self.fake.fail_next("chat.postMessage", "not_in_channel")

    def hold_support_posts(self, gate: asyncio.Event, who: str) -> None:
        user = self.user_id(who)
        self.fake.hold("chat.postMessage", gate,
                       when=lambda args: args.get("channel") == self.support and f"<@{user}>" in str(args.get("text")))

    @property
    def held(self) -> int:
        return len(self.fake.held)

    async def settle(self) -> None:
        assert await self.running.bot.drain(timeout=30)


class TelegramSide:
    """The Telegram adapter polling the fake Bot API, customers in private chats, the support group -3000."""

    platform = "telegram"
    support = -3000
    agent_name = "Grace"
    agent = dict(chat_id=-3000, chat_type="supergroup", user_id=9001, first_name="Grace")
    admin = 7100
    customers = {"a": (3101, "Ada"), "b": (3102, "Bo")}

    def __init__(self, fake: FakeTelegramAPI, store: Store) -> None:
        self.fake, self.store = fake, store

    @classmethod
    @asynccontextmanager
    async def start(cls, assistant: Any, store: Store) -> AsyncIterator[TelegramSide]:
        from bots.telegram.app import SupportOptions
        from tests.bots.telegram.conftest import running_bot

        support = SupportOptions(support_chat_id=cls.support, admin_user_ids=frozenset({cls.admin}),
                                 agents=AgentAllowlist({"9001"}))
        async with FakeTelegramAPI() as fake:
            async with running_bot(fake, assistant, store, support=support):
                yield cls(fake, store)

    def user_id(self, who: str = "a") -> str:
        return str(self.customers[who][0])

    def customer_texts(self, who: str = "a") -> list[str]:
        chat = self.customers[who][0]
        return [m["visible"] for (c, _), m in sorted(self.fake.messages.items()) if c == chat]

    def support_posts(self) -> list[tuple[int, str]]:
        return [(mid, m["visible"]) for (c, mid), m in sorted(self.fake.messages.items())
                if c == self.support and m["visible"].startswith("🙋 Escalation #")]

    async def until(self, condition: Any, what: str) -> None:
        await self.fake.wait_for(condition, timeout=30, what=what)

    async def _handled(self, update: dict[str, Any]) -> None:
        def answered() -> bool:
            item = self.store.inbox_item("telegram", str(update["update_id"]))
            return item is not None and item.status == "answered"

        await self.until(answered, f"update {update['update_id']} handled")

    async def ask(self, text: str, who: str = "a", *, wait: bool = True) -> None:
        chat, name = self.customers[who]
        before = len(self.customer_texts(who))
        await self.fake.enqueue(self.fake.message_update(text, chat_id=chat, user_id=chat, first_name=name))
        if wait:
            await self.until(lambda: len(self.customer_texts(who)) > before, f"the reply to {text!r}")

    async def agent_reply(self, text: str, who: str = "a") -> None:
        before = len(self.customer_texts(who))
        post_id = self.support_posts()[-1][0]
        await self.fake.enqueue(self.fake.message_update(text, reply_to=post_id, **self.agent))
        await self.until(lambda: len(self.customer_texts(who)) > before, "the agent's reply relayed")

    async def close(self, who: str = "a") -> None:
        before = len(self.customer_texts(who))
        post_id = self.support_posts()[-1][0]
        (data,) = [d for _, d in self.fake.buttons(self.support, post_id) if d.startswith("close:")]
        click = self.fake.callback_update(self.support, post_id, data, user_id=9001, first_name="Grace")
        await self.fake.enqueue(click)
        await self.until(lambda: len(self.customer_texts(who)) > before, "the customer told it is closed")

    async def thumbs_up(self, who: str = "a") -> None:
        chat = self.customers[who][0]
        answer_id = [m for (c, m) in sorted(self.fake.messages)
                     if c == chat and any(d.startswith("fb:") for _, d in self.fake.buttons(c, m))][-1]
        (up,) = [d for _, d in self.fake.buttons(chat, answer_id) if d.endswith(":+1")]
        click = self.fake.callback_update(chat, answer_id, up, user_id=chat)
        await self.fake.enqueue(click)
        await self.until(lambda: self.fake.callback_queries.get(click["callback_query"]["id"]), "the thank-you")

    async def teach(self, text: str) -> str:
        await self.fake.enqueue(self.fake.message_update(f"/teach {text}", chat_id=self.admin, user_id=self.admin))
        await self.until(lambda: self.fake.final_text(self.admin), "the /teach reply")
        return self.fake.final_text(self.admin)

    def fail_next_support_post(self) -> None:
        self.fake.fail_next("sendMessage", 403, "Forbidden: bot is not a member of the supergroup chat",
                            when=lambda params: params.get("chat_id") == self.support)

    def hold_support_posts(self, gate: asyncio.Event, who: str) -> None:
        marker = f"id {self.user_id(who)}"
        self.fake.hold("sendMessage", gate,
                       when=lambda params: params.get("chat_id") == self.support and marker in str(params.get("text")))

    @property
    def held(self) -> int:
        return len(self.fake.held)

    async def settle(self) -> None:
        await asyncio.sleep(0)  # every wait above already waited for what it checks


SIDES = {"slack": SlackSide, "telegram": TelegramSide}


@pytest.fixture(params=sorted(SIDES))
def side(request):
    """The adapter a test runs on: ``async with side.start(assistant, store) as bot``."""
    return SIDES[request.param]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "askdesk.db")
    yield s
    s.close()


# ---- the customer's language ------------------------------------------------------------------
@pytest.mark.parametrize("known_by", ["question", "profile"])
async def test_the_customers_language_is_chosen_by_one_rule(side, store, known_by):
    """No stored turn (the assistant keeps none here): the profile's language, else the question's."""
    if known_by == "question":
        assistant, question = FixedAnswerAssistant(handoff("zh")), "请帮我转人工客服"
    else:
        assistant, question = FixedAnswerAssistant(handoff("en")), PERSON
    async with side.start(assistant, store) as bot:
        if known_by == "profile":
            store.touch_profile(bot.platform, bot.user_id(), "Alice", "zh")
        await bot.ask(question)
        assert len(bot.support_posts()) == 1
        await bot.agent_reply("您好，退款会在五个工作日内到账。")
        relayed = bot.customer_texts()[-1]
        assert phrase("agent_reply", "zh", name=bot.agent_name) in relayed
        assert "五个工作日" in relayed
        await bot.close()
        assert phrase("escalation_closed", "zh") in bot.customer_texts()[-1]


# ---- locking ----------------------------------------------------------------------------------
async def test_one_lock_per_conversation(side, store):
    """Customer A's support post hangs: customer B is escalated meanwhile; A's still posts once."""
    async with side.start(FixedAnswerAssistant(handoff()), store) as bot:
        gate = asyncio.Event()
        bot.hold_support_posts(gate, "a")
        await bot.ask(PERSON, "a", wait=False)
        await bot.until(lambda: bot.held == 1, "customer A's support post under way")
        await bot.ask(PERSON, "b")  # not held up by A's post
        assert bot.customer_texts("b") == [phrase("handoff", "en")]
        assert len(bot.support_posts()) == 1 and bot.customer_texts("a") == []
        gate.set()
        await bot.until(lambda: bot.customer_texts("a"), "customer A told a person will answer")
        await bot.ask("Are you there?", "a")  # a person has it now: forwarded under A's post, not posted again
        await bot.settle()
        assert len(bot.support_posts()) == 2
        assert bot.customer_texts("a") == [phrase("handoff", "en"), phrase("forwarded", "en")]


# ---- transcripts ------------------------------------------------------------------------------
async def test_transcripts_are_cut_by_whole_lines(side, store):
    """An escalation with a long transcript (as older versions stored them) shows the latest whole lines."""
    assistant = FixedAnswerAssistant(ANSWER)
    long = "\n".join(f"Customer: question {n} " + "x" * 130 for n in range(40))
    async with side.start(assistant, store) as bot:
        await bot.ask("How long does a refund take?")
        asked = assistant.seen[-1]
        store.open_escalation(bot.platform, asked.conversation_id, asked.thread_id, asked.user_id, asked.user_name,
                              "How long does a refund take?", long, None)
        assistant.fixed = handoff()
        await bot.ask(PERSON)  # posts the open escalation the customer already has
        ((_, shown),) = bot.support_posts()
    expected = clip_transcript(long)
    assert expected.startswith("…\nCustomer: question ") and "question 39 " in expected
    assert expected in shown, "the same whole lines on every platform"


# ---- a failed support post ----------------------------------------------------------------------
async def test_a_failed_support_post_closes_the_escalation(side, store):
    async with side.start(FixedAnswerAssistant(handoff()), store) as bot:
        bot.fail_next_support_post()
        await bot.ask(PERSON)
        assert bot.customer_texts()[-1].startswith(phrase("handoff_unavailable", "en"))
        (escalation,) = store.escalations_since()
        assert escalation.status == "closed", "never open but invisible to the support team"
        assert store.open_escalation_for(bot.platform, escalation.conversation_id, escalation.thread_id) is None

        await bot.ask(PERSON)  # asking again tries afresh
        assert bot.customer_texts()[-1] == phrase("handoff", "en")
        assert len(bot.support_posts()) == 1
        assert [e.status for e in store.escalations_since()] == ["closed", "open"]


# ---- handled event ids ----------------------------------------------------------------------------
async def test_old_handled_event_ids_are_forgotten_while_serving(side, store):
    store.claim_event(side.platform, "Ev-from-last-month")
    store._connect().execute("UPDATE processed_events SET processed_at = 0")  # noqa: SLF001 - age it
    # Handled updates kept as answered inbox rows (all Telegram keeps of them) age out the same way.
    store.inbox_accept(side.platform, "old-answered", {"text": "old"}, "U0", "an-old-worker", 60.0)
    store.inbox_done(side.platform, "old-answered")
    store._connect().execute("UPDATE inbox SET received_at = 0 WHERE event_id = 'old-answered'")  # noqa: SLF001
    async with side.start(FixedAnswerAssistant(ANSWER), store) as bot:
        await bot.ask("How long does a refund take?")
        await bot.settle()
        assert store.claim_event(bot.platform, "Ev-from-last-month"), "forgotten: it could be claimed again"
        assert store.inbox_item(bot.platform, "old-answered") is None, "the old handled update is forgotten"


# ---- the database off the event loop --------------------------------------------------------------
class LoopWatchingStore(Store):
    """A store that notes every database call an adapter or the support workflow makes on the event loop."""

    watched = (str(ROOT / "bots"), str(ROOT / "core" / "support"))

    def __init__(self, path: Path) -> None:
        self.on_loop: list[str] = []
        super().__init__(path)

    def _connect(self):  # type: ignore[override]
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a worker thread: fine
        else:
            store_file = str(ROOT / "core" / "store.py")
            caller = next((f for f in reversed(traceback.extract_stack()[:-1]) if f.filename != store_file), None)
            if caller is not None and caller.filename.startswith(self.watched):
                self.on_loop.append(f"{Path(caller.filename).relative_to(ROOT)}:{caller.lineno} {caller.name}")
        return super()._connect()


async def test_the_database_is_never_called_on_the_event_loop(side, tmp_path):
    store = LoopWatchingStore(tmp_path / "askdesk.db")
    assistant = FixedAnswerAssistant(ANSWER, store=store)  # turns are stored: feedback has something to rate
    try:
        async with side.start(assistant, store) as bot:
            await bot.ask("How long does a refund take?")
            asked = assistant.seen[-1]
            conversation = store.conversation(bot.platform, asked.conversation_id, asked.thread_id)
            turn = store.record_turn(conversation, asked.user_id, asked.text, ANSWER.text, [], 0.9, False,
                                     "generated", "en", 0.1)
            assistant.fixed = replace(ANSWER, turn_id=turn)  # an answer with 👍/👎 under it
            await bot.ask("How long does a refund take?")
            await bot.thumbs_up()
            assistant.fixed = handoff()
            await bot.ask(PERSON)
            await bot.ask("It was due on Monday.")  # forwarded to the agent
            await bot.agent_reply("It is on its way.")
            await bot.close()
            assert "Thanks! Saved" in await bot.teach("Do you ship to Iceland? | Yes.")
            await bot.settle()
            assert [e.status for e in store.escalations_since()] == ["closed"]
    finally:
        store.close()
    assert store.on_loop == []
