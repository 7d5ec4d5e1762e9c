"""Generation on this machine: load times, time to first token, tokens/s, and how often the
generated answer passes the grounding check on the sample questions.

``python -m benchmarks.generation_quality [--models M1 M2 ...] [--limit N]``. Each model is
run on the same questions in one process, so pass rates are comparable side by side.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, sample_questions, save, table
from core.config import BUNDLED_GENERATOR, get_settings
from core.messages import IncomingMessage

LOAD_SNIPPET = """
import time, sys
t = time.perf_counter()
from core.generation.transformers_backend import load_model
load_model(sys.argv[1], "cpu", __import__("pathlib").Path(sys.argv[2]))
print(time.perf_counter() - t)
"""


def load_seconds(model: str, cache_dir: Path) -> float:
    """Time to load the generator in a fresh process (imports included)."""
    out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET, model, str(cache_dir)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def index_build_seconds() -> float:
    from core.retrieval.build import build_index

    settings = get_settings()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_index(settings, settings.kb_dir, Path(tmp) / "index")
        return time.perf_counter() - started


def speed(assistant, questions: list[str]) -> tuple[float, float]:
    """Median time to first token and tokens/s over ``questions`` (single stream)."""
    from core.generation.prompt import build_messages

    generator = assistant.generator
    _, tokenizer = generator._loaded()
    firsts, rates = [], []
    for q in questions:
        hits = assistant.retriever.search(q, assistant.settings.top_k)
        messages = build_messages(q, [h.passage for h in hits])
        started = time.perf_counter()
        first = None
        text = ""
        for delta in generator.stream(messages, assistant.settings.max_new_tokens):
            first = first or time.perf_counter() - started
            text += delta
        elapsed = time.perf_counter() - started
        tokens = len(tokenizer.encode(text, add_special_tokens=False))
        firsts.append(first or elapsed)
        rates.append(tokens / max(elapsed - (first or 0), 1e-6))
    firsts.sort(), rates.sort()
    return firsts[len(firsts) // 2], rates[len(rates) // 2]


def pass_rate(assistant, questions: list[tuple[str, str]]) -> dict:
    counts = {"generated": 0, "extractive": 0, "refusal": 0, "right_source": 0}
    reasons: list[str] = []
    for question, expected in questions:
        answer = assistant.answer(IncomingMessage(text=question))
        counts[answer.mode] += 1
        counts["right_source"] += any(c.url == expected for c in answer.citations)
        if answer.rejected_reason:
            reasons.append(f"{question} → {answer.rejected_reason}")
    answered = counts["generated"] + counts["extractive"]
    counts["pass_rate"] = counts["generated"] / answered if answered else 0.0
    counts["rejections"] = reasons
    return counts


def run(models: list[str], limit: int) -> dict:
    from core.assistant import Assistant

    settings = get_settings()
    questions = sample_questions()[:limit]
    results: dict = {"index_build_s": index_build_seconds(), "models": {}}
    for model in models:
        s = settings.model_copy(update={"generator_model": model})
        with tempfile.TemporaryDirectory() as tmp:
            cold = load_seconds(model, Path(tmp)) if model == BUNDLED_GENERATOR else float("nan")
        warm = load_seconds(model, s.cache_dir)
        assistant = Assistant(s)
        assistant.warm_up()
        ttft, tps = speed(assistant, [q for q, _ in questions[:5]])
        quality = pass_rate(assistant, questions)
        results["models"][model] = {"cold_load_s": cold, "warm_load_s": warm, "ttft_s": ttft, "tokens_per_s": tps, **quality}
    rows = [[m, r["cold_load_s"], r["warm_load_s"], r["ttft_s"], r["tokens_per_s"], r["generated"], r["extractive"],
             r["refusal"], r["pass_rate"], r["right_source"]] for m, r in results["models"].items()]
    print(f"sample knowledge base index build (fresh): {results['index_build_s']:.1f} s")
    table(f"Generation on {len(questions)} sample questions (max_new_tokens={settings.max_new_tokens})",
          ["model", "cold load s", "warm load s", "TTFT s", "tok/s", "generated ok", "extractive", "refused",
           "pass rate", "right source"], rows)
    for m, r in results["models"].items():
        for reason in r["rejections"]:
            print(f"  [{m}] rejected: {reason}")
    save("generation_quality", results)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[get_settings().generator_model])
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    run(args.models, args.limit)


if __name__ == "__main__":
    main()
