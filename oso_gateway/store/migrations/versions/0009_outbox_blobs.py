"""An outbound message's payload and sealed envelope move from its row to ``outbox_blobs``.

The ``messages`` row of an outbound message is updated on every claim, lease heartbeat and
status change. SQLite rewrites a whole row on any update, so while the encrypted payload and the
latest sealed envelope (together more than twice the dossier) sat in it, each heartbeat cost
that much memory and disk writing. In their own table (one row per value, ``kind`` payload or
sealed) they are written once and read once per attempt. Existing values move over unchanged
(the payload stays encrypted under the same key and associated data).

Revision ID: outbox_blobs_1
Revises: privacy_data_keys_1
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oso_gateway.store.models import BigId

revision = "outbox_blobs_1"
down_revision = "privacy_data_keys_1"
branch_labels = None
depends_on = None

#: (kind, the column of ``messages`` it came from)
_MOVED = (("payload", "payload_ciphertext"), ("sealed", "sealed"))


def upgrade() -> None:
    op.create_table(
        "outbox_blobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("message_pk", BigId, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        # last: on SQLite a zeroblob in the last column is inserted without being written out
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("kind IN ('payload', 'sealed')", name="kind"),
    )
    op.create_index(
        "uq_outbox_blobs_message_pk_kind", "outbox_blobs", ["message_pk", "kind"], unique=True
    )
    for kind, column in _MOVED:
        op.execute(
            f"INSERT INTO outbox_blobs (message_pk, kind, data) "  # noqa: S608 - constants
            f"SELECT id, '{kind}', {column} FROM messages WHERE {column} IS NOT NULL "
            f"ORDER BY id"
        )
    # plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35): a batch rebuild of ``messages`` would
    # trip the message_events foreign key on a database that holds messages
    op.drop_column("messages", "payload_ciphertext")
    op.drop_column("messages", "sealed")


def downgrade() -> None:
    op.add_column("messages", sa.Column("payload_ciphertext", sa.LargeBinary))
    op.add_column("messages", sa.Column("sealed", sa.LargeBinary))
    for kind, column in _MOVED:
        op.execute(
            f"UPDATE messages SET {column} = (SELECT data FROM outbox_blobs "  # noqa: S608
            f"WHERE outbox_blobs.message_pk = messages.id AND outbox_blobs.kind = '{kind}')"
        )
    op.drop_index("uq_outbox_blobs_message_pk_kind", "outbox_blobs")
    op.drop_table("outbox_blobs")
