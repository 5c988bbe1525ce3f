"""Messages as the services and the console ask for them: by id, by pk, listed, their events, a
stored receipt, and whether the database is ready."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from oso_gateway.store import models as m
from oso_gateway.store.base import StoreBase
from oso_gateway.store.engine import unavailable_as_typed_error
from oso_gateway.store.migrate import check_schema_current
from oso_gateway.store.records import (
    EventRecord,
    MessageRecord,
    record_of,
)

_T = TypeVar("_T")


class MessageQueries(StoreBase):
    """Read access to messages and their events."""

    def find_receipt(self, message_id: str, signer_oin: str) -> tuple[str, bytes] | None:
        """(payload digest, sealed receipt) of an accepted inbound message of this signer (a lean
        Core query: this runs for every incoming message)."""
        stmt = select(m.Message.payload_digest, m.Message.receipt).where(
            m.Message.direction == m.IN,
            m.Message.counterpart_oin == signer_oin,
            m.Message.message_id == message_id,
            m.Message.status != m.REJECTED,
        )
        with unavailable_as_typed_error(), self.engine.connect() as connection:
            row = connection.execute(stmt).first()
        if row is None or row.payload_digest is None or row.receipt is None:
            return None
        return row.payload_digest, row.receipt

    def check_ready(self) -> None:
        """Raise unless the database answers and its schema is current (driver errors are not
        translated: the caller reports their type)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        check_schema_current(self.engine)

    def find_message(
        self, direction: str, message_id: str, *, counterpart_oin: str | None = None
    ) -> MessageRecord | None:
        """The accepted (not rejected) message with this id in this direction, if any.

        A MessageID is unique per counterpart (an inbound message's signer): without
        ``counterpart_oin`` the oldest of several is returned.
        """

        def work(session: Session) -> MessageRecord | None:
            query = select(m.Message).where(
                m.Message.direction == direction,
                m.Message.message_id == message_id,
                m.Message.status != m.REJECTED,
            )
            if counterpart_oin is not None:
                query = query.where(m.Message.counterpart_oin == counterpart_oin)
            row = session.scalars(query.order_by(m.Message.id)).first()
            return None if row is None else record_of(row)

        return self._read(work)

    def latest_related(
        self, direction: str, action: str, *, relates_to: Collection[str] | None = None,
        failed_only: bool = False, limit: int = 500,
    ) -> dict[str, MessageRecord]:  # fmt: skip
        """The newest message with ``action`` in ``direction`` relating to each request id
        (``relates_to``: these only, else any), at most ``limit`` of them; ``failed_only``: the
        request ids whose newest such message failed (a pull answer that never arrived)."""
        wanted = None if relates_to is None else sorted(set(relates_to))

        def work(session: Session) -> dict[str, MessageRecord]:
            among = wanted
            if failed_only:  # the failed ones first (few, and indexed by status)
                failed = select(m.Message.relates_to).where(
                    m.Message.direction == direction,
                    m.Message.status == m.FAILED,
                    m.Message.action == action,
                    m.Message.relates_to.is_not(None),
                )
                if among is not None:
                    failed = failed.where(m.Message.relates_to.in_(among))
                among = sorted({r for r in session.scalars(failed.limit(limit)) if r})
            newest = (
                select(func.max(m.Message.id))
                .where(
                    m.Message.direction == direction,
                    m.Message.action == action,
                    m.Message.relates_to.is_not(None),
                    m.Message.status != m.REJECTED,
                )
                .group_by(m.Message.relates_to)
            )
            if among is not None:
                newest = newest.where(m.Message.relates_to.in_(among))
            stmt = select(m.Message).where(m.Message.id.in_(newest))
            if failed_only:
                stmt = stmt.where(m.Message.status == m.FAILED)
            rows = session.scalars(stmt.order_by(m.Message.id.desc()).limit(limit))
            return {row.relates_to: record_of(row) for row in rows if row.relates_to}

        return {} if wanted is not None and not wanted else self._read(work)

    def get_message(self, pk: int) -> MessageRecord:
        return self._read(lambda session: record_of(self._get(session, pk)))

    def message_ids(self, pks: Collection[int]) -> dict[int, str]:
        """The MessageID of each of these rows, in one read (a page's ``duplicate_of``)."""
        wanted = sorted(set(pks))

        def work(session: Session) -> dict[int, str]:
            stmt = select(m.Message.id, m.Message.message_id).where(m.Message.id.in_(wanted))
            return {pk: message_id for pk, message_id in session.execute(stmt)}

        return self._read(work) if wanted else {}

    def list_messages(
        self,
        *,
        direction: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 100,
        before_pk: int | None = None,
    ) -> list[MessageRecord]:
        """Newest first; page with ``before_pk`` (the last pk of the previous page)."""

        def work(session: Session) -> list[MessageRecord]:
            stmt = select(m.Message).order_by(m.Message.id.desc()).limit(limit)
            if direction is not None:
                stmt = stmt.where(m.Message.direction == direction)
            if statuses:
                stmt = stmt.where(m.Message.status.in_(tuple(statuses)))
            if before_pk is not None:
                stmt = stmt.where(m.Message.id < before_pk)
            return [record_of(r) for r in session.scalars(stmt)]

        return self._read(work)

    def message_states(
        self, direction: str, message_ids: Sequence[str], *, batch: int = 500
    ) -> dict[str, tuple[str, str | None]]:
        """(status, last error code) of each of these MessageIDs' accepted message in
        ``direction`` (the oldest of several, as ``find_message``), ``batch`` ids a read: a list
        of requests learns its messages' states (requests, deliveries) without a look-up per
        request. An id with no such message is left out."""
        wanted = list(dict.fromkeys(message_ids))

        def work(session: Session) -> dict[str, tuple[str, str | None]]:
            found: dict[str, tuple[str, str | None]] = {}
            for start in range(0, len(wanted), batch):
                stmt = (
                    select(m.Message.message_id, m.Message.status, m.Message.last_error_code)
                    .where(
                        m.Message.direction == direction,
                        m.Message.message_id.in_(wanted[start : start + batch]),
                        m.Message.status != m.REJECTED,
                    )
                    .order_by(m.Message.id.desc())  # the oldest is put last, and stays
                )
                for message_id, status, code in session.execute(stmt):
                    found[message_id] = (status, code)
            return found

        return self._read(work) if wanted else {}

    def events(self, pk: int) -> list[EventRecord]:
        def work(session: Session) -> list[EventRecord]:
            rows = session.scalars(
                select(m.MessageEvent)
                .where(m.MessageEvent.message_pk == pk)
                .order_by(m.MessageEvent.id)
            )
            return [
                EventRecord(at=r.at, status=r.status, attempt=r.attempt, error_code=r.error_code)
                for r in rows
            ]

        return self._read(work)
