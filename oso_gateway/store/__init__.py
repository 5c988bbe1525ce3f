"""oso_gateway.store: SQLAlchemy models, repositories, Alembic migrations, at-rest encryption.

Typical wiring (the server / sender workers)::

    engine = create_store_engine(settings.database_url)
    check_schema_current(engine)           # refuse to start on an old schema
    store = Store(engine, cipher_from_settings(settings))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, insert, select, update

from oso_gateway.errors import ConfigError, DatabaseMissing
from oso_gateway.store.api_clients import (  # also puts its tables on Base.metadata
    ApiClientStore,
    ApiIdempotency,
)
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
        _refuse_a_lost_key(settings)
        settings.require_storage_key()  # raises the ConfigError naming where to set it
    if check_schema:  # a caller that skips the schema check may open a database being made
        require_existing_database(settings.database_url, config_file=settings.config_file)
    engine = create_store_engine(settings.database_url)
    if check_schema:
        check_schema_current(engine)
    store = Store(engine, AtRestCipher(provider=provider) if provider is not None else None)
    if check_schema and provider is not None:
        try:
            check_lookup_key(store)
        except BaseException:
            engine.dispose()
            raise
    return store


#: what ``check_lookup_key`` hashes (a fixed text: the check tells keys apart, nothing else)
_LOOKUP_CHECK = ("store-check", "the lookup key of this database")


def check_lookup_key(store: Store) -> None:
    """``ConfigError`` when the configured keys' lookup key is not the one this database's
    keyed hashes were made with (objections, the search index): with another key every
    look-up found nothing, silently, and a parents' objection no longer withheld its category
    (a security review). The first store to open a database records its check value."""
    from sqlalchemy.exc import IntegrityError

    from oso_gateway.store import models as m

    expected = store.cipher.lookup_hash(*_LOOKUP_CHECK)
    found = _check_value(store)
    if found is None:
        try:
            with store.engine.begin() as connection:
                connection.execute(insert(m.StoreCheck).values(name="lookup_key", value=expected))
            return
        except IntegrityError:  # another process recorded it at the same moment: compare
            found = _check_value(store)
    if found == expected:
        return
    with store.engine.begin() as connection:
        held = held_keys(connection)
        if not (held.ids or held.keyed_hashes):
            # nothing made with the old key (a new install whose key was replaced before any
            # use): the new key's value stands
            connection.execute(
                update(m.StoreCheck).where(m.StoreCheck.name == "lookup_key").values(value=expected)
            )
            return
    raise ConfigError(
        "the configured storage keys are not the ones this database's keyed hashes were made "
        "with (the parents' objections, the search index would not be found): restore the "
        "keyring (storage.keyring_file) and key file that go with this database"
    )


def _check_value(store: Store) -> str | None:
    from oso_gateway.store import models as m

    with store.engine.connect() as connection:
        return connection.execute(
            select(m.StoreCheck.value).where(m.StoreCheck.name == "lookup_key")
        ).scalar_one_or_none()


def _refuse_a_lost_key(settings: Settings) -> None:
    """When the configured key file is missing but the database already holds data wrapped
    under a storage key, say so: ``db keygen`` (what the plain error suggests) would make a key
    that cannot read any of it."""
    missing = settings.missing_storage_key_file
    if missing is None:
        return
    held = stored_key_ids(settings.database_url)
    if held.ids or held.keyed_hashes:
        under = (
            f"encrypted under storage key id {', '.join(held.ids)}"
            if held.ids
            else "found by hashes keyed with the storage key (parents' objections)"
        )
        raise ConfigError(
            f"storage.key_file {missing} does not exist, and the database holds data {under}: "
            "restore that key file, and the keyring (storage.keyring_file) when keys were "
            "rotated, from the backup that goes with this database (a new key from "
            "`oso-gateway db keygen` cannot read, or find, what is stored)"
        )


@dataclass(frozen=True)
class HeldKeys:
    """What in a database needs the storage key (``stored_key_ids``)."""

    #: the ids of the keys that wrap its data keys and encrypt its rows (the first few)
    ids: tuple[str, ...] = ()
    #: no key id, but rows found by a keyed hash of the storage key (parents' objections): a
    #: new key would silently find none of them
    keyed_hashes: bool = False


def stored_key_ids(url: str, *, most: int = 3) -> HeldKeys:
    """What in the database at ``url`` needs the storage key: at most ``most`` key ids, or
    else whether it holds rows found by a keyed hash. Nothing when there is no such database
    or schema yet. Reads only; never creates a SQLite file."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        require_existing_database(url, config_file=None)
    except DatabaseMissing:
        return HeldKeys()
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return held_keys(connection, most=most)
    except SQLAlchemyError:  # no schema yet, or no database to reach: nothing to protect
        return HeldKeys()
    finally:
        engine.dispose()


def held_keys(connection: Connection, *, most: int = 3) -> HeldKeys:
    """``stored_key_ids`` over an open connection. Keyed hashes with no key id: the parents'
    objections, a push's inzage records and the school API's Idempotency-Keys."""
    from sqlalchemy import union

    from oso_gateway.store import models as m

    key_columns = (
        m.DataKeyRow.kek_id,
        m.Dossier.key_id,
        m.DossierIndex.key_id,
        m.PullRequest.key_id,
        m.InzageRecord.key_id,
        m.Message.payload_key_id,
    )
    ids = sorted(
        {
            str(key_id)
            for (key_id,) in connection.execute(
                union(*(select(c.label("key_id")).distinct() for c in key_columns))
            )
            if key_id
        }
    )
    if ids:
        return HeldKeys(ids=tuple(ids[:most]))
    keyed = (m.Objection.id, m.InzageRecord.id, ApiIdempotency.message_pk)
    found = any(connection.execute(select(c).limit(1)).first() for c in keyed)
    return HeldKeys(keyed_hashes=found)


def cipher_from_settings(settings: Settings) -> AtRestCipher:
    """The at-rest cipher over the configured key provider (``ConfigError`` without one)."""
    provider = provider_from_settings(settings)
    if provider is None:
        settings.require_storage_key()
        raise AssertionError("unreachable")  # pragma: no cover
    return AtRestCipher(provider=provider)
