"""Privacy lifecycle: per-item data keys (crypto-shredding), purge marks, disclosures, objections.

Existing rows keep their content encrypted directly under the single storage key (``key_id``,
no data key): they still open, and ``oso-gateway keys rotate`` re-encrypts them under data keys
of their own (a migration cannot: it never holds the key).

Revision ID: privacy_data_keys_1
Revises: console_sessions_1
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oso_gateway.store.models import BigId, UTCDateTime

revision = "privacy_data_keys_1"
down_revision = "console_sessions_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kek_id", sa.String(16), nullable=False),
        sa.Column("school", sa.String(6)),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_data_keys_kek_id", "data_keys", ["kek_id"])
    op.add_column("messages", sa.Column("payload_data_key_id", sa.String(36)))
    op.add_column("messages", sa.Column("purged_at", UTCDateTime()))
    op.add_column("dossiers", sa.Column("data_key_id", sa.String(36)))
    op.add_column("dossiers", sa.Column("fetched_at", UTCDateTime()))
    op.add_column("dossiers", sa.Column("acknowledged_at", UTCDateTime()))
    op.add_column("dossier_index", sa.Column("bsn_hmac", sa.String(64)))
    op.add_column("dossier_index", sa.Column("data_key_id", sa.String(36)))
    op.create_index("ix_dossier_index_bsn_hmac", "dossier_index", ["bsn_hmac"])
    op.create_table(
        "disclosures",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("sending_school", sa.String(6)),
        sa.Column("recipient_school", sa.String(6)),
        sa.Column("recipient_name", sa.String(200)),
        sa.Column("recipient_oin", sa.String(20)),
        sa.Column("bsn_hmac", sa.String(64)),
        sa.Column("categories_sent", sa.Text, nullable=False),
        sa.Column("categories_withheld", sa.Text, nullable=False),
        sa.Column("inzage", sa.Text),
        sa.Column("payload_digest", sa.String(64)),
        sa.Column("receipt_digest", sa.String(64)),
        sa.Column("prepared_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime()),
        sa.UniqueConstraint("message_id", name="uq_disclosures_message_id"),
    )
    op.create_index("ix_disclosures_bsn_hmac", "disclosures", ["bsn_hmac"])
    op.create_table(
        "objections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("school", sa.String(6), nullable=False),
        sa.Column("bsn_hmac", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_objections_bsn_hmac", "objections", ["bsn_hmac"])
    op.create_index(
        "uq_objections_pupil_category",
        "objections",
        ["school", "bsn_hmac", "category"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("objections")
    op.drop_table("disclosures")
    op.drop_index("ix_dossier_index_bsn_hmac", "dossier_index")
    for table, column in (
        ("dossier_index", "data_key_id"),
        ("dossier_index", "bsn_hmac"),
        ("dossiers", "acknowledged_at"),
        ("dossiers", "fetched_at"),
        ("dossiers", "data_key_id"),
        ("messages", "purged_at"),
        ("messages", "payload_data_key_id"),
    ):
        op.drop_column(table, column)
    op.drop_table("data_keys")
