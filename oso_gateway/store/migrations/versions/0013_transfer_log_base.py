"""Where the transfer log starts once its oldest events were pruned (``transfer_log_days``).

The retention purge removes a prefix of the hash chain; the last removed event's sequence number
and hash are recorded here first, so the first kept event still links to something and ``log
verify`` checks the chain from there. The table is append-only (one row per pruning step; the
base is the highest), and the transfer log's delete trigger now lets through exactly the events
up to that base: any other deletion is still refused, as every update is.

Revision ID: transfer_log_base_1
Revises: relates_to_index_1
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oso_gateway.store.models import BigId, UTCDateTime

revision = "transfer_log_base_1"
down_revision = "relates_to_index_1"
branch_labels = None
depends_on = None

_BASE = "COALESCE((SELECT MAX(through_seq) FROM transfer_log_base), 0)"


def upgrade() -> None:
    op.create_table(
        "transfer_log_base",
        sa.Column("through_seq", BigId, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("pruned_at", UTCDateTime(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER transfer_log_append_only ON transfer_log")
        op.execute(
            "CREATE TRIGGER transfer_log_append_only BEFORE UPDATE ON transfer_log "
            "FOR EACH ROW EXECUTE FUNCTION oso_refuse_change()"
        )
        op.execute(
            "CREATE FUNCTION oso_refuse_unrecorded_prune() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF OLD.seq <= {_BASE} THEN RETURN OLD; END IF; "
            "RAISE EXCEPTION 'oso-gateway: transfer_log is append-only beyond its recorded base'; "
            "END $$"
        )
        op.execute(
            "CREATE TRIGGER transfer_log_prune_only BEFORE DELETE ON transfer_log "
            "FOR EACH ROW EXECUTE FUNCTION oso_refuse_unrecorded_prune()"
        )
        op.execute(
            "CREATE TRIGGER transfer_log_base_append_only BEFORE UPDATE OR DELETE "
            "ON transfer_log_base FOR EACH ROW EXECUTE FUNCTION oso_refuse_change()"
        )
    else:
        op.execute("DROP TRIGGER transfer_log_no_delete")
        op.execute(
            "CREATE TRIGGER transfer_log_no_delete BEFORE DELETE ON transfer_log "
            f"WHEN OLD.seq > {_BASE} BEGIN SELECT RAISE(ABORT, "
            "'oso-gateway: transfer_log is append-only beyond its recorded base'); END"
        )
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER transfer_log_base_no_{verb.lower()} BEFORE {verb} "
                "ON transfer_log_base BEGIN SELECT RAISE(ABORT, "
                "'oso-gateway: transfer_log_base is append-only'); END"
            )


def downgrade() -> None:
    pruned = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM transfer_log_base")).scalar()
    if pruned:
        # Without its base a pruned log no longer verifies, here or after upgrading again.
        raise RuntimeError(
            "oso-gateway: the transfer log was pruned (transfer_log_base holds its base); "
            "a database from before migration transfer_log_base_1 cannot hold a pruned log"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER transfer_log_base_append_only ON transfer_log_base")
        op.execute("DROP TRIGGER transfer_log_prune_only ON transfer_log")
        op.execute("DROP FUNCTION oso_refuse_unrecorded_prune()")
        op.execute("DROP TRIGGER transfer_log_append_only ON transfer_log")
        op.execute(
            "CREATE TRIGGER transfer_log_append_only BEFORE UPDATE OR DELETE ON transfer_log "
            "FOR EACH ROW EXECUTE FUNCTION oso_refuse_change()"
        )
    else:
        op.execute("DROP TRIGGER transfer_log_no_delete")
        op.execute(
            "CREATE TRIGGER transfer_log_no_delete BEFORE DELETE ON transfer_log "
            "BEGIN SELECT RAISE(ABORT, 'oso-gateway: transfer_log is append-only'); END"
        )
    op.drop_table("transfer_log_base")
