"""A MessageID is unique per signer (inbound: per counterpart OIN), not globally.

Another trusted gateway that used a sender's MessageID first must not make that sender's
delivery fail as a reused MessageID (a MessageID is chosen by its sender, so only the pair
(signer, MessageID) identifies a message). The one unique index on (direction, message_id)
becomes two partial ones: outbound on message_id (our own ids, as before), inbound on
(counterpart_oin, message_id). Every existing row stays valid (each new key is weaker).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# the texts of oso_gateway.store.models (copied: a migration must not change with the models)
_OUT_NOT_REJECTED = "direction = 'out' AND status <> 'rejected'"
_IN_NOT_REJECTED = "direction = 'in' AND status <> 'rejected'"
_NOT_REJECTED = "status <> 'rejected'"


def upgrade() -> None:
    op.create_index(
        "uq_messages_out_message_id",
        "messages",
        ["message_id"],
        unique=True,
        sqlite_where=sa.text(_OUT_NOT_REJECTED),
        postgresql_where=sa.text(_OUT_NOT_REJECTED),
    )
    op.create_index(
        "uq_messages_in_counterpart_oin_message_id",
        "messages",
        ["counterpart_oin", "message_id"],
        unique=True,
        sqlite_where=sa.text(_IN_NOT_REJECTED),
        postgresql_where=sa.text(_IN_NOT_REJECTED),
    )
    op.drop_index("uq_messages_direction_message_id", table_name="messages")


def downgrade() -> None:
    # Fails (IntegrityError) while two signers share a MessageID: resolve those rows first.
    op.create_index(
        "uq_messages_direction_message_id",
        "messages",
        ["direction", "message_id"],
        unique=True,
        sqlite_where=sa.text(_NOT_REJECTED),
        postgresql_where=sa.text(_NOT_REJECTED),
    )
    op.drop_index("uq_messages_in_counterpart_oin_message_id", table_name="messages")
    op.drop_index("uq_messages_out_message_id", table_name="messages")
