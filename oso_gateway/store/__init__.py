"""oso_gateway.store: SQLAlchemy models, repositories, Alembic migrations, at-rest encryption.

Typical wiring (the server / sender workers)::

    engine = create_store_engine(settings.database_url)
    check_schema_current(engine)           # refuse to start on an old schema
    store = Store(engine, cipher_from_settings(settings))
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from oso_gateway.errors import DatabaseMissing
from oso_gateway.store.api_clients import ApiClientStore  # also puts its tables on Base.metadata
from oso_gateway.store.crypto import AtRestCipher
from oso_gateway.store.engine import create_store_engine
from oso_gateway.store.keyring import KeyProvider, LocalKeyProvider, provider_from_settings
from oso_gateway.store.migrate import check_schema_current, current_revision, head_revision, upgrade
from oso_gateway.store.operators import OperatorStore  # also puts its tables on Base.metadata
from oso_gateway.store.rate_limits import RateLimitCounters  # also puts its table on Base.metadata
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
    "ApiClientStore",
    "AtRestCipher",
    "Duplicate",
    "EventRecord",
    "Imported",
    "KeyProvider",
    "LocalKeyProvider",
    "MessageRecord",
    "OperatorStore",
    "PupilFacts",
    "RateLimitCounters",
    "Store",
    "check_schema_current",
    "cipher_from_settings",
    "create_store_engine",
    "current_revision",
    "head_revision",
    "open_store",
    "require_existing_database",
    "upgrade",
]


def require_existing_database(url: str, *, config_file: Path | None) -> None:
    """``DatabaseMissing`` (E560) when ``url`` is a SQLite file that does not exist: a command
    that reads the store must not create an empty database (e.g. run without ``--config``) and
    then report that nothing matches."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return
    if database.startswith("file:") or Path(database).expanduser().exists():
        return
    given = f"--config {config_file}" if config_file else "no --config given"
    raise DatabaseMissing(
        f"no database at {database} ({given}): pass the gateway's --config, or create the "
        f"database with `oso-gateway db upgrade` and the same configuration"
    )


def open_store(settings: Settings, *, check_schema: bool = True, require_key: bool = True) -> Store:
    """Engine + schema check + at-rest cipher from the settings.

    ``require_key``: fail now (``ConfigError``) rather than at the first dossier when no storage
    key is configured; pass False for tools that only read statuses.
    """
    provider = provider_from_settings(settings)
    if provider is None and require_key:
        settings.require_storage_key()  # raises the ConfigError naming where to set it
    if check_schema:  # a caller that skips the schema check may open a database being made
        require_existing_database(settings.database_url, config_file=settings.config_file)
    engine = create_store_engine(settings.database_url)
    if check_schema:
        check_schema_current(engine)
    return Store(engine, AtRestCipher(provider=provider) if provider is not None else None)


def cipher_from_settings(settings: Settings) -> AtRestCipher:
    """The at-rest cipher over the configured key provider (``ConfigError`` without one)."""
    provider = provider_from_settings(settings)
    if provider is None:
        settings.require_storage_key()
        raise AssertionError("unreachable")  # pragma: no cover
    return AtRestCipher(provider=provider)
