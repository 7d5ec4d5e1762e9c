"""Operations endpoints: /healthz, /readyz (503 until the models are loaded) and /metrics,
scraped with prometheus-client's own parser after a real question through the fake Slack."""

from __future__ import annotations


import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bots.runtime import open_runtime
from bots.slack.app import SlackBot
from bots.slack.serve import EVENTS_PATH, check_bot_token, make_client, start_http
from core.assistant import Assistant
from core.store import Store
from tests.bots.slack.conftest import RunningBot, slack_settings
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlack, mention


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels (parsed by prometheus-client)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_slack_http_serves_health_readiness_and_metrics_that_count_a_question(quick_assistant, settings, tmp_path):
    fake = await FakeSlack().start()
    store = Store(tmp_path / "askdesk.db")
    assistant = Assistant(quick_assistant.settings, retriever=quick_assistant.retriever,
                          generator=quick_assistant.generator, store=store)
    try:
        async with open_runtime(settings, ("slack",), assistant=assistant, store=store) as runtime:
            slack = slack_settings(fake)
            client = make_client(slack)
            bot = SlackBot(runtime.assistant, store, slack, client, await check_bot_token(client))
            runner, port = await start_http(bot.build_app(), SIGNING_SECRET, "127.0.0.1", 0, spawn=bot.spawn,
                                            ops=runtime.ops)
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                running = RunningBot(fake, bot, store, base + EVENTS_PATH, runner, session)
                async with session.get(base + "/healthz") as resp:
                    assert resp.status == 200
                async with session.get(base + "/readyz") as resp:
                    assert resp.status == 503, "not ready before the models are loaded"
                await runtime.warm_up()
                async with session.get(base + "/readyz") as resp:
                    assert resp.status == 200 and (await resp.json())["platforms"] == ["slack"]

                async with session.get(base + "/metrics") as resp:
                    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
                    before = samples(await resp.text())
                assert before[("askdesk_generation_queue_depth", ())] == 0

                status, _, _ = await running.event(mention("How long do I have to return an item?",
                                                           ts="1700000101.000100"))
                assert status == 200
                await fake.wait_for(lambda: fake.calls_to("reactions.remove"), what="the answer")
                assert await bot.drain(timeout=60)

                scrapes = []
                for _ in range(20):
                    async with session.get(base + "/metrics") as resp:
                        scrapes.append(samples(await resp.text()))
                after = scrapes[-1]
                await runner.cleanup()
            bot.close()
    finally:
        store.close()
        await fake.close()

    slack_label = (("platform", "slack"),)
    assert after[("askdesk_questions_total", slack_label)] == 1
    answered = sum(v for (name, labels), v in after.items() if name == "askdesk_answers_total")
    refused = after.get(("askdesk_refusals_total", slack_label), 0)
    assert answered + refused == 1
    assert after[("askdesk_answer_seconds_count", ())] == 1
    assert after[("askdesk_first_text_seconds_count", ())] == 1
    assert after[("askdesk_retrieval_seconds_count", ())] >= 1
    assert after[("askdesk_questions_in_flight", ())] == 0
    # Where the answer's time went, stage by stage: each stage it went through observed once.
    for stage in ("queue", "retrieval", "record", "other"):
        assert after[("askdesk_answer_stage_seconds_count", (("stage", stage),))] == 1, stage
    assert sum(after.get(("askdesk_answer_stage_seconds_count", (("stage", s),)), 0)
               for s in ("generation", "composition")) >= 1, "the answer was written or composed"
    # A scrape reads counters; it does no work on the answering path (no retrieval, nothing counted).
    assert all(s == scrapes[0] for s in scrapes), "scraping changed what is counted"


async def test_ops_port_serves_the_endpoints_for_modes_without_their_own_http(quick_assistant, settings, tmp_path):
    """Socket Mode and Telegram polling listen on no port: ASKDESK_OPS_PORT gives them one."""
    store = Store(tmp_path / "askdesk.db")
    assistant = Assistant(quick_assistant.settings, retriever=quick_assistant.retriever,
                          generator=quick_assistant.generator, store=store)
    ops_settings = settings.model_copy(update={"ops_port": 0, "ops_host": "127.0.0.1"})
    try:
        async with open_runtime(ops_settings, ("slack", "telegram"), assistant=assistant, store=store) as runtime:
            base = f"http://127.0.0.1:{runtime.ops_port}"
            async with aiohttp.ClientSession() as session:
                async with session.get(base + "/healthz") as resp:
                    assert resp.status == 200
                async with session.get(base + "/readyz") as resp:
                    assert resp.status == 503
                await runtime.warm_up()
                async with session.get(base + "/readyz") as resp:
                    assert resp.status == 200
                    assert (await resp.json())["platforms"] == ["slack", "telegram"]
                async with session.get(base + "/metrics") as resp:
                    metrics = samples(await resp.text())
        assert ("askdesk_generation_batch_size", ()) in metrics
    finally:
        store.close()
