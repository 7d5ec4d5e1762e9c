"""Generation speed on this machine, side by side in one process:

* warm start: a fresh process loading index, embedder and generator (``Assistant.warm_up``),
  the generator alone from the converted cache;
* single stream: time to first token and tokens/s — plain ``generate`` (``TransformersGenerator``)
  vs the scheduler's own decode loop (``BatchedTransformersGenerator``), each on the fp32 copy
  transformers makes of the bundled GGUF and on the file's own 4-bit weights
  (``ASKDESK_GENERATOR_QUANTIZE=auto``, the default; :mod:`core.generation.int4`);
* concurrency: 1, 4, 8 and 16 questions arriving within one second (grounded prompts from real
  retrieved passages, 48 new tokens each): total throughput, p50/p95 answer latency, time to first
  token, and the longest pause a request saw between two deltas once it had started — continuous
  batching vs one ``generate`` at a time, on the same weights.

Every answer is 48 tokens long (end-of-sequence is deferred with ``min_new_tokens``, the same
in both paths), as in the issue's protocol: the bundled model otherwise stops after ~15 tokens,
and the comparison would measure prompt reading only. ``--natural`` lets answers end on their own.

``python -m benchmarks.generation_speed [--levels 1 4 8 16] [--new-tokens 48] [--weights fp32 4-bit] [--natural] [--threads N]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import ROOT, percentile, sample_questions, save, table
from core.config import get_settings

WARM_SNIPPET = """
import time, sys
t = time.perf_counter()
from core.assistant import Assistant
from core.config import Settings
Assistant(Settings()).warm_up()
print(time.perf_counter() - t)
"""


def start_seconds(env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", WARM_SNIPPET], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**os.environ, **env})
    return float(out.stdout.strip().splitlines()[-1])


def warm_start(settings) -> dict:
    """Two fresh processes in a row: the second must find everything converted and cached."""
    from benchmarks.generation_quality import load_seconds

    env = {"ASKDESK_INDEX_DIR": str(Path(settings.index_dir).resolve()),
           "ASKDESK_CACHE_DIR": str(Path(settings.cache_dir).resolve()),
           "ASKDESK_KB_DIR": str(Path(settings.kb_dir).resolve())}
    first = start_seconds(env)
    second = start_seconds(env)
    return {"first_start_s": first, "second_start_s": second,
            "generator_load_s": load_seconds(settings.generator_model, settings.cache_dir)}


def grounded_prompts(settings, count: int, top_k: int = 1) -> list[list[dict]]:
    from core.generation.prompt import build_messages
    from core.retrieval.retriever import Retriever

    retriever = Retriever(settings)
    questions = [q for q, _ in sample_questions()]
    prompts = []
    for q in questions[:count] if len(questions) >= count else (questions * count)[:count]:
        prompts.append(build_messages(q, [h.passage for h in retriever.search(q, top_k)]))
    return prompts


def run_one(generator, messages, new_tokens: int, arrival: float, start: float, out: dict, min_tokens: int = 0) -> None:
    """Wait for ``arrival`` (seconds after ``start``), stream one answer, record timings."""
    delay = start + arrival - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    submitted = time.perf_counter()
    stamps: list[float] = []
    text = ""
    for delta in generator.stream(messages, new_tokens, min_tokens):
        stamps.append(time.perf_counter())
        text += delta
    done = time.perf_counter()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    out.update(latency=done - submitted, ttft=(stamps[0] if stamps else done) - submitted,
               max_gap=max(gaps, default=0.0), text=text, done=done, submitted=submitted)


def concurrent(generator, tokenizer, prompts, new_tokens: int, arrivals: list[float], min_tokens: int = 0) -> dict:
    results: list[dict] = [{} for _ in arrivals]
    start = time.perf_counter() + 0.05
    threads = [threading.Thread(target=run_one, args=(generator, prompts[i], new_tokens, a, start, results[i], min_tokens))
               for i, a in enumerate(arrivals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = min(r["submitted"] for r in results)
    wall = max(r["done"] for r in results) - first
    tokens = sum(len(tokenizer.encode(r["text"], add_special_tokens=False)) for r in results)
    latencies = [r["latency"] for r in results]
    return {
        "requests": len(arrivals), "tokens": tokens, "wall_s": wall, "throughput_tok_s": tokens / wall,
        "p50_latency_s": percentile(latencies, 50), "p95_latency_s": percentile(latencies, 95),
        "p50_ttft_s": percentile([r["ttft"] for r in results], 50),
        "max_gap_s": max(r["max_gap"] for r in results),
        "texts": [r["text"] for r in results],
    }


def single_stream(generator, tokenizer, prompts, new_tokens: int, rounds: int = 3, min_tokens: int = 0) -> dict:
    """Time to first token and tokens/s of one generator over ``rounds`` prompts; medians."""
    samples: dict[str, list[float]] = {"ttft": [], "tps": [], "decode_tps": []}
    for r in range(rounds):
        started = time.perf_counter()
        first = None
        text = ""
        for delta in generator.stream(prompts[r % len(prompts)], new_tokens, min_tokens):
            first = first or time.perf_counter() - started
            text += delta
        elapsed = time.perf_counter() - started
        n = len(tokenizer.encode(text, add_special_tokens=False))
        samples["ttft"].append(first or elapsed)
        samples["tps"].append(n / elapsed)
        samples["decode_tps"].append((n - 1) / max(elapsed - (first or 0), 1e-6))
    return {m: statistics.median(v) for m, v in samples.items()}


WEIGHTS = {"fp32": "none", "4-bit": "auto"}


def run(levels: list[int], new_tokens: int, threads: int | None, weights: list[str], natural: bool, skip_start: bool) -> dict:
    import torch

    from core.generation.prompt import PASSAGE_LABEL
    from core.generation.transformers_backend import BatchedTransformersGenerator, TransformersGenerator

    if threads:
        torch.set_num_threads(threads)
    from core.devices import reserve_cores_for_decoding
    from core.retrieval.build import build_index

    decoding_threads = torch.get_num_threads()
    reserve_cores_for_decoding()  # as `askdesk serve`/`chat` do: only decoding threads use every core

    settings = get_settings()
    index_tmp = tempfile.TemporaryDirectory()
    build_index(settings, settings.kb_dir, Path(index_tmp.name) / "index")
    settings = settings.model_copy(update={"index_dir": Path(index_tmp.name) / "index"})
    min_tokens = 0 if natural else new_tokens
    results: dict = {"torch_threads": decoding_threads, "new_tokens": new_tokens, "device": "cpu",
                     "answer_length": "natural (ends at EOS)" if natural else f"fixed {new_tokens} tokens"}
    if not skip_start:
        results["start"] = warm_start(settings)
        s = results["start"]
        table("Start-up (fresh process)", ["what", "seconds"],
              [["first start (index + embedder + generator)", s["first_start_s"]],
               ["second start", s["second_start_s"]], ["generator alone, from cache", s["generator_load_s"]]])

    def make(cls, quantize, **kw):
        g = cls(settings.generator_model, "cpu", settings.cache_dir, banned_words=(PASSAGE_LABEL,), quantize=quantize, **kw)
        g.warm_up()
        return g

    plain0 = make(TransformersGenerator, WEIGHTS[weights[0]])
    _, tokenizer = plain0._loaded()
    prompts = grounded_prompts(settings, max(max(levels), 4))
    lengths = [len(plain0.encode(p)["input_ids"][0]) for p in prompts]
    results["prompt_tokens_mean"] = statistics.mean(lengths)
    print(f"prompts: {len(prompts)} grounded prompts, {statistics.mean(lengths):.0f} tokens on average "
          f"({min(lengths)}–{max(lengths)}); decoding threads {results['torch_threads']}; answers: {results['answer_length']}")

    # One path at a time, as a deployment runs it: `generate` with no scheduler thread alive, then
    # the scheduler, closed before the next weights (an idle scheduler's OpenMP team would slow
    # any other decoding thread; see core.devices.reserve_cores_for_decoding).
    rng = random.Random(7)
    arrivals_by_level = {level: sorted(rng.uniform(0, 1.0) for _ in range(level)) if level > 1 else [0.0] for level in levels}
    single: dict = {}
    results["concurrency"] = {}
    for w in weights:
        plain = make(TransformersGenerator, WEIGHTS[w])
        runs: dict = {}
        single_stream(plain, tokenizer, prompts, 8, rounds=1)  # warm-up
        single[f"generate ({w})"] = single_stream(plain, tokenizer, prompts, new_tokens, min_tokens=min_tokens)
        runs["one"] = {level: concurrent(plain, tokenizer, prompts[:level], new_tokens, arrivals_by_level[level], min_tokens)
                       for level in levels}
        batched = make(BatchedTransformersGenerator, WEIGHTS[w], max_batch=max(levels))
        single_stream(batched, tokenizer, prompts, 8, rounds=1)  # warm-up
        single[f"own loop ({w})"] = single_stream(batched, tokenizer, prompts, new_tokens, min_tokens=min_tokens)
        runs["batched"] = {level: concurrent(batched, tokenizer, prompts[:level], new_tokens, arrivals_by_level[level], min_tokens)
                           for level in levels}
        stats = batched.scheduler().stats()
        batched.scheduler().close()
        results.setdefault("scheduler_stats", {})[w] = stats
        rows = []
        results["concurrency"][w] = {}
        for level in levels:
            one, many = runs["one"][level], runs["batched"][level]
            same = sum(a == b for a, b in zip(one.pop("texts"), many.pop("texts")))
            results["concurrency"][w][level] = {"one_at_a_time": one, "batched": many, "identical_answers": same}
            for name, r in (("one at a time", one), ("batched", many)):
                rows.append([f"{level} × {name}", r["throughput_tok_s"], r["p50_latency_s"], r["p95_latency_s"],
                             r["p50_ttft_s"], r["max_gap_s"], f"{same}/{level}" if name == "batched" else ""])
            rows.append([f"{level}: batched / one", many["throughput_tok_s"] / one["throughput_tok_s"],
                         many["p50_latency_s"] / one["p50_latency_s"], many["p95_latency_s"] / one["p95_latency_s"],
                         "", "", ""])
        table(f"Concurrent questions arriving within 1 s ({results['answer_length']}, {w} weights)",
              ["run", "tok/s total", "p50 latency s", "p95 latency s", "p50 TTFT s", "longest pause s", "same text"], rows)
        print(f"scheduler ({w}): {stats}")
    if {"fp32", "4-bit"} <= set(results["concurrency"]):
        # The baseline is plain `generate` one question at a time (fp32, as transformers
        # loads the GGUF); the product's default is the scheduler on the 4-bit weights.
        plain_rows, default_rows = results["concurrency"]["fp32"], results["concurrency"]["4-bit"]
        results["default_vs_plain_generate"] = {
            level: default_rows[level]["batched"]["throughput_tok_s"] / plain_rows[level]["one_at_a_time"]["throughput_tok_s"]
            for level in levels}
        table("Default (scheduler, 4-bit) vs plain `generate` one at a time (fp32)",
              ["concurrent", "plain tok/s", "default tok/s", "×"],
              [[level, plain_rows[level]["one_at_a_time"]["throughput_tok_s"],
                default_rows[level]["batched"]["throughput_tok_s"], ratio]
               for level, ratio in results["default_vs_plain_generate"].items()])
    results["single_stream"] = single
    first = next(iter(single))
    table(f"Single stream ({results['answer_length']}, medians of 3)", ["path", "TTFT s", "tok/s", "decode tok/s", f"× {first}"],
          [[k, v["ttft"], v["tps"], v["decode_tps"], v["tps"] / single[first]["tps"]] for k, v in single.items()])
    save("generation_speed", results)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", nargs="+", type=int, default=[1, 4, 8, 16])
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--weights", nargs="+", choices=list(WEIGHTS), default=list(WEIGHTS),
                        help="fp32: the copy transformers makes of the GGUF; 4-bit: the file's own weights (default)")
    parser.add_argument("--natural", action="store_true", help="let answers end at end-of-sequence")
    parser.add_argument("--skip-start", action="store_true")
    args = parser.parse_args(argv)
    run(args.levels, args.new_tokens, args.threads, args.weights, args.natural, args.skip_start)


if __name__ == "__main__":
    main()
