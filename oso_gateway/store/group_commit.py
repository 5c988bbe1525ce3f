"""Group commit: write transactions of concurrent threads share one COMMIT (SQLite)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from oso_gateway.store.engine import unavailable_as_typed_error, writer_gate

_T = TypeVar("_T")


@dataclass(eq=False)
class _Unit(Generic[_T]):
    work: Callable[[Session], _T]
    result: _T | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    """Write transactions of concurrent threads share one COMMIT (group commit).

    A committed transaction costs a disk flush (SQLite in WAL mode with ``synchronous=FULL``,
    the default, syncs the WAL at every COMMIT; PostgreSQL flushes its WAL), and SQLite has one
    writer at a time, so flushing one import after another caps a receiver at one dossier per
    flush. Here a thread queues its unit of work and takes the leader lock; the leader runs every
    queued unit in ONE transaction, each inside its own SAVEPOINT, and commits once.

    Still durable: ``run`` returns a unit's result only after that COMMIT returned, so whoever
    answers "stored" (a receipt) does so after the data is on disk, exactly as with a commit of
    its own; one flush now covers several units. Still isolated: a unit that raises (its id is
    taken, its hook fails) is rolled back to its savepoint alone, and ``run`` raises its error.
    A database failure, or a failed COMMIT, fails every unit of the batch (nothing was stored).

    SQLite only. PostgreSQL takes concurrent writers and merges their WAL flushes itself, and
    there a batch could deadlock with another process's batch (one holds the transfer log's
    advisory lock from an earlier unit and waits on the MessageID the other inserted), so on
    PostgreSQL every unit stays a transaction of its own, run concurrently as before.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._grouped = engine.dialect.name == "sqlite"
        self._queue: list[_Unit[Any]] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()
        self._gate = writer_gate(engine)

    def run(self, work: Callable[[Session], _T]) -> _T:
        """Run ``work(session)`` in a shared transaction; its result once that committed."""
        unit = _Unit(work)
        if not self._grouped:
            self._commit([unit])
        else:
            with self._queue_lock:
                self._queue.append(unit)
            with self._leader:
                if not unit.done:  # no earlier leader took it: lead a batch (with it) now
                    with self._queue_lock:
                        batch, self._queue = self._queue, []
                    self._commit(batch)
        if unit.error is not None:
            raise unit.error
        return cast("_T", unit.result)

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        try:
            with (
                unavailable_as_typed_error(),
                self._gate(),
                Session(self._engine) as session,
                session.begin(),
            ):
                if len(batch) == 1:  # alone: its failure simply rolls the transaction back
                    batch[0].result = batch[0].work(session)
                    return
                for unit in batch:
                    try:
                        with session.begin_nested():
                            unit.result = unit.work(session)
                    except sa_exc.DBAPIError as exc:
                        if not isinstance(exc, sa_exc.IntegrityError):
                            raise  # the database failed, not this unit: fail the batch
                        unit.error = exc
                    except Exception as exc:
                        unit.error = exc
        except BaseException as exc:
            for unit in batch:  # nothing of the batch was committed
                unit.error, unit.result = exc, None
            if not isinstance(exc, Exception):
                raise
        finally:
            for unit in batch:
                unit.done = True
