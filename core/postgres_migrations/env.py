"""Alembic environment for askdesk's PostgreSQL schema.

The migrations are plain SQL (``op.execute``): there is no SQLAlchemy model, askdesk talks to
the database through psycopg. :func:`core.store_postgres.migrate` hands in a connection that
already holds the schema lock; the Alembic CLI gets one here from ``ASKDESK_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


def _from_settings() -> None:
    from core.config import Settings
    from core.store_postgres import migration_engine, schema_lock

    url = Settings().database_url
    if url is None:
        raise SystemExit("ASKDESK_DATABASE_URL is not set: it names the PostgreSQL database to migrate.")
    engine = migration_engine(url.get_secret_value())
    try:
        with engine.begin() as connection:
            schema_lock(connection)
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url="postgresql://", literal_binds=True, dialect_name="postgresql")
    with context.begin_transaction():
        context.run_migrations()
else:
    handed_in = context.config.attributes.get("connection")
    if handed_in is not None:
        _run(handed_in)
    else:
        _from_settings()
