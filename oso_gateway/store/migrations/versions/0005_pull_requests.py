"""The pull workflow: dossier requests on either side, their events, and inzage records.

Revision ID: pull_requests_1
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oso_gateway.store.models import BigId, UTCDateTime

revision = "pull_requests_1"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pull_requests",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("side", sa.String(10), nullable=False),
        sa.Column("request_id", sa.String(100), nullable=False),
        sa.Column("our_school", sa.String(6), nullable=False),
        sa.Column("counterpart_school", sa.String(6), nullable=False),
        sa.Column("counterpart_oin", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_date", sa.String(10), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("ready_by", sa.String(10)),
        sa.Column("decline_reason", sa.String(30)),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("pupil_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("decline_text_ciphertext", sa.LargeBinary),
        sa.Column("held_ciphertext", sa.LargeBinary),
        sa.Column("delivery_message_id", sa.String(100)),
        sa.Column("name_warning", sa.Boolean, nullable=False),
        sa.Column("last_error_code", sa.String(12)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("side IN ('requester', 'holder')", name="ck_pull_requests_side"),
    )
    op.create_index(
        "uq_pull_requests_side_counterpart_oin_request_id",
        "pull_requests",
        ["side", "counterpart_oin", "request_id"],
        unique=True,
    )
    op.create_index("ix_pull_requests_status", "pull_requests", ["side", "status", "deadline"])
    op.create_table(
        "pull_request_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "request_pk",
            BigId,
            sa.ForeignKey(
                "pull_requests.id", name="fk_pull_request_events_request_pk_pull_requests"
            ),
            nullable=False,
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("code", sa.String(40)),
    )
    op.create_index("ix_pull_request_events_request_pk", "pull_request_events", ["request_pk"])
    op.create_table(
        "inzage_records",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("school", sa.String(6), nullable=False),
        sa.Column(
            "request_pk",
            BigId,
            sa.ForeignKey("pull_requests.id", name="fk_inzage_records_request_pk_pull_requests"),
        ),
        sa.Column("pupil_hmac", sa.String(64)),
        sa.Column("inzage_date", sa.String(10)),
        sa.Column("how", sa.String(20)),
        sa.Column("zienswijze", sa.Boolean, nullable=False),
        sa.Column("waived", sa.Boolean, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("zienswijze_ciphertext", sa.LargeBinary),
        sa.Column("waiver_ciphertext", sa.LargeBinary),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_inzage_records_request_pk", "inzage_records", ["request_pk"])
    op.create_index("ix_inzage_records_pupil_hmac", "inzage_records", ["pupil_hmac"])


def downgrade() -> None:
    op.drop_table("inzage_records")
    op.drop_table("pull_request_events")
    op.drop_table("pull_requests")
