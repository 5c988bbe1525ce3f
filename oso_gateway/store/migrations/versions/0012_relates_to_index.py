"""An index on the messages a pull request's messages relate to (``wsa:RelatesTo``).

Subject access and erasure look up the outgoing messages of each request that names a pupil
(its answers and deliveries) by the request id; without the index that scanned the whole
messages table on every look-up.

Revision ID: relates_to_index_1
Revises: rate_limits_1
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "relates_to_index_1"
down_revision = "rate_limits_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_direction_relates_to", "messages", ["direction", "relates_to"])


def downgrade() -> None:
    op.drop_index("ix_messages_direction_relates_to", table_name="messages")
