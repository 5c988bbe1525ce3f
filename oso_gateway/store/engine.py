"""Engine factory: SQLite (embedded default) or PostgreSQL (psycopg 3), and error mapping.

SQLite runs in WAL mode with ``synchronous = FULL``, a busy timeout and foreign keys on.
Python's sqlite3 module is put in autocommit mode and we emit ``BEGIN`` ourselves (the
SQLAlchemy-documented recipe), so that write transactions can start with ``BEGIN IMMEDIATE``:
they take the write lock up front and then wait (busy timeout) instead of failing half-way when
another writer got there first.

Database unavailability (connection refused, locked too long, pool exhausted) becomes
``StoreUnavailable`` (OSO-E502, transient): the SOAP endpoint answers 503 and the sender retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session

from oso_gateway.errors import ConfigError, StoreUnavailable

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: seconds a SQLite writer waits for the lock before giving up (then: StoreUnavailable)
SQLITE_BUSY_TIMEOUT_MS = 15_000
#: execution option: start this engine's SQLite transactions with BEGIN IMMEDIATE
_BEGIN_OPTION = "oso_sqlite_begin"


def normalise_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` means psycopg 3."""
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        # The URL may hold a password: do not echo it.
        raise ConfigError("database_url is not a valid database URL") from None
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ConfigError(
            f"database_url: unsupported database {parsed.get_backend_name()!r} "
            "(use sqlite:/// or postgresql+psycopg://)"
        )
    return parsed


def write_transaction(engine: Engine, work: Callable[[Session], _T]) -> _T:
    """``work(session)`` in one write transaction on ``engine`` (the store's writer engine);
    a database that cannot be reached is ``StoreUnavailable``."""
    with unavailable_as_typed_error(), Session(engine) as session, session.begin():
        return work(session)


def read_transaction(engine: Engine, work: Callable[[Session], _T]) -> _T:
    """``work(session)`` in one read transaction on ``engine``."""
    with unavailable_as_typed_error(), Session(engine) as session, session.begin():
        return work(session)


def is_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is the database refusing a row that breaks a unique or foreign key (a
    concurrent writer got there first)."""
    return isinstance(exc, sa_exc.IntegrityError)


def shown_url(url: str) -> str:
    """The database URL with its password hidden (for messages and logs)."""
    return make_url(url).render_as_string(hide_password=True)


def create_store_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (SQLite file, created with its directory, or PostgreSQL).

    Bound parameters are kept out of SQLAlchemy's error texts (and so out of any traceback a
    worker logs): they can hold personal data, such as a decline note.
    """
    parsed = normalise_url(url)
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _tighten(database: Path) -> None:
    """An existing database file (and its -wal and -shm) that the group or others may read,
    made its owner's alone (the owner keeps its access): files made before the gateway created
    them 0600, or copied in by hand, stay readable otherwise. Fails closed: a file that cannot
    be tightened (not ours, a read-only mount) is a ConfigError naming the command that fixes
    it. The directory is left alone: it may be one the operator shares (a home directory); a
    new data directory is created 0700."""
    for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        try:
            info = path.stat()
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o077:
            continue
        mode = stat.S_IMODE(info.st_mode) & 0o700
        try:
            path.chmod(mode)
        except OSError:
            raise ConfigError(
                f"{path} is readable by others and cannot be made private: "
                f"chmod 600 {path} (as its owner), then start again"
            ) from None
        log.warning("%s was readable by others: now mode %o, its owner's alone", path.name, mode)


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created here, its owner's alone: SQLite gives the -wal and -shm files the database
        # file's mode, and left to itself would create it 0644 (under the usual umask).
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            _tighten(path)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # Every COMMIT syncs the WAL: a transaction we answered for (a receipt) survives a
            # power loss. Said explicitly, since builds may default WAL mode to NORMAL.
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Deleted content is overwritten with zeros, not left in free pages: the retention
            # purge (crypto-shredding) must leave no wrapped data key or ciphertext behind.
            cursor.execute("PRAGMA secure_delete = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def checkpoint_wal(engine: Engine, *, wait_ms: int) -> bool:
    """SQLite: copy the WAL into the database file and truncate the WAL, so that no earlier
    image of a page whose content was deleted (a destroyed data key, a ciphertext; deleted cells
    are zeroed, ``secure_delete``) stays in either file. Returns False when a reader or writer
    kept it from finishing within ``wait_ms`` (it holds new writers while it waits): a later
    checkpoint, or the last connection's close, then does it. Elsewhere (PostgreSQL) nothing to
    do: True.
    """
    if engine.dialect.name != "sqlite":
        return True
    with unavailable_as_typed_error(), engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_ms)}")
        try:
            row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    return row is None or not row[0]  # (busy, WAL frames, frames checkpointed)


