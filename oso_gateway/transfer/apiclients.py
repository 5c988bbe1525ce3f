"""School-API clients: credentials for school systems, each scoped to schools of this gateway.

A credential is ``<client-id>.<secret>``: the id (``c-`` + 16 hex digits) names the client, the
secret is 256 random bits shown once at creation and stored only as its SHA-256. (A password
hash such as argon2 would cost every API request tens of milliseconds and buys nothing for a
random 256-bit secret, which no dictionary holds.) Revocation is immediate: every request
reads the client's row.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from oso_gateway.errors import (
    ApiClientConfigError,
    ApiClientNotFound,
    ApiCredentialInvalid,
    ApiCredentialMissing,
    SchoolsNotServed,
)
from oso_gateway.store.api_clients import ApiClientRecord, ApiClientStore

log = logging.getLogger(__name__)

CLIENT_ID_RE = re.compile(r"c-[0-9a-f]{16}")
SCHOOL_RE = re.compile(r"[0-9]{2}[0-9A-Z]{2}[0-9]{2}")
_NAME_RE = re.compile(r"[A-Za-z0-9 ._()-]{1,100}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{43}")


#: what ``add_many`` made (client, credential) and skipped (line, existing client)
_Made = list[tuple[ApiClientRecord, str]]
_Skipped = list[tuple[int, ApiClientRecord]]


def secret_hash(secret: str) -> str:
    return hashlib.sha256(b"oso-gateway api secret\x00" + secret.encode("ascii")).hexdigest()


class ApiClients:
    """Create, list, revoke and authenticate API clients."""

    def __init__(self, store: ApiClientStore, *, served: Callable[[], Iterable[str]]) -> None:
        self.store = store
        self.served = served  #: the schools (BRIN + vestiging) this gateway serves

    def add(
        self, name: str, schools: Iterable[str], *, now: datetime
    ) -> tuple[ApiClientRecord, str]:
        """A new client; returns it and its credential (shown once, never stored). A name an
        active client has (compared as ``add_many`` compares them) is refused as there: two
        active clients of one name were made one at a time (a vendor's walkthrough)."""
        codes = self.check(name, schools)
        active = self._active_by_name()
        if _same(name) in active:
            raise ApiClientConfigError(_named_already(active[_same(name)].name))
        return self._make(name, codes, now=now)

    def _active_by_name(self) -> dict[str, ApiClientRecord]:
        return {_same(r.name): r for r in self.store.list() if r.revoked_at is None}

    def add_many(
        self,
        entries: Sequence[tuple[int, str, Sequence[str]]],
        *,
        now: datetime,
        skip_existing: bool = False,
    ) -> tuple[_Made, _Skipped]:
        """A client for each (line, name, schools) of a vendor's list: every entry is checked
        before any is made, so a mistake makes none (``ApiClientConfigError`` naming the line).
        A name may not repeat, nor be an active client's: a list run twice makes nothing the
        second time (it made a second set of credentials, silently: a walkthrough). Names are
        compared without case and with runs of spaces as one ("LAS-A " and "las-a" are
        "LAS-A": a review). All are made in one transaction.

        ``skip_existing``: a line whose name is an active client's of the same schools is
        skipped (a list with a line appended runs again); the same name with other schools is
        still refused. Returns the clients made and the (line, client) skipped."""
        active = self._active_by_name()
        taken = {key: r.name for key, r in active.items()}
        checked: list[tuple[str, tuple[str, ...]]] = []
        skipped: _Skipped = []
        for line, name, schools in entries:
            try:
                codes = self.check(name, schools)
                if _same(name) in taken:
                    existing = active.get(_same(name))
                    if skip_existing and existing and set(existing.schools) == set(codes):
                        skipped.append((line, existing))
                        active.pop(_same(name))  # a second line of it is refused
                        continue
                    other = skip_existing and existing is not None
                    raise ApiClientConfigError(_named_already(taken[_same(name)], other=other))
            except ApiClientConfigError as exc:
                raise ApiClientConfigError(f"line {line}: {exc.detail}") from None
            taken[_same(name)] = name
            checked.append((name, codes))
        if not checked:
            return [], skipped
        rows, credentials = [], []
        for name, codes in checked:
            client_id, secret = "c-" + secrets.token_hex(8), secrets.token_urlsafe(32)
            rows.append((client_id, name, secret_hash(secret), codes))
            credentials.append(f"{client_id}.{secret}")
        made = list(zip(self.store.add_all(rows, now=now), credentials, strict=True))
        return made, skipped

    def check(self, name: str, schools: Iterable[str]) -> tuple[str, ...]:
        """The school codes of a new client named ``name``, or ``ApiClientConfigError``."""
        if not _NAME_RE.fullmatch(name):
            raise ApiClientConfigError("name: 1-100 letters, digits, spaces or ._()-")
        codes = tuple(dict.fromkeys(s.strip().upper() for s in schools if s.strip()))
        if not codes:
            raise ApiClientConfigError("give at least one school (BRIN + vestiging, e.g. 01AB00)")
        bad = [c for c in codes if not SCHOOL_RE.fullmatch(c)]
        if bad:
            raise ApiClientConfigError(f"not a BRIN + vestiging code: {bad[0][:20]!r}")
        served = set(self.served())
        foreign = [c for c in codes if c not in served]
        if foreign:
            raise ApiClientConfigError(f"school {foreign[0]} is not served by this gateway")
        return codes

    def _make(
        self, name: str, codes: tuple[str, ...], *, now: datetime
    ) -> tuple[ApiClientRecord, str]:
        client_id = "c-" + secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = self.store.add(
            client_id=client_id, name=name, secret_hash=secret_hash(secret), schools=codes, now=now
        )
        return record, f"{client_id}.{secret}"

    def list(self) -> list[ApiClientRecord]:
        return self.store.list()

    def revoke(self, client_id: str, *, now: datetime) -> ApiClientRecord | None:
        if not CLIENT_ID_RE.fullmatch(client_id):
            return None
        return self.store.revoke(client_id, now=now)

    def serving(self, record: ApiClientRecord) -> tuple[str, ...]:
        """The schools of ``record`` this gateway serves now (the live directory's): what the
        client may act for. ``SchoolsNotServed`` (E619, logged) when none is: its schools left
        this gateway (removed from the directory, a new BRIN, a merger)."""
        served = set(self.served())
        acting = tuple(s for s in record.schools if s in served)
        if not acting:
            log.warning(
                "API client %s refused: none of its schools (%s) is served by this gateway now",
                record.client_id,
                ", ".join(record.schools),
            )
            raise SchoolsNotServed(
                f"client {record.client_id}: school(s) {', '.join(record.schools)} not served "
                "by this gateway now (the directory no longer gives them to it)"
            )
        return acting

    def revoke_many(
        self, entries: Sequence[tuple[int | None, str]], *, now: datetime
    ) -> Sequence[ApiClientRecord]:
        """Revoke the client each (line, id or name) names, all in one transaction: every
        entry is looked up first, and one that names no client revokes none
        (``ApiClientNotFound``, naming the line). A name is an active client's (compared as
        ``add_many`` compares them; every active one of it); an id is revoked whatever its
        state (revoking twice changes nothing). Returns the clients named, each once."""
        clients = self.store.list()
        by_id = {r.client_id: r for r in clients}
        wanted: dict[str, None] = {}
        for line, given in entries:
            found = [by_id[given]] if given in by_id else []
            found = found or [r for r in clients if r.active and _same(r.name) == _same(given)]
            if not found:
                where = f"line {line}: " if line is not None else ""
                # never a pasted credential (``c-….<secret>``: it matches the name's letters),
                # nor anything else not a plain id or name
                plain = _NAME_RE.fullmatch(given) and "." not in given and len(given) <= 40
                shown = given if plain else "(not shown: not a plain id or name)"
                raise ApiClientNotFound(
                    f"{where}no API client {shown[:100]!r} (an id, or an active client's name)"
                )
            wanted.update(dict.fromkeys(r.client_id for r in found))
        return self.store.revoke_all(list(wanted), now=now)

    def revoke_school(self, school: str, *, now: datetime) -> Sequence[ApiClientRecord]:
        """Revoke every active client that may act for ``school`` (its other schools lose it
        too); ``ApiClientNotFound`` when there is none."""
        code = school.strip().upper()
        ids = [r.client_id for r in self.store.list() if r.active and code in r.schools]
        if not ids:
            raise ApiClientNotFound(f"no active API client for school {code[:20]}")
        return self.store.revoke_all(ids, now=now)

    def authenticate(self, authorization: str | None) -> ApiClientRecord:
        """The active client an ``Authorization: Bearer <id>.<secret>`` header names.

        ``ApiCredentialMissing`` without a bearer credential; ``ApiCredentialInvalid`` (one
        answer) when it is malformed, unknown, revoked or the secret is wrong.
        """
        if not authorization:
            raise ApiCredentialMissing("no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiCredentialMissing("Authorization is not a Bearer credential")
        client_id, _, secret = token.strip().partition(".")
        if not CLIENT_ID_RE.fullmatch(client_id) or not _SECRET_RE.fullmatch(secret):
            raise ApiCredentialInvalid("malformed credential")
        record = self.store.get(client_id)
        expected = record.secret_hash if record is not None else secret_hash("x" * 43)
        matches = hmac.compare_digest(expected, secret_hash(secret))
        if record is None:
            raise ApiCredentialInvalid(f"unknown client {client_id}")
        if not matches:
            raise ApiCredentialInvalid(f"wrong secret for client {client_id}")
        if record.revoked_at is not None:
            raise ApiCredentialInvalid(f"client {client_id} is revoked")
        return record


def _named_already(name: str, *, other: bool = False) -> str:
    schools = ", for other schools" if other else ""
    return f"an active client is named {name!r} already{schools} (revoke it first)"


def _same(name: str) -> str:
    """A client name as names are compared: without case, its spaces trimmed and runs of them
    as one."""
    return " ".join(name.split()).casefold()
