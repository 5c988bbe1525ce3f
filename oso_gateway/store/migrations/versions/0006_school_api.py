"""The school API: API clients, idempotency keys, inbox/outbox fields, duplicates.

* ``messages``: ``client_id`` (the API client that submitted an outbound message), ``categories``
  (the categorie_uitlevering keys the payload holds, comma-separated), ``duplicate_of`` (the row
  an inbound duplicate dossier or refused outbound duplicate points to), ``note`` (a decline
  reason, kept for audit; never logged), and an index on ``(direction, payload_digest)`` for
  duplicate detection.
* ``api_clients``: one row per school-system credential: its id, a name, the argon2id hash of
  its secret, the schools (BRIN + vestiging) it may act for, created / revoked times.
* ``api_idempotency``: (client, Idempotency-Key) → the request body's digest and the message.
* ``operators.schools``: an operator scoped to schools (empty: every school).

Revision ID: school_api
Revises: pull_requests_1
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "school_api"
down_revision = "pull_requests_1"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("messages", sa.Column("client_id", sa.String(40)))
    op.add_column("messages", sa.Column("categories", sa.String(400)))
    op.add_column("messages", sa.Column("duplicate_of", _BIG_ID))
    op.add_column("messages", sa.Column("note", sa.Text))
    op.create_index(
        "ix_messages_direction_payload_digest", "messages", ["direction", "payload_digest"]
    )
    op.add_column("operators", sa.Column("schools", sa.Text))
    op.create_table(
        "api_clients",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("schools", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
    )
    op.create_table(
        "api_idempotency",
        sa.Column("client_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("message_pk", _BIG_ID, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_idempotency")
    op.drop_table("api_clients")
    op.drop_column("operators", "schools")
    op.drop_index("ix_messages_direction_payload_digest", table_name="messages")
    for column in ("note", "duplicate_of", "categories", "client_id"):
        op.drop_column("messages", column)
