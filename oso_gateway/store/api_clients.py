"""School-API clients (credentials of school systems) and their idempotency keys.

Tables (migration ``school_api``):

* ``api_clients``: one row per credential: an id (``c-`` + 16 hex), a name, the hash of its
  secret (computed by the service; this module stores what it is given), the schools it may
  act for (BRIN + vestiging, comma-separated), and when it was created and revoked.
* ``api_idempotency``: (client id, keyed hash of the ``Idempotency-Key``) → the digest of the
  request body and the message it created, so a retried submit answers with the same message.
  The key itself is not kept: a school system may well build it from a pupil number.

Follows the ``Store`` conventions: one transaction per method, frozen records out, time passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, ForeignKey, String, Text, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Mapped, Session, mapped_column

from oso_gateway.store.engine import unavailable_as_typed_error, writer
from oso_gateway.store.models import Base, BigId, UTCDateTime

_T = TypeVar("_T")


class ApiClient(Base):
    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(200))
    schools: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiIdempotency(Base):
    __tablename__ = "api_idempotency"

    client_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True, kw_only=True)
class ApiClientRecord:
    client_id: str
    name: str
    secret_hash: str
    schools: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, kw_only=True)
class IdempotencyRecord:
    request_digest: str
    message_pk: int


class DuplicateClient(ValueError):
    """A client with this id exists (ids are random: practically never)."""


def _record(row: ApiClient) -> ApiClientRecord:
    return ApiClientRecord(
        client_id=row.id,
        name=row.name,
        secret_hash=row.secret_hash,
        schools=tuple(s for s in row.schools.split(",") if s),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiClientStore:
    """API clients and idempotency keys over one engine (the gateway's database)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)

    def _write(self, work: Callable[[Session], _T]) -> _T:
        with unavailable_as_typed_error(), Session(self._writer) as session, session.begin():
            return work(session)

    def _read(self, work: Callable[[Session], _T]) -> _T:
        with unavailable_as_typed_error(), Session(self.engine) as session, session.begin():
            return work(session)

    def add(
        self,
        *,
        client_id: str,
        name: str,
        secret_hash: str,
        schools: tuple[str, ...],
        now: datetime,
    ) -> ApiClientRecord:
        return self.add_all([(client_id, name, secret_hash, schools)], now=now)[0]

    def add_all(
        self, rows: list[tuple[str, str, str, tuple[str, ...]]], *, now: datetime
    ) -> list[ApiClientRecord]:
        """Several clients, each (client_id, name, secret_hash, schools), in one transaction:
        all are made or none (a list that failed part-way left the first ones active with
        their credentials shown to no one: a review)."""

        def work(session: Session) -> list[ApiClientRecord]:
            made = []
            for client_id, name, secret_hash, schools in rows:
                row = ApiClient(
                    id=client_id,
                    name=name,
                    secret_hash=secret_hash,
                    schools=",".join(schools),
                    created_at=now,
                    revoked_at=None,
                )
                session.add(row)
                made.append(row)
            session.flush()
            return [_record(row) for row in made]

        try:
            return self._write(work)
        except sa_exc.IntegrityError:
            raise DuplicateClient("one of the new client ids") from None

    def get(self, client_id: str) -> ApiClientRecord | None:
        def work(session: Session) -> ApiClientRecord | None:
            row = session.get(ApiClient, client_id)
            return None if row is None else _record(row)

        return self._read(work)

    def list(self) -> list[ApiClientRecord]:
        def work(session: Session) -> list[ApiClientRecord]:
            rows = session.scalars(select(ApiClient).order_by(ApiClient.created_at, ApiClient.id))
            return [_record(r) for r in rows]

        return self._read(work)

    def revoke(self, client_id: str, *, now: datetime) -> ApiClientRecord | None:
        """Revoke (idempotent); None when there is no such client."""

        def work(session: Session) -> ApiClientRecord | None:
            row = session.get(ApiClient, client_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = now
            session.flush()
            return _record(row)

        return self._write(work)

    def revoke_all(self, client_ids: Sequence[str], *, now: datetime) -> Sequence[ApiClientRecord]:
        """Revoke several clients in one transaction (all or none); the ones not found are
        left out of the answer."""

        def work(session: Session) -> list[ApiClientRecord]:
            done = []
            for client_id in client_ids:
                row = session.get(ApiClient, client_id)
                if row is None:
                    continue
                if row.revoked_at is None:
                    row.revoked_at = now
                done.append(row)
            session.flush()
            return [_record(row) for row in done]

        return self._write(work)

    # --- idempotency ---------------------------------------------------------------------------

    def idempotency(
        self, client_id: str, key: str, *, legacy: str | None = None
    ) -> IdempotencyRecord | None:
        """What a call with this stored key (``stored_key``) made; ``legacy``: the key as
        earlier versions kept it (verbatim), looked up when the stored key is not found, so a
        retry that spans an upgrade still finds its first call."""

        def work(session: Session) -> IdempotencyRecord | None:
            row = session.get(ApiIdempotency, (client_id, key))
            if row is None and legacy is not None:
                row = session.get(ApiIdempotency, (client_id, legacy))
            if row is None:
                return None
            return IdempotencyRecord(request_digest=row.request_digest, message_pk=row.message_pk)

        return self._read(work)


def stored_key(lookup_mac: Callable[[bytes], bytes], key: str) -> str:
    """What ``api_idempotency`` keeps of an ``Idempotency-Key``: its keyed hash under the
    store's lookup key (``lookup_mac``), 64 hex digits, never the key itself."""
    return lookup_mac(b"api-idempotency-key\x00" + key.encode("utf-8")).hex()


def remember_idempotency(
    session: Session,
    *,
    client_id: str,
    key: str,
    request_digest: str,
    message_pk: int,
    now: datetime,
) -> None:
    """Record (client, key) → message inside the transaction that queued the message (a
    concurrent submit with the same key then fails on the primary key and rolls back)."""
    session.add(
        ApiIdempotency(
            client_id=client_id,
            key=key,
            request_digest=request_digest,
            message_pk=message_pk,
            created_at=now,
        )
    )
    session.flush()


def remembering(
    *, client_id: str, key: str, request_digest: str, now: datetime
) -> Callable[[Session, Any], None]:
    """An ``after_insert`` for the outbox's queueing: records (client, key) → the queued
    message in that transaction (``remember_idempotency``)."""

    def after(session: Session, queued: Any) -> None:
        remember_idempotency(
            session,
            client_id=client_id,
            key=key,
            request_digest=request_digest,
            message_pk=queued.pk,
            now=now,
        )

    return after


__all__ = [
    "ApiClientRecord",
    "ApiClientStore",
    "BigId",
    "DuplicateClient",
    "IdempotencyRecord",
    "remember_idempotency",
    "remembering",
    "stored_key",
]
