"""oso_gateway.store: SQLAlchemy models, repositories, Alembic migrations, at-rest encryption.

Typical wiring (the server / sender workers)::

    engine = create_store_engine(settings.database_url)
    check_schema_current(engine)           # refuse to start on an old schema
    store = Store(engine, AtRestCipher(settings.require_storage_key()))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oso_gateway.store.crypto import AtRestCipher
from oso_gateway.store.engine import create_store_engine
from oso_gateway.store.migrate import check_schema_current, current_revision, head_revision, upgrade
from oso_gateway.store.operators import OperatorStore  # also puts its tables on Base.metadata
from oso_gateway.store.repository import (
    Duplicate,
    EventRecord,
    Imported,
    MessageRecord,
    PupilFacts,
    Store,
)

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.config import Settings

__all__ = [
    "AtRestCipher",
    "Duplicate",
    "EventRecord",
    "Imported",
    "MessageRecord",
    "OperatorStore",
    "PupilFacts",
    "Store",
    "check_schema_current",
    "create_store_engine",
    "current_revision",
    "head_revision",
    "open_store",
    "upgrade",
]


def open_store(settings: Settings, *, check_schema: bool = True, require_key: bool = True) -> Store:
    """Engine + schema check + at-rest cipher from the settings.

    ``require_key``: fail now (``ConfigError``) rather than at the first dossier when no storage
    key is configured; pass False for tools that only read statuses.
    """
    key = settings.require_storage_key() if require_key else settings.storage_key
    engine = create_store_engine(settings.database_url)
    if check_schema:
        check_schema_current(engine)
    return Store(engine, AtRestCipher(key) if key is not None else None)