#: how long a checkpoint after a deletion waits for other readers and writers (ms): it blocks new
#: writers while it waits, so a long reader must not hold every write (receipts, rate-limit
#: counts) for the whole busy timeout
CHECKPOINT_WAIT_MS = 200


def checkpoint_after_delete(engine: Engine, *, wait_ms: int = CHECKPOINT_WAIT_MS) -> bool:
    """``checkpoint_wal`` after an operation that deleted content has committed: a failure is
    logged, not raised (the deletion stands; the next checkpoint, or the last connection's
    close, completes it)."""
    try:
        return checkpoint_wal(engine, wait_ms=wait_ms)
    except StoreUnavailable as exc:
        log.warning("WAL checkpoint after a deletion failed: %s (retried later)", exc.code)
        return False


def writer(engine: Engine) -> Engine:
    """The same engine (and pool), but SQLite transactions take the write lock when they begin."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
    return engine


def advisory_xact_lock(session: Session, kind: str, *parts: str) -> None:
    """On PostgreSQL, a transaction-scoped advisory lock on the hash of ``kind`` and ``parts``:
    transactions that take the same one run their checks one after the other (elsewhere
    nothing: SQLite's write transactions, ``BEGIN IMMEDIATE``, are queued already)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256("\x00".join((kind, *parts)).encode("utf-8")).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def lock_file_beside(engine: Engine, suffix: str) -> Path | None:
    """``<database><suffix>`` beside a SQLite database file, for an ``flock`` (None: not a
    SQLite file, or no ``fcntl``: PostgreSQL, in-memory, a URI database)."""
    database = engine.url.database or ""
    if (
        fcntl is None
        or engine.dialect.name != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or engine.url.query.get("uri")
    ):
        return None
    # the real path: a symlink to the database file names the same lock (a review)
    path = Path(os.path.realpath(Path(database).expanduser()))
    return path.with_name(path.name + suffix)


def writer_gate(engine: Engine) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """A lock that queues this database's writers across processes (SQLite files only).

    SQLite's busy handler polls the write lock in growing sleeps (up to 100 ms), so a process
    that waits for another one's transaction often sleeps long after the lock came free. Writers
    that first take an exclusive ``flock`` on ``<database>-writer.lock`` notice within half a
    millisecond that it was released. It only orders writers that use it (the group commit of
    inbound imports); the database's own lock still decides
    (``BEGIN IMMEDIATE``, busy timeout). Held longer than the busy timeout: StoreUnavailable.
    Elsewhere (PostgreSQL, in-memory SQLite, no ``fcntl``) the gate does nothing.
    """
    path = lock_file_beside(engine, "-writer.lock")
    if path is None:
        return contextlib.nullcontext

    @contextlib.contextmanager
    def gate() -> Iterator[None]:
        assert fcntl is not None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # e.g. a read-only directory: the database's own lock still decides
            yield
            return
        try:
            deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreUnavailable("database unavailable: writer lock held") from None
                    time.sleep(0.0005)
            yield
        finally:
            os.close(fd)  # releases the lock

    return gate


@contextlib.contextmanager
def unavailable_as_typed_error() -> Iterator[None]:
    """Map "the database cannot be reached / is busy" to ``StoreUnavailable``.

    Only the driver error's class and first line are kept: SQL text and bound parameters never
    reach the error (they can hold personal data).
    """
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise StoreUnavailable(f"database unavailable: {_describe(exc)}") from None
    except sa_exc.TimeoutError:
        raise StoreUnavailable("database unavailable: connection pool exhausted") from None


def _describe(exc: sa_exc.DBAPIError) -> str:
    orig = exc.orig
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first[:200]}" if first else type(orig).__name__
