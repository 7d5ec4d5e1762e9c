"""Helpers the benchmarks share: tables on stdout, JSON results, the sample data."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ROOT.parent / "shared" / "datasets"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
console = Console()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if c != columns[0] else "left")
    for row in rows:
        t.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    console.print(f"[dim]results written to {path}[/dim]")
    return path


def sample_questions() -> list[tuple[str, str]]:
    with open(DATA / "sample_questions.csv", encoding="utf-8") as fh:
        return [(r["question"], r["expected_url"]) for r in csv.DictReader(fh)]


def out_of_scope_questions() -> list[str]:
    with open(DATA / "out_of_scope.csv", encoding="utf-8") as fh:
        return [r["question"] for r in csv.DictReader(fh)]


async def wait_ready(session: Any, url: str, proc: Any, log: Path, *, timeout_s: float, what: str = "process",
                     poll_s: float = 0.1) -> None:
    """Poll ``url`` (a health or readiness endpoint) with the aiohttp ``session`` until it answers 200.

    Raises RuntimeError with the end of ``log`` when the subprocess ``proc`` exits first or
    ``timeout_s`` passes; ``what`` names it in the message ("worker", "bot").
    """
    import asyncio
    import time

    import aiohttp

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(poll_s)
    raise RuntimeError(f"{what} not ready after {timeout_s:.0f}s:\n{log.read_text()[-3000:]}")


async def scrape(session: Any, url: str) -> list[Any]:
    """Every sample on a bot's ``/metrics`` (prometheus-client's parsed samples: name, labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families

    async with session.get(url) as response:
        text = await response.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
