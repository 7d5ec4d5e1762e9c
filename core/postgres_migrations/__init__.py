"""Alembic migrations of askdesk's PostgreSQL schema (the SQLite schema migrates itself in core/store.py).

Applied by :func:`core.store_postgres.migrate` when a store opens (under an advisory lock, so
several workers starting at once apply each revision once), by ``askdesk db upgrade``, or with
the Alembic CLI: ``alembic -c core/postgres_migrations/alembic.ini upgrade head`` (the database
is ``ASKDESK_DATABASE_URL``). Revisions are numbered 0001, 0002, …: append one, never edit a
shipped one, and set :data:`core.store_postgres.HEAD_REVISION` to the new number.
"""
