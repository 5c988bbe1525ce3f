"""Rate-limit counters shared by every process on one database.

Table (migration ``rate_limits``): ``rate_limit_counters``, one row per limit and client in its
current window: the SHA-256 of the limiter's key (the key names an API client, a client address
or whatever a visitor typed as an account name: only its hash is kept), how many requests the
window has counted, and when the window ends (seconds since the epoch, as the ``limits`` library
counts). A window that has ended counts from zero again; ended windows are deleted when a new
one is opened, so the table holds about one row per client active in the last window.

The web layer's Flask-Limiter storage (``web/ratelimit.py``) is built on this, so that the school
API's per-client limit and the console's login limits hold across ``serve --workers N`` and
across machines on one PostgreSQL, instead of once per process.

Follows the ``Store`` conventions: one transaction per method, time passed in.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, Float, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from oso_gateway.store.engine import (
    is_conflict,
    read_transaction,
    write_transaction,
    writer,
)
from oso_gateway.store.models import Base


class RateLimitCounter(Base):
    __tablename__ = "rate_limit_counters"

    #: SHA-256 (hex) of the limiter's key
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    #: the end of the window, seconds since the epoch
    window_ends: Mapped[float] = mapped_column(Float, index=True)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class RateLimitCounters:
    """Fixed-window counters over one engine (the gateway's database)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine: Engine | None = None  # at the first count (a spec-only app has none)

    @property
    def _writer(self) -> Engine:
        if self._write_engine is None:
            self._write_engine = writer(self.engine)
        return self._write_engine

    def incr(self, key: str, *, window: float, amount: int, now: float) -> int:
        """Count ``amount`` against ``key`` in its window (a new window of ``window`` seconds
        when none is open at ``now``); return the window's count so far."""
        hashed = key_hash(key)

        def work(session: Session) -> int:
            row = session.get(RateLimitCounter, hashed, with_for_update=True)
            if row is None:
                session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_ends <= now))
                row = RateLimitCounter(key_hash=hashed, count=0, window_ends=now + window)
                session.add(row)
            elif row.window_ends <= now:
                row.count, row.window_ends = 0, now + window
            row.count += amount
            session.flush()
            return row.count

        try:
            return write_transaction(self._writer, work)
        except Exception as exc:
            if not is_conflict(exc):
                raise
            # another process opened the same key's window first: count in that one
            return write_transaction(self._writer, work)

    def get(self, key: str, *, now: float) -> int:
        """The count of ``key``'s open window (0 when none is open at ``now``)."""
        row = self._row(key)
        return row[0] if row is not None and row[1] > now else 0

    def window_ends(self, key: str, *, now: float) -> float:
        """When ``key``'s open window ends (``now`` when none is open)."""
        row = self._row(key)
        return row[1] if row is not None and row[1] > now else now

    def _row(self, key: str) -> tuple[int, float] | None:
        hashed = key_hash(key)

        def work(session: Session) -> tuple[int, float] | None:
            found = session.execute(
                select(RateLimitCounter.count, RateLimitCounter.window_ends).where(
                    RateLimitCounter.key_hash == hashed
                )
            ).first()
            return None if found is None else (int(found[0]), float(found[1]))

        return read_transaction(self.engine, work)

    def clear(self, key: str) -> None:
        hashed = key_hash(key)
        write_transaction(
            self._writer,
            lambda session: session.execute(
                delete(RateLimitCounter).where(RateLimitCounter.key_hash == hashed)
            ),
        )

    def reset(self) -> int:
        """Forget every counter; return how many windows were open or kept."""

        def work(session: Session) -> int:
            result = session.execute(delete(RateLimitCounter))
            return int(result.rowcount)  # type: ignore[attr-defined]

        return write_transaction(self._writer, work)

    def reachable(self) -> bool:
        """Whether the database answers (the limiter's health check)."""
        try:
            read_transaction(self.engine, lambda session: session.execute(select(1)).scalar())
        except Exception:  # any failure: not healthy
            return False
        return True
