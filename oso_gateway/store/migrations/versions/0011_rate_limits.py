"""Rate-limit counters in the database, shared by every process and machine on it.

The school API's per-client limit and the console's login limits were counted in each process's
memory, so ``serve --workers N`` (and N machines on one PostgreSQL) allowed N times the limit.
One row per limiter key (its SHA-256) and open window.

Revision ID: rate_limits_1
Revises: decline_note_key_1
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rate_limits_1"
down_revision = "decline_note_key_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_ends", sa.Float(), nullable=False),
    )
    op.create_index("ix_rate_limit_counters_window_ends", "rate_limit_counters", ["window_ends"])


def downgrade() -> None:
    op.drop_index("ix_rate_limit_counters_window_ends", table_name="rate_limit_counters")
    op.drop_table("rate_limit_counters")
