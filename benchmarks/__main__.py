"""Run benchmarks by name: ``python -m benchmarks [calibrate generation_quality ...]`` (default: all)."""

from __future__ import annotations

import importlib
import sys

ALL = ["calibrate", "generation_quality", "generation_speed"]


def main(argv: list[str]) -> int:
    names = argv or ALL
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"\n=== {name} ===")
        module.main([]) if hasattr(module, "main") else module.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
