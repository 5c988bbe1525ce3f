"""A table of values the store checks its configuration against (``store_checks``).

Objections and the search index are found by a keyed hash of the pupil's number or name, under
the keyring's lookup key. With another storage key (the wrong key file restored, a keyring
lost), every look-up found nothing, silently: a parents' objection no longer withheld its
category. The keyed hash of a fixed text, stored once, lets the gateway refuse such a key.

Revision ID: store_checks_1
Revises: transfer_log_base_1
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "store_checks_1"
down_revision = "transfer_log_base_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_checks",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_checks")
