"""Run benchmarks by name: ``python -m benchmarks [NAME ...]`` (default: all), tables on stdout.

Each module also runs alone (``python -m benchmarks.NAME --help`` for its options) and
writes its numbers as JSON to ``benchmarks/results/``.
"""

from __future__ import annotations

import importlib
import sys

ALL = ["answer_quality", "calibrate", "concurrency", "fairness", "generation_quality", "generation_speed", "grounding_check", "ingest", "multi_worker", "ops_fuzz", "retrieval_banking77", "retrieval_scale", "slack_latency"]


def main(argv: list[str]) -> int:
    unknown = [n for n in argv if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    for name in argv or ALL:
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"benchmarks.{name}").main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
