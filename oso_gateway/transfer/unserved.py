"""What a gateway still holds for schools it no longer serves: a school left the directory (it
moved to another vendor, changed BRIN or merged), and its API clients, console operators and
stored data stay behind. ``directory check`` reports them (``unserved_problems``); the school
API and the console refuse to act for such a school (OSO-E619), and the outbox does not send
for it (OSO-E464). Texts name school codes, client ids and names, account names, key ids and
counts: no pupil data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from oso_gateway.errors import SchoolsNotServed

#: the kinds of problem ``unserved_problems`` reports
API_CLIENT = "api_client_unserved"
OPERATOR = "operator_unserved"
STORAGE_KEY = "storage_key_unserved"
STORED_DATA = "stored_data_unserved"


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One problem of ``directory check``: its kind, the error code it carries (None: none
    applies) and what it says."""

    kind: str
    code: str | None
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "text": self.text}


def served_codes(directory: Any, oins: Iterable[str]) -> frozenset[str]:
    """The schools (BRIN + vestiging) whose gateway in ``directory`` is one of ``oins`` (the
    codes of ``services.served_schools``): the one answer for the console, the commands and
    ``directory check``."""
    return frozenset(
        e.code for oin in dict.fromkeys(oins) for e in directory.schools_served_by(oin)
    )


def our_codes(directory: Any, oins: Iterable[str]) -> frozenset[str]:
    """The schools ``oins`` serve or may send for (mandated): where a school's stored data and
    its own storage key belong (``keys rotate --school``, the outbox's sending schools)."""
    ours = set(oins)
    return frozenset(s.code for s in directory.schools() if ours & set(s.mandated))


def _listed(schools: Sequence[str], served: frozenset[str]) -> str:
    gone = [s for s in schools if s not in served]
    kept = [s for s in schools if s in served]
    text = f"school(s) {', '.join(gone)} not served by this gateway now"
    return text + (f" (it acts for {', '.join(kept)} only)" if kept else " (it acts for none)")


def client_problems(clients: Iterable[Any], served: frozenset[str]) -> list[Problem]:
    """Active API clients with a school this gateway does not serve now."""
    return [
        Problem(
            kind=API_CLIENT,
            code=SchoolsNotServed.code,
            text=f"API client {c.client_id} ({c.name}): {_listed(c.schools, served)}: "
            f"revoke it (`oso-gateway api-client revoke {c.client_id}`)",
        )
        for c in clients
        if c.revoked_at is None and any(s not in served for s in c.schools)
    ]


def operator_problems(operators: Iterable[Any], served: frozenset[str]) -> list[Problem]:
    """Console operators scoped to a school this gateway does not serve now."""
    return [
        Problem(
            kind=OPERATOR,
            code=SchoolsNotServed.code,
            text=f"console operator {o.name}: {_listed(o.schools, served)}: remove it "
            f"(`oso-gateway operator remove {o.name}`) or give it another school",
        )
        for o in operators
        if o.schools is not None and any(s not in served for s in o.schools)
    ]


def key_problems(
    keys: Iterable[Any], data_keys: dict[str, int], ours: frozenset[str]
) -> list[Problem]:
    """Per-school storage keys (not destroyed) and stored data (data keys) of schools this
    gateway neither serves nor sends for now."""
    found = [
        Problem(
            kind=STORAGE_KEY,
            code=None,
            text=f"storage key {k.key_id} ({k.state}) of school {k.school}, not served by this "
            f"gateway now: retire and delete it once nothing is wrapped under it "
            f"(`oso-gateway keys list`)",
        )
        for k in keys
        if k.school is not None and k.school not in ours and k.state != "destroyed"
    ]
    found += [
        Problem(
            kind=STORED_DATA,
            code=None,
            text=f"school {school}, not served by this gateway now: {count} stored item(s) "
            "under its data keys, kept until their retention period ends (`oso-gateway "
            'retention purge`; docs/operations.md, "A school leaves")',
        )
        for school, count in sorted(data_keys.items())
        if school not in ours and count
    ]
    return found
