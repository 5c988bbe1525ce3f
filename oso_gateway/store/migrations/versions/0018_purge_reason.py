"""What erased a message's or a request's content (``messages.purge_reason``,
``pull_requests.purge_reason``): ``retention`` (the retention purge) or ``erasure`` (a subject
erasure, ``oso-gateway subject erase``).

The console said "retention purge" of every purged transfer, also after a subject erasure (an
administrator's walkthrough). Rows purged before this migration keep none: the console words
them neutrally.

Revision ID: purge_reason_1
Revises: push_inzage_link_1
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "purge_reason_1"
down_revision = "push_inzage_link_1"
branch_labels = None
depends_on = None

_TABLES = ("messages", "pull_requests")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("purge_reason", sa.String(10), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN (a batch rebuild of ``messages`` trips the foreign keys
    # that point at it)
    for table in _TABLES:
        op.drop_column(table, "purge_reason")
