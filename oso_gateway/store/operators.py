"""Operator accounts of the web console, and the login-throttling state.

Tables (migration ``0002``):

* ``operators``: one row per console account: a name (``[a-z0-9._-]``, the transfer log's
  ``operator`` format), a role (``viewer`` or ``admin``) and an argon2id password hash (hashing
  lives in ``oso_gateway.web.auth``; this module stores what it is given).
* ``login_throttle``: failed-login counters per key (``account:<name>`` and ``ip:<address>``) and
  the time until which a key is blocked. Kept in the database so every console process (and a
  restart) sees the same penalties.
* ``console_sessions`` (migration ``console_sessions_1``): one row per console login, keyed by
  the SHA-256 of the session token the browser holds (the token itself is never stored), with
  its operator, start, last use and end. A session is valid only while its row says so: logout,
  an admin, or removing the operator ends it server-side, whatever cookie a browser still holds.

``OperatorStore`` follows the ``Store`` conventions: one transaction per method, plain frozen
records out, time always an argument.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import CheckConstraint, Engine, Integer, String, Text, delete, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Mapped, Session, mapped_column

from oso_gateway.store.engine import (
    read_transaction,
    write_transaction,
    writer,
)
from oso_gateway.store.models import Base, UTCDateTime

_T = TypeVar("_T")

VIEWER = "viewer"
ADMIN = "admin"
ROLES = (VIEWER, ADMIN)
#: the transfer log's ``operator`` field format (``logchain.FIELD_FORMATS``)
NAME_RE = re.compile(r"[a-z0-9._-]{1,64}")


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: schools (BRIN + vestiging, comma-separated) this operator may see; None: every school
    schools: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint("role IN ('viewer', 'admin')", name="role"),)


class LoginThrottle(Base):
    __tablename__ = "login_throttle"

    #: ``account:<name>`` or ``ip:<address>``
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    #: SHA-256 (hex) of the session token in the browser's cookie
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: logout, idle, expired, ended-by-admin, operator-removed
    end_reason: Mapped[str | None] = mapped_column(String(20))


@dataclass(frozen=True, kw_only=True)
class SessionRecord:
    operator: str
    created_at: datetime
    last_seen_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class OperatorRecord:
    name: str
    role: str
    password_hash: str
    created_at: datetime
    last_login_at: datetime | None
    #: the schools this operator may see in the console (None: every school)
    schools: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class ThrottlePolicy:
    """Failures allowed per key before a delay; then ``base * 2**(n - free)``, capped.

    A key's count starts again after ``forget_after`` without a failure.
    """

    free_failures: int = 3
    base_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=15)
    forget_after: timedelta = timedelta(hours=1)

    def delay_after(self, failures: int) -> timedelta:
        if failures < self.free_failures:
            return timedelta(0)
        delay: timedelta = self.base_delay * (2 ** (failures - self.free_failures))
        return min(delay, self.max_delay)


class DuplicateOperator(ValueError):
    """An account with this name exists."""


def normalise_name(name: str) -> str:
    """An account name as typed (at the console's login, on the command line) as it is
    stored: without surrounding spaces, in lower case. Names are compared without case
    ("Anja" logs in as ``anja``; every stored name is lower case, ``NAME_RE``), and the
    login throttle counts one key per account, however its name was typed."""
    return name.strip().lower()


def check_name(name: str) -> str:
    """The name if it is a valid account name, else ``ValueError``."""
    if not NAME_RE.fullmatch(name):
        raise ValueError("account names are 1-64 characters of a-z, 0-9, '.', '_' and '-'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return role


def _record(row: Operator) -> OperatorRecord:
    return OperatorRecord(
        name=row.name,
        role=row.role,
        password_hash=row.password_hash,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        schools=tuple(s for s in row.schools.split(",") if s) if row.schools else None,
    )


class OperatorStore:
    """Operator accounts and login throttling over one engine (the gateway's database)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)

    def _write(self, work: Callable[[Session], _T]) -> _T:
        return write_transaction(self._writer, work)

    def _read(self, work: Callable[[Session], _T]) -> _T:
        return read_transaction(self.engine, work)

    # --- accounts ---------------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        role: str,
        password_hash: str,
        now: datetime,
        schools: Sequence[str] | None = None,
    ) -> OperatorRecord:
        """Create an account; ``DuplicateOperator`` when the name is taken. ``schools``: the
        schools (BRIN + vestiging) the operator may see (None: every school)."""
        check_name(name)
        check_role(role)

        def work(session: Session) -> OperatorRecord:
            row = Operator(
                name=name,
                role=role,
                password_hash=password_hash,
                created_at=now,
                schools=",".join(schools) if schools else None,
            )
            session.add(row)
            session.flush()
            return _record(row)

        try:
            return self._write(work)
        except sa_exc.IntegrityError:
            raise DuplicateOperator(f"operator {name} exists") from None

    def add_many(
        self,
        accounts: Sequence[tuple[str, str, str, Sequence[str] | None]],
        *,
        now: datetime,
    ) -> list[OperatorRecord]:
        """Several accounts, each (name, role, password_hash, schools), in one transaction: all
        are made or none (``DuplicateOperator`` when a name is taken)."""
        for name, role, _hash, _schools in accounts:
            check_name(name)
            check_role(role)

        def work(session: Session) -> list[OperatorRecord]:
            rows = [
                Operator(
                    name=name,
                    role=role,
                    password_hash=password_hash,
                    created_at=now,
                    schools=",".join(schools) if schools else None,
                )
                for name, role, password_hash, schools in accounts
            ]
            session.add_all(rows)
            session.flush()
            return [_record(row) for row in rows]

        try:
            return self._write(work)
        except sa_exc.IntegrityError:
            raise DuplicateOperator("one of the new operators exists") from None

    def remove(self, name: str, *, now: datetime | None = None) -> bool:
        """Delete the account and end its sessions (in the same transaction). False: no such
        account."""

        def work(session: Session) -> bool:
            if now is not None:
                _end(session, ConsoleSession.operator == name, now, "operator-removed")
            else:
                session.execute(delete(ConsoleSession).where(ConsoleSession.operator == name))
            result = session.execute(delete(Operator).where(Operator.name == name))
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return self._write(work)

    # --- console sessions (server-side, revocable) ----------------------------------------------

    def start_session(self, token: str, *, operator: str, now: datetime) -> None:
        """Record a new session for ``operator`` under ``token`` (only its hash is stored)."""

        def work(session: Session) -> None:
            session.add(
                ConsoleSession(
                    token_hash=token_hash(token),
                    operator=operator,
                    created_at=now,
                    last_seen_at=now,
                )
            )

        self._write(work)

    def touch_session(
        self, token: str, *, now: datetime, idle: timedelta, max_age: timedelta
    ) -> SessionRecord | None:
        """The live session of ``token``, its last use moved to ``now``; None when there is no
        such session, it was ended, or it is past its idle or absolute timeout (then it is ended
        here)."""

        def work(session: Session) -> SessionRecord | None:
            row = session.get(ConsoleSession, token_hash(token))
            if row is None or row.ended_at is not None:
                return None
            late = "idle" if now - row.last_seen_at > idle else None
            late = "expired" if now - row.created_at > max_age else late
            if late is not None or now < row.last_seen_at - timedelta(minutes=1):
                row.ended_at, row.end_reason = now, late or "clock"
                return None
            row.last_seen_at = now
            return SessionRecord(operator=row.operator, created_at=row.created_at, last_seen_at=now)

        return self._write(work)

    def end_session(self, token: str, *, now: datetime, reason: str = "logout") -> None:
        self._write(lambda s: _end(s, ConsoleSession.token_hash == token_hash(token), now, reason))

    def end_sessions(self, operator: str, *, now: datetime, reason: str) -> int:
        """End every live session of ``operator``; how many were live."""
        return self._write(lambda s: _end(s, ConsoleSession.operator == operator, now, reason))

    def live_sessions(self, operator: str) -> int:
        def work(session: Session) -> int:
            rows = session.scalars(
                select(ConsoleSession.token_hash).where(
                    ConsoleSession.operator == operator, ConsoleSession.ended_at.is_(None)
                )
            )
            return len(list(rows))

        return self._read(work)

    def get(self, name: str) -> OperatorRecord | None:
        def work(session: Session) -> OperatorRecord | None:
            row = session.scalars(select(Operator).where(Operator.name == name)).first()
            return None if row is None else _record(row)

        return self._read(work)

    def all(self) -> list[OperatorRecord]:
        def work(session: Session) -> list[OperatorRecord]:
            return [_record(r) for r in session.scalars(select(Operator).order_by(Operator.name))]

        return self._read(work)

    def set_password_hash(self, name: str, password_hash: str) -> None:
        """Replace the hash (after a rehash with stronger parameters, or a password change)."""

        def work(session: Session) -> None:
            row = session.scalars(select(Operator).where(Operator.name == name)).first()
            if row is None:
                raise LookupError(f"no operator {name}")
            row.password_hash = password_hash

        self._write(work)

    def record_login(self, name: str, *, now: datetime) -> None:
        def work(session: Session) -> None:
            row = session.scalars(select(Operator).where(Operator.name == name)).first()
            if row is not None:
                row.last_login_at = now

        self._write(work)

    # --- throttling -------------------------------------------------------------------------

    def begin_attempt(
        self, keys: Sequence[str], *, now: datetime, policies: Sequence[ThrottlePolicy]
    ) -> timedelta:
        """Start a login attempt: refuse it (returning how long the longest block among ``keys``
        still lasts) or count it in advance as a failure against every key and return zero.

        Counting before the password is checked, in one locked transaction, means parallel
        guesses cannot slip past the limit while the (slow) hash is verified; ``forgive``
        takes the count back after a successful login. ``policies[i]`` applies to ``keys[i]``.
        """

        def work(session: Session) -> timedelta:
            rows = {
                row.key: row
                for row in session.scalars(
                    select(LoginThrottle).where(LoginThrottle.key.in_(keys)).with_for_update()
                )
            }
            left = timedelta(0)
            for row in rows.values():
                if row.blocked_until is not None and row.blocked_until > now:
                    left = max(left, row.blocked_until - now)
            if left:
                return left
            for key, policy in zip(keys, policies, strict=True):
                found = rows.get(key)
                if found is None:
                    row = LoginThrottle(key=key, failures=0, last_failure_at=now)
                    session.add(row)
                else:
                    row = found
                if row.failures and now - row.last_failure_at > policy.forget_after:
                    row.failures = 0
                row.failures += 1
                row.last_failure_at = now
                delay = policy.delay_after(row.failures)
                row.blocked_until = now + delay if delay else None
            session.flush()
            return timedelta(0)

        try:
            return self._write(work)
        except sa_exc.IntegrityError:  # a parallel attempt created the same key first
            return self._write(work)

    def forgive(self, keys: Sequence[str], *, policies: Sequence[ThrottlePolicy]) -> None:
        """After a successful login: the first key (the account) starts again from zero; the
        others (the address) lose the one failure ``begin_attempt`` counted in advance."""

        def work(session: Session) -> None:
            session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys[0]))
            for key, policy in zip(keys[1:], policies[1:], strict=True):
                row = session.get(LoginThrottle, key, with_for_update=True)
                if row is None:
                    continue
                row.failures = max(0, row.failures - 1)
                delay = policy.delay_after(row.failures)
                row.blocked_until = row.last_failure_at + delay if delay else None

        self._write(work)


def _end(session: Session, which: Any, now: datetime, reason: str) -> int:
    result = session.execute(
        update(ConsoleSession)
        .where(which, ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
