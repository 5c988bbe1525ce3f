"""A running gateway's presence on its database: ``db upgrade`` does not migrate the schema
under running processes (docs/operations.md, "Upgrading").

Every long-running process (``serve``, its receiver and outbox processes, ``outbox run``) holds a
shared lock on its database for as long as it runs (``Presence``); ``db upgrade`` takes the same
lock exclusively, without waiting, for the length of the migration (``exclusive``) and refuses
with OSO-E563 while any process holds it. A process that starts while an upgrade runs waits for
it (``WAIT_SECONDS``), then checks the schema as it always does; past the wait: OSO-E564.

- PostgreSQL: a session-level advisory lock on a connection of the process's own, named in
  ``pg_stat_activity`` (``application_name``: command, host, pid) so that the refusal can say
  where the holders run. A connection lost (the database restarted) loses the lock with it: the
  process's keeper (``keep``) takes it again on a new connection within ``CHECK_SECONDS``.
- SQLite: ``flock`` on ``<database>-running.lock`` beside the database: shared by the
  processes, exclusive by the upgrade; the kernel lets go of it when a process ends, however it
  ends.
- An in-memory database (tests) has no other process: nothing to hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from oso_gateway.errors import ConfigError, GatewayRunning, StoreUnavailable, UpgradeInProgress
from oso_gateway.store.engine import lock_file_beside, unavailable_as_typed_error

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: the first of the advisory lock's two keys on PostgreSQL (any constant, the same in every
#: release); the second is of the gateway's schema (``_pg_keys``), so that gateways kept in
#: schemas of one database do not hold each other's upgrades
PG_PRESENCE_KEY = 0x05_0A_0E_01
#: the application_name every presence connection starts with (``db upgrade`` lists them)
APPLICATION_PREFIX = "oso-gateway presence"
#: how long a starting process waits for a running ``db upgrade`` to finish (seconds)
WAIT_SECONDS = 60.0
#: how often the keeper looks at its PostgreSQL connection (seconds)
CHECK_SECONDS = 10.0
#: how long ``close`` waits for a check in progress (seconds)
CLOSE_WAIT = 5.0


def lock_file(engine: Engine) -> Path | None:
    """The lock file of a SQLite database file (None: PostgreSQL, or nothing to hold)."""
    return lock_file_beside(engine, "-running.lock")


def _pg_keys(engine: Engine) -> dict[str, int]:
    """The advisory lock's keys: ``PG_PRESENCE_KEY`` and 31 bits of the SHA-256 of the schema
    the store's tables are in (its ``current_schema()``; advisory locks are per database)."""
    with unavailable_as_typed_error(), engine.connect() as connection:
        schema = str(connection.execute(text("SELECT current_schema()")).scalar_one())
    digest = hashlib.sha256(schema.encode()).digest()
    return {"k1": PG_PRESENCE_KEY, "k2": int.from_bytes(digest[:4], "big") & 0x7FFFFFFF}


def _in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and lock_file(engine) is None


