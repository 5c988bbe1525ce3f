"""Operator console: server-side sessions (revocable: logout, an admin, removing the operator).

Revision ID: console_sessions_1
Revises: school_api
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oso_gateway.store.models import UTCDateTime

revision = "console_sessions_1"
down_revision = "school_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("end_reason", sa.String(20)),
    )
    op.create_index("ix_console_sessions_operator", "console_sessions", ["operator"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_operator", table_name="console_sessions")
    op.drop_table("console_sessions")
