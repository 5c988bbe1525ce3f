"""The version of the dossier an inzage was of (``inzage_records.previewed``).

An inzage recorded with the version its preview showed (16 hex digits) is of that version only:
for a request, a dossier handed in again since is not released; for a push, another dossier of
the pupil is not let through. Records made before keep none: they hold as they did.

Revision ID: inzage_previewed_1
Revises: store_checks_1
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "inzage_previewed_1"
down_revision = "store_checks_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inzage_records", sa.Column("previewed", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inzage_records") as batch:
        batch.drop_column("previewed")
