"""Flask-Limiter's counters in the gateway's database (``store/rate_limits.py``).

Flask-Limiter keeps its counters in a ``limits`` storage; its ``memory://`` storage is one
process's memory, so with ``serve --workers N``, or several machines on one PostgreSQL, each
process allowed the whole limit and a client got N times it. This storage counts in the
database every process shares: the limit holds whatever the number of processes. Windows are
on the wall clock (``time.time``), as Flask-Limiter computes its reset headers.

It serves the fixed-window strategy (Flask-Limiter's default, the one the gateway uses): a
request is one ``incr``; ``get`` and ``get_expiry`` answer the ``X-RateLimit-*`` headers. A
database that cannot be reached raises ``StoreUnavailable`` (the request fails, with that code:
no request passes uncounted).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from flask import Flask
from flask_limiter import Limiter
from limits import parse_many
from limits.storage import Storage

from oso_gateway.errors import ApiRateLimited, StoreUnavailable
from oso_gateway.store import RateLimitCounters

#: the ``storage_uri`` that names this storage (``storage_options`` carries the counters)
STORAGE_URI = "oso-gateway-database://"


class DatabaseStorage(Storage):
    """A ``limits`` storage over ``RateLimitCounters`` (fixed windows only)."""

    #: registers the class under this scheme (``limits``' registry reads the class attribute)
    STORAGE_SCHEME = ["oso-gateway-database"]  # noqa: RUF012 - the base class declares a list

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        counters: RateLimitCounters | None = None,
        **options: Any,
    ) -> None:
        if counters is None:
            raise ValueError("DatabaseStorage needs the gateway's counters (storage_options)")
        self.counters = counters
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return StoreUnavailable

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.counters.incr(key, window=expiry, amount=amount, now=time.time())

    def get(self, key: str) -> int:
        return self.counters.get(key, now=time.time())

    def get_expiry(self, key: str) -> float:
        return self.counters.window_ends(key, now=time.time())

    def check(self) -> bool:
        return self.counters.reachable()

    def reset(self) -> int | None:
        return self.counters.reset()

    def clear(self, key: str) -> None:
        self.counters.clear(key)


def database_limiter(
    app: Flask,
    counters: RateLimitCounters,
    *,
    headers: bool = True,
    **kwargs: Any,
) -> Limiter:
    """A Flask-Limiter on ``app`` that counts in the database (``kwargs``: Limiter's own).
    ``headers``: Flask-Limiter's ``X-RateLimit-*`` and ``Retry-After`` on every response of a
    limited view (it raises a ``Retry-After`` the view set to the end of its own window)."""
    return Limiter(
        app=app,
        storage_uri=STORAGE_URI,
        storage_options={"counters": counters},  # type: ignore[dict-item]
        headers_enabled=headers,
        **kwargs,
    )


def address_key(address: str) -> str:
    """A client address as a rate limit counts it: an IPv6 address by its /64 (one host
    usually has a whole /64: counted alone, each address would have a limit of its own)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class FailureLimit:
    """A limit on failures (a missing or wrong credential) per client address, in the same
    shared counters: over it, a failed request is answered 429 (``ApiRateLimited``, with the
    seconds to wait as ``retry_after``) instead of 401, and is no longer written to the
    transfer log. Flask-Limiter's limits count requests that passed authentication, so failed
    ones were not limited at all. A valid credential is never refused by it.
    """

    def __init__(self, counters: RateLimitCounters, limit: str) -> None:
        self.counters = counters
        self.items = parse_many(limit)

    def _key(self, address: str, seconds: int) -> str:
        return f"auth-failures/{seconds}:{address}"

    def fail(self, address: str) -> None:
        """Count one failure from ``address``; ``ApiRateLimited`` when it is over a limit."""
        now = time.time()
        for item in self.items:
            seconds = item.get_expiry()
            key = self._key(address, seconds)
            if self.counters.incr(key, window=seconds, amount=1, now=now) > item.amount:
                wait = max(1, int(self.counters.window_ends(key, now=now) - now + 0.999))
                error = ApiRateLimited("too many failed authentications from this address")
                error.retry_after = wait  # type: ignore[attr-defined]
                raise error
