"""The rule registry: each rule's stable code, severity and fixed bilingual message, and the
profile constants the rules share (no checks here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from oso_gateway.dossier.findings import Severity
from oso_gateway.protocol import STANDAARDVERSIE as STANDAARDVERSIE
from oso_gateway.protocol import VALIDATIEVERSIE as VALIDATIEVERSIE

E = Severity.ERROR
W = Severity.WARNING

OVERSTAPDOSSIER = "overstapdossier"
BINNENBRIN = "overdrachtbinnenbrin"
SWV_DOSSIER = "swv-dossier"
#: Secret-number placeholders the overstap profiles prescribe for a secret phone number / e-mail.
SECRET_PHONE = "9999999999"  # noqa: S105 (a placeholder the standard fixes)
SECRET_EMAIL = "geheim@geheim.geheim"  # noqa: S105
#: Slack when comparing a dossier date with ``now``: the school's calendar day may already be
#: tomorrow in UTC terms (the Netherlands are UTC+1/+2).
CLOCK_SLACK = timedelta(days=1)

#: Profile (by overdrachtsoort) → rule prefix.
PROFILES = {OVERSTAPDOSSIER: "OVa", BINNENBRIN: "OVb", SWV_DOSSIER: "PaO"}


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One business rule: stable code, severity and fixed bilingual message (no data)."""

    id: str  #: unique key (code, or code + ":" + variant when one code covers several checks)
    code: str
    severity: Severity
    nl: str
    en: str
    standard: str = ""  #: the standard's rule it implements ("" for our own)


_RULES: dict[str, Rule] = {}


def _rule(rid: str, severity: Severity, nl: str, en: str, *, standard: str | None = None) -> None:
    code = rid.split(":", 1)[0]
    if rid in _RULES:
        raise ValueError(f"duplicate rule id {rid}")
    std = standard if standard is not None else ("" if code.startswith("GW.") else code)
    _RULES[rid] = Rule(id=rid, code=code, severity=severity, nl=nl, en=en, standard=std)


def all_rules() -> list[Rule]:
    """Every rule, in definition order (for docs and tests)."""
    return list(_RULES.values())


def rule(rid: str) -> Rule:
    return _RULES[rid]
