"""A keyed hash of the pupil a request of ours asks for (``pull_requests.pupil_hmac``).

A school system that sent the same request twice without an Idempotency-Key (a retry after a
timeout, a double click) made two requests for one pupil at the old school, which then had to
decline one as ``duplicate-request``. The new school's requests now keep a keyed hash (the
keyring's lookup key) of the pupil's BSN or onderwijsnummer, never the number itself, so that
a second open request for the same pupil to the same old school is refused (OSO-E486). Rows
made before keep NULL and are not matched; the holder's rows keep NULL too.

Revision ID: request_pupil_hmac_1
Revises: inzage_previewed_1
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "request_pupil_hmac_1"
down_revision = "inzage_previewed_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pull_requests", sa.Column("pupil_hmac", sa.String(64), nullable=True))
    op.create_index(
        "ix_pull_requests_pupil_hmac",
        "pull_requests",
        ["pupil_hmac", "our_school", "counterpart_school"],
    )


def downgrade() -> None:
    op.drop_index("ix_pull_requests_pupil_hmac", table_name="pull_requests")
    with op.batch_alter_table("pull_requests") as batch:
        batch.drop_column("pupil_hmac")