class Presence:
    """This process's shared hold on its database (see the module). ``close`` lets go."""

    def __init__(
        self,
        engine: Engine,
        *,
        what: str,
        wait: float = WAIT_SECONDS,
        on_schema_moved: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        #: what ``check`` does when the schema moved while the mark was lost (default: SIGTERM
        #: to this process, which every long-running one takes as "drain and stop")
        self.on_schema_moved = on_schema_moved or (lambda: os.kill(os.getpid(), signal.SIGTERM))
        self.name = f"{APPLICATION_PREFIX}: {what} on {socket.gethostname()} pid {os.getpid()}"
        self._fd: int | None = None
        self._connection: Connection | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: PostgreSQL: connections of their own, outside the store's pool (one is held for as
        #: long as the process runs)
        self._own: Engine | None = None
        self._keys: dict[str, int] = {}
        if engine.dialect.name == "postgresql":
            self._keys = _pg_keys(engine)
            self._own = create_engine(engine.url, poolclass=NullPool, hide_parameters=True)
        if _in_memory(engine):
            return
        deadline = time.monotonic() + wait
        while not self._take():
            if time.monotonic() >= deadline:
                self.close()
                raise UpgradeInProgress(
                    f"`db upgrade` has been migrating this database for more than {wait:.0f} s: "
                    "start again once it has ended"
                )
            time.sleep(0.25)

    @property
    def held(self) -> bool:
        return self._fd is not None or self._connection is not None

    def _take(self) -> bool:
        """Try once to take the shared lock; False while an upgrade holds it."""
        path = lock_file(self.engine)
        if path is not None:
            return self._take_file(path)
        if self.engine.dialect.name != "postgresql":
            return True
        return self._take_advisory()

    def _take_file(self, path: Path) -> bool:
        assert fcntl is not None
        if self._fd is None:
            self._fd = _open_lock(path)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _take_advisory(self) -> bool:
        assert self._own is not None
        with unavailable_as_typed_error():
            connection = self._own.connect()
            try:
                connection.execute(text("SELECT set_config('application_name', :n, false)"),
                                   {"n": self.name[:63]})  # fmt: skip
                taken = connection.execute(
                    text("SELECT pg_try_advisory_lock_shared(:k1, :k2)"), self._keys
                ).scalar_one()
                connection.commit()  # the session's lock stays; no transaction is left open
            except BaseException:
                connection.close()
                raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def check(self) -> bool:
        """PostgreSQL: whether the lock is still held; a lost connection (a database restart)
        is replaced and the lock taken again. Logs what it finds; never raises."""
        if self.engine.dialect.name != "postgresql":
            return self.held or _in_memory(self.engine)
        with self._lock:
            connection = self._connection
            if connection is not None:
                try:
                    connection.execute(text("SELECT 1")).scalar_one()
                    connection.commit()
                    return True
                except sa_exc.DBAPIError:
                    log.warning("lost the database connection that marks this process as running")
                    with contextlib.suppress(sa_exc.DBAPIError):
                        connection.invalidate()
                        connection.close()
                    self._connection = None
            try:
                if self._take_advisory():
                    log.warning("this process is marked as running on its database again")
                    self._schema_still_current()
                    return True
                log.error(
                    "cannot mark this process as running on its database: a `db upgrade` is "
                    "migrating it (OSO-E564); this process runs an older schema's code"
                )
            except StoreUnavailable as exc:
                log.warning("cannot mark this process as running yet: %s", exc.code)
            return False

    def _schema_still_current(self) -> None:
        """After the mark was lost, an upgrade may have run meanwhile: this process's code
        would then run on a schema it does not know (a review). It is stopped instead."""
        from oso_gateway.errors import SchemaNotCurrent
        from oso_gateway.store.migrate import check_schema_current

        try:
            check_schema_current(self.engine)
        except SchemaNotCurrent as exc:
            log.error(
                "the database was migrated while this process was not marked as running "
                "(%s %s): stopping it; start it again with the release that matches",
                exc.code,
                exc.detail,
            )
            self.on_schema_moved()

    def keep(self, interval: float = CHECK_SECONDS) -> threading.Thread | None:
        """PostgreSQL: a thread that runs ``check`` every ``interval`` seconds until ``close``
        (None elsewhere: a file lock cannot be lost while the process runs)."""
        if self._own is None:
            return None

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.check()
                except Exception:  # never ends the keeping
                    log.exception("the check of this process's running mark failed")

        thread = threading.Thread(target=run, name="presence", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Let go of the mark. It does not wait more than ``CLOSE_WAIT`` seconds for a check
        that hangs (a stopped database, a half-open connection: a stop hung on it, a review);
        the process's end then lets go of it."""
        self._stop.set()
        if not self._lock.acquire(timeout=CLOSE_WAIT):
            log.warning("a check of this process's running mark hangs: not waiting for it")
            return
        try:
            self._release()
        finally:
            self._lock.release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
        if self._connection is not None:
            with contextlib.suppress(sa_exc.DBAPIError):
                self._connection.close()  # the session's advisory lock ends with it
            self._connection = None
        if self._own is not None:
            self._own.dispose()


def _open_lock(path: Path) -> int:
    """The lock file, created its owner's alone; ``ConfigError`` (exit 2) naming it when it
    cannot be opened (made by another user, say ``db upgrade`` run as root: it was a raw
    PermissionError, a review)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot open the lock file {path} ({exc.strerror}): it must be the gateway "
            "user's, as the database is (remove it while no gateway process runs)"
        ) from None


def holders(engine: Engine) -> list[str]:
    """PostgreSQL: the ``application_name`` of every session that holds a presence on
    ``engine``'s schema (those this database user may see; others are counted as "another
    user's")."""
    query = text(
        "SELECT coalesce(a.application_name, '') FROM pg_locks l "
        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ShareLock' "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid = :k1 AND l.objid = :k2 AND l.objsubid = 2"
    )
    keys = _pg_keys(engine)
    with unavailable_as_typed_error(), engine.connect() as connection:
        names = connection.execute(query, keys).scalars().all()
    return [name or "a session of another database user" for name in names]


@contextlib.contextmanager
def exclusive(engine: Engine) -> Iterator[None]:
    """The database to itself while the block runs (``db upgrade``): ``GatewayRunning``
    (OSO-E563) at once when any gateway process holds its presence."""
    path = lock_file(engine)
    if path is not None:
        with _exclusive_file(path):
            yield
    elif engine.dialect.name == "postgresql":
        with _exclusive_advisory(engine):
            yield
    else:
        yield


@contextlib.contextmanager
def _exclusive_file(path: Path) -> Iterator[None]:
    assert fcntl is not None
    fd = _open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GatewayRunning(
                f"gateway processes are running on this database (they hold {path}; "
                f"`fuser -v {path}` names them): stop every `serve` and `outbox run`, "
                "then upgrade"
            ) from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _exclusive_advisory(engine: Engine) -> Iterator[None]:
    """The lock taken on a connection of its own (not the store's pool: a pooled connection
    would keep a session's lock after it is handed back), closed after the block."""
    keys = _pg_keys(engine)
    own = create_engine(engine.url, poolclass=NullPool, hide_parameters=True)
    try:
        with unavailable_as_typed_error(), own.connect() as connection:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:k1, :k2)"), keys
            ).scalar_one()
            connection.commit()
            if not taken:
                _refuse(engine)
            try:
                yield
            finally:
                with contextlib.suppress(sa_exc.DBAPIError):
                    connection.execute(text("SELECT pg_advisory_unlock(:k1, :k2)"), keys)
                    connection.commit()
    finally:
        own.dispose()


def _refuse(engine: Engine) -> None:
    running = holders(engine)
    if not running:  # held exclusively: not by a gateway process
        raise GatewayRunning("another `db upgrade` is running on this database")
    shown = "; ".join(running[:10]) + (" ..." if len(running) > 10 else "")
    raise GatewayRunning(
        f"{len(running)} gateway process(es) are running on this database ({shown}): "
        "stop every `serve` and `outbox run`, then upgrade"
    )
