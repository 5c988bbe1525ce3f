"""Initial schema: messages, message_events, dossiers, dossier_index, transfer_log.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oso_gateway.store.models import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("message_events", "transfer_log")


def upgrade() -> None:
    _messages()
    _message_events()
    _dossiers()
    _transfer_log()
    _append_only_triggers()


def _messages() -> None:
    op.create_table(
        "messages",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("our_oin", sa.String(20)),
        sa.Column("our_school", sa.String(6)),
        sa.Column("counterpart_oin", sa.String(20)),
        sa.Column("counterpart_school", sa.String(6)),
        sa.Column("endpoint", sa.String(500)),
        sa.Column("relates_to", sa.String(100)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("last_error_code", sa.String(12)),
        sa.Column("payload_size", sa.BigInteger),
        sa.Column("message_size", sa.BigInteger),
        sa.Column("payload_digest", sa.String(64)),
        sa.Column("signer_fingerprint", sa.String(64)),
        sa.Column("payload_key_id", sa.String(16)),
        sa.Column("payload_ciphertext", sa.LargeBinary),
        sa.Column("sealed", sa.LargeBinary),
        sa.Column("signature_value", sa.LargeBinary),
        sa.Column("receipt", sa.LargeBinary),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_messages_direction"),
        sa.CheckConstraint("attempts >= 0", name="ck_messages_attempts"),
    )
    op.create_index(
        "uq_messages_direction_message_id",
        "messages",
        ["direction", "message_id"],
        unique=True,
        sqlite_where=sa.text("status <> 'rejected'"),
        postgresql_where=sa.text("status <> 'rejected'"),
    )
    op.create_index("ix_messages_due", "messages", ["direction", "status", "next_attempt_at"])


def _message_events() -> None:
    op.create_table(
        "message_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "message_pk",
            BigId,
            sa.ForeignKey("messages.id", name="fk_message_events_message_pk_messages"),
            nullable=False,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer),
        sa.Column("error_code", sa.String(12)),
    )
    op.create_index("ix_message_events_message_pk", "message_events", ["message_pk"])


def _dossiers() -> None:
    op.create_table(
        "dossiers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "message_pk",
            BigId,
            sa.ForeignKey("messages.id", name="fk_dossiers_message_pk_messages"),
            nullable=False,
        ),
        sa.Column("sending_school", sa.String(6)),
        sa.Column("receiving_school", sa.String(6)),
        sa.Column("payload_digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("message_pk", name="uq_dossiers_message_pk"),
    )
    op.create_index("ix_dossiers_sending_school", "dossiers", ["sending_school"])
    op.create_index("ix_dossiers_receiving_school", "dossiers", ["receiving_school"])

    op.create_table(
        "dossier_index",
        sa.Column(
            "dossier_id",
            sa.String(36),
            sa.ForeignKey(
                "dossiers.id", name="fk_dossier_index_dossier_id_dossiers", ondelete="CASCADE"
            ),
            primary_key=True,
        ),
        sa.Column("name_hmac", sa.String(64)),
        sa.Column("birth_date_hmac", sa.String(64)),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_dossier_index_name_hmac", "dossier_index", ["name_hmac"])
    op.create_index("ix_dossier_index_birth_date_hmac", "dossier_index", ["birth_date_hmac"])


def _transfer_log() -> None:
    op.create_table(
        "transfer_log",
        sa.Column("seq", BigId, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.UniqueConstraint("hash", name="uq_transfer_log_hash"),
    )


def _append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION oso_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'oso-gateway: % is append-only', TG_TABLE_NAME; END $$"
        )
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION oso_refuse_change()"
            )
        elif dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'oso-gateway: {table} is append-only'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("transfer_log", "dossier_index", "dossiers", "message_events", "messages"):
        op.drop_table(table)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION oso_refuse_change()")
