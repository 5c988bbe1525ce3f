"""The inzage a push went under (``disclosures.inzage_pk``).

"One inzage, one push" asked whether a push of the pupil was queued at or after the inzage was
recorded: two times written by the clocks of two processes (the API's, the pushing one's, maybe
on two hosts), wrong by their skew. A push's disclosure record now names the inzage record it
went under, and a push is refused when another one names the same inzage.

Records made before cannot be linked here (the disclosure and the inzage name the pupil by keyed
hashes of two kinds, and a migration holds no key): they are marked ``INZAGE_UNLINKED`` (0) and
still counted by time, as before, against the inzage records of their pupil.

Revision ID: push_inzage_link_1
Revises: request_pupil_hmac_1
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "push_inzage_link_1"
down_revision = "request_pupil_hmac_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("disclosures", sa.Column("inzage_pk", sa.BigInteger(), nullable=True))
    op.execute("UPDATE disclosures SET inzage_pk = 0")  # INZAGE_UNLINKED


def downgrade() -> None:
    with op.batch_alter_table("disclosures") as batch:
        batch.drop_column("inzage_pk")
