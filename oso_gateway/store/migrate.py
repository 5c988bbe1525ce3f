"""Schema migrations (Alembic, configured in code: no alembic.ini at runtime)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from oso_gateway.errors import SchemaNotCurrent
from oso_gateway.store.engine import unavailable_as_typed_error
from oso_gateway.store.presence import exclusive

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration this version of the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None: empty database, never upgraded)."""
    with unavailable_as_typed_error(), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (creates the tables on an empty database).
    ``SchemaNotCurrent`` (E503) for a database a newer oso-gateway migrated (it was alembic's
    traceback: an operator's rollback walkthrough). ``GatewayRunning`` (E563) while gateway
    processes run on the database (``presence``): the schema is not migrated under them (a
    database already at the head is left as it is, whatever runs)."""
    with unavailable_as_typed_error():
        current = current_revision(engine)
    refuse_newer(current, head_revision())
    if revision == "head" and current == head_revision():
        return  # nothing to migrate: running processes are no reason to refuse
    with exclusive(engine), unavailable_as_typed_error(), engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def is_newer(current: str | None) -> bool:
    """Whether a database at ``current`` was migrated by a newer oso-gateway (a revision this
    version does not know)."""
    return current is not None and current != head_revision() and not _known(current)


def refuse_newer(current: str | None, head: str) -> None:
    """``SchemaNotCurrent`` (E503) when a newer oso-gateway migrated the database: going back
    is a restore of the backup taken before the upgrade, with the release it was taken with."""
    if is_newer(current):
        raise SchemaNotCurrent(
            f"the database is at revision {current}, which this gateway does not know "
            f"(it needs {head}): the database was migrated by a newer oso-gateway; to go back, "
            "restore the backup taken before that upgrade"
        )


def check_schema_current(engine: Engine) -> None:
    """Raise ``SchemaNotCurrent`` (OSO-E503) unless the database is at the code's head revision."""
    current = current_revision(engine)
    head = head_revision()
    refuse_newer(current, head)
    if current != head:
        state = "empty (no schema)" if current is None else f"at revision {current}"
        raise SchemaNotCurrent(
            f"the database is {state}, this gateway needs revision {head}: "
            "run `oso-gateway db upgrade`"
        )


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False
