"""Outbound messages keep the SignatureValue of every envelope sent, not only the latest.

A receipt may confirm an earlier attempt's SignatureValue (the original receipt of a delivery
whose answer was lost before we re-sealed); it must never be accepted when it confirms one we
did not make (that would accept a receipt for an envelope we never sent). Existing rows start
with their latest SignatureValue.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import base64

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("signature_values", sa.Text))
    messages = sa.table(
        "messages",
        sa.column("id", sa.BigInteger),
        sa.column("signature_value", sa.LargeBinary),
        sa.column("signature_values", sa.Text),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(messages.c.id, messages.c.signature_value).where(
            messages.c.signature_value.is_not(None)
        )
    ).all()
    for pk, value in rows:
        bind.execute(
            messages.update()
            .where(messages.c.id == pk)
            .values(signature_values=base64.b64encode(value).decode("ascii"))
        )


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35): a batch rebuild of ``messages`` would
    # trip the message_events foreign key on a database that holds messages
    op.drop_column("messages", "signature_values")
