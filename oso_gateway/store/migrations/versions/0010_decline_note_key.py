"""A declined message's reason is kept encrypted under a data key of its own.

The reason a school's system gives when it declines a received dossier is free text (it may name
the pupil). It was kept in ``messages.note`` as typed. From now on ``note`` holds it encrypted
(AES-256-GCM, bound to the message by associated data) under a fresh data key named by the new
``note_data_key_id``; the retention purge destroys that key. Reasons already stored stay as they
are until ``oso-gateway keys rotate`` (its legacy step) encrypts them; a row whose
``note_data_key_id`` is empty holds its reason as typed.

Revision ID: decline_note_key_1
Revises: outbox_blobs_1
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "decline_note_key_1"
down_revision = "outbox_blobs_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("note_data_key_id", sa.String(36)))


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN (a batch rebuild of ``messages`` trips the foreign keys
    # that point at it). An encrypted reason stays as stored: the older code shows that text.
    op.drop_column("messages", "note_data_key_id")
