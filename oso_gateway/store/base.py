"""The plumbing the store's repositories share: one transaction per call, status events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oso_gateway.errors import ConfigError, DossierPurged
from oso_gateway.store import models as m
from oso_gateway.store import translog
from oso_gateway.store.crypto import AtRestCipher
from oso_gateway.store.engine import (
    read_transaction,
    write_transaction,
    writer,
)
from oso_gateway.store.group_commit import GroupCommit

_T = TypeVar("_T")


class StoreBase:
    """One engine, its writer and the at-rest cipher, and the transaction plumbing every
    repository of the store shares. ``cipher`` is needed for anything stored encrypted."""

    def __init__(self, engine: Engine, cipher: AtRestCipher | None = None) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self._cipher = cipher
        self._imports = GroupCommit(self._writer)

    @property
    def has_cipher(self) -> bool:
        """Whether a storage key was configured (a store opened without one writes nothing)."""
        return self._cipher is not None

    @property
    def cipher(self) -> AtRestCipher:
        if self._cipher is None:
            raise ConfigError("no at-rest storage key configured (storage.key / storage.key_file)")
        return self._cipher

    def _data_key(self, session: Session, data_key_id: str | None) -> bytes | None:
        """The unwrapped data key (None for a row from before data keys); ``DossierPurged``
        (E530) once the purge destroyed it."""
        if data_key_id is None:
            return None
        row = session.get(m.DataKeyRow, data_key_id)
        if row is None:
            raise DossierPurged(f"data key {data_key_id} was destroyed")
        return self.cipher.unwrap(row.id, kek_id=row.kek_id, wrapped=row.wrapped, school=row.school)

    # --- plumbing ---------------------------------------------------------------------------

    def _write(self, work: Callable[[Session], _T]) -> _T:
        return write_transaction(self._writer, work)

    def _read(self, work: Callable[[Session], _T]) -> _T:
        return read_transaction(self.engine, work)

    @staticmethod
    def _event(
        session: Session,
        row: m.Message,
        status: str,
        now: datetime,
        error_code: str | None = None,
    ) -> None:
        row.status = status
        row.updated_at = now
        session.add(
            m.MessageEvent(
                message_pk=row.id,
                at=now,
                status=status,
                attempt=row.attempts or None,
                error_code=error_code,
            )
        )
        # The chained transfer-log entry, in the same transaction: no status change can go
        # unlogged, and no log entry outlives a rolled-back change.
        translog.append_log_events(
            session, [translog.message_log_event(row, status, now, error_code)], now=now
        )

    @staticmethod
    def _get(session: Session, pk: int) -> m.Message:
        row = session.get(m.Message, pk)
        if row is None:
            raise LookupError(f"no message row {pk}")
        return row
