"""Three Slack HTTP worker processes on one PostgreSQL database answer each event exactly once.

The whole run of ``benchmarks/multi_worker.py``: 3 real Slack HTTP servers (separate processes,
scripted answers instead of a model), 300 signed events sent round-robin with Slack-style
retries (each event to two workers at once, every third one later to the third), then a 👍
click under every answer, also delivered to two workers at once. Skipped, with the reason,
where no PostgreSQL server answers.
"""

from __future__ import annotations

import pytest

from benchmarks.multi_worker import run

EVENTS = 300
WORKERS = 3


@pytest.mark.timeout(300)
async def test_three_workers_answer_each_of_300_events_exactly_once(pg_url, tmp_path):
    result = await run(pg_url, workers=WORKERS, events=EVENTS, rate=100.0, workdir=tmp_path)
    lines = [f"worker {w['worker']}: {w['deliveries']} deliveries, ack p50 {w['ack_p50_ms']} ms, "
             f"p99 {w['ack_p99_ms']} ms (in the worker: p50 {w['server_ack_p50_ms']} ms, "
             f"p99 {w['server_ack_p99_ms']} ms)" for w in result["per_worker"]]
    print("\n" + "\n".join(lines))  # shown with -s, and with the failure if one happens
    summary = {k: result[k] for k in ("answered", "duplicates", "lost", "wrong_text", "statuses", "turns_recorded",
                                      "inbox_pending", "clicks", "feedback_recorded", "feedback_thanks_sent",
                                      "exit_codes")}
    assert result["duplicates"] == 0 and result["lost"] == 0, (summary, lines)
    assert result["answered"] == EVENTS and result["wrong_text"] == 0, summary
    assert result["statuses"] == {200: result["deliveries"] + result["click_deliveries"]}, summary
    assert result["deliveries"] == 2 * EVENTS + len(range(0, EVENTS, 3))
    # What the database says agrees: one turn per event, every inbox row answered, nothing left.
    assert result["turns_recorded"] == EVENTS and result["inbox_answered"] == EVENTS and result["inbox_pending"] == 0
    assert result["integrity_ok"]
    # Clicks: each stored once and thanked once, although two workers got every one of them.
    assert result["clicks"] == EVENTS and result["feedback_recorded"] == EVENTS, summary
    assert result["feedback_thanks_sent"] == EVENTS and result["feedback_thanked_twice"] == 0, summary
    assert result["exit_codes"] == [0] * WORKERS, summary  # SIGTERM: drained and stopped cleanly
    assert all(len(w) and w["deliveries"] > 0 for w in result["per_worker"])
    # Acknowledgements stay far inside Slack's 3 s even on a busy shared machine (the target of
    # p99 < 50 ms per worker is measured by the benchmark and reported in docs/deploy.md).
    assert max(w["ack_p99_ms"] for w in result["per_worker"]) < 1000, lines
