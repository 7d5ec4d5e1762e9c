"""Learned Q&A, and the escalations it is drafted from, carry their knowledge-base scope (SQLite v4).

The scope is the name the assistant resolved for the conversation the entry came from; an
approved entry is written into that scope's knowledge base only. ``NULL`` (rows from before
this revision, or the CLI without ``--scope``) means the default scope.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE learned_qa ADD COLUMN scope TEXT;\nALTER TABLE escalations ADD COLUMN scope TEXT;\n")


def downgrade() -> None:
    op.execute("ALTER TABLE escalations DROP COLUMN scope;\nALTER TABLE learned_qa DROP COLUMN scope;\n")
