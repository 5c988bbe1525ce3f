"""An outbound message's large values (``outbox_blobs``): its encrypted payload and its latest
sealed envelope, written and read without extra dossier-sized copies.

On SQLite a value is inserted as a ``zeroblob`` of its final size (in the table's last column,
so SQLite does not write it out) and then written piece by piece through the incremental blob
API into the same transaction, and it is read in one call into one buffer: no bound parameter
copy, no record assembled in memory. On PostgreSQL they are plain ``bytea`` values (the driver
holds one copy while it sends or receives one).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, insert, select
from sqlalchemy.orm import Session

from oso_gateway.store import models as m

PAYLOAD = "payload"
SEALED = "sealed"


def _sqlite(session: Session) -> Any | None:
    """The session's raw sqlite3 connection, None on another database."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return None
    return connection.connection.dbapi_connection


def put(session: Session, message_pk: int, kind: str, pieces: Iterable[bytes], size: int) -> None:
    """Store (replace) the ``kind`` value of message ``message_pk``: the concatenation of
    ``pieces``, ``size`` bytes in all."""
    drop(session, message_pk, kind)
    raw = _sqlite(session)
    if raw is None:
        data = (
            pieces[0] if isinstance(pieces, tuple) and len(pieces) == 1 else _filled(pieces, size)
        )
        if len(data) != size:  # pragma: no cover - the caller's arithmetic
            raise ValueError("blob size mismatch")
        session.execute(insert(m.OutboxBlob).values(message_pk=message_pk, kind=kind, data=data))
        return
    session.execute(
        insert(m.OutboxBlob).values(message_pk=message_pk, kind=kind, data=func.zeroblob(size))
    )
    rowid = get_id(session, message_pk, kind)
    with raw.blobopen(m.OutboxBlob.__tablename__, "data", rowid) as blob:
        for piece in pieces:
            blob.write(piece)
        if blob.tell() != size:  # pragma: no cover - the caller's arithmetic
            raise ValueError("blob size mismatch")


def _filled(pieces: Iterable[bytes], size: int) -> bytearray:
    """The pieces in one buffer, taken one at a time (a join would hold them all, and itself)."""
    buffer = bytearray(size)
    at = 0
    for piece in pieces:
        buffer[at : at + len(piece)] = piece
        at += len(piece)
    if at != size:  # pragma: no cover - the caller's arithmetic
        raise ValueError("blob size mismatch")
    return buffer


def get(session: Session, message_pk: int, kind: str) -> bytes | None:
    """The ``kind`` value of message ``message_pk``, None when there is none."""
    where = (m.OutboxBlob.message_pk == message_pk, m.OutboxBlob.kind == kind)
    raw = _sqlite(session)
    if raw is None:
        return session.scalar(select(m.OutboxBlob.data).where(*where))
    rowid = get_id(session, message_pk, kind)
    if rowid is None:
        return None
    with raw.blobopen(m.OutboxBlob.__tablename__, "data", rowid, readonly=True) as blob:
        data: bytes = blob.read()
    return data


def get_id(session: Session, message_pk: int, kind: str) -> int | None:
    """The row id of the ``kind`` value of message ``message_pk`` (None: there is none)."""
    return session.scalar(
        select(m.OutboxBlob.id).where(
            m.OutboxBlob.message_pk == message_pk, m.OutboxBlob.kind == kind
        )
    )


def drop(session: Session, message_pk: int, *kinds: str) -> None:
    """Delete the given values (all when no ``kinds``) of message ``message_pk``."""
    stmt = delete(m.OutboxBlob).where(m.OutboxBlob.message_pk == message_pk)
    if kinds:
        stmt = stmt.where(m.OutboxBlob.kind.in_(kinds))
    session.execute(stmt)


def has(kind: str) -> ColumnElement[bool]:
    """A condition on ``messages``: the message has a ``kind`` value."""
    return exists().where(m.OutboxBlob.message_pk == m.Message.id, m.OutboxBlob.kind == kind)
