"""Business rules of the OSO gegevensset 2019 and the overstap profiles, in Python.

``check_rules(root, now=...)`` takes a dossier that already passed the schema and returns every
rule finding. Each rule has a stable code: the standard's own business-rule code where the
standard has one (``OG.01``, ``OS.cat05``, ``OVa.IZ03`` …), ``CLnn`` for a value outside code list
*nn* of "OSO codelijsten", and ``GW.…`` for the checks this gateway adds (identifier check digits,
dates against the clock, attachments). Messages are fixed texts per rule: they name fields and
rules, never a value from the dossier, so findings can be logged and sent to the peer.

Profiles: the overstapdossier rules (``OVa.*``) apply when ``overdrachtsoort`` is
``overstapdossier``; the overdracht-binnen-BRIN rules (``OVb.*``) when it is
``overdrachtbinnenbrin``. The common rules (code lists, ``OG.*``, ``OS.cat*``, ``GW.*``) always
apply.
"""

from __future__ import annotations

# The catalogue registers every rule at import, in this order (all_rules, docs/rules.md).
# isort: off
from oso_gateway.dossier.rules import catalogue_standard as catalogue_standard
from oso_gateway.dossier.rules import catalogue_profiles as catalogue_profiles
from oso_gateway.dossier.rules import catalogue_gateway as catalogue_gateway

# isort: on
from oso_gateway.dossier.rules.attachment import scan_base64
from oso_gateway.dossier.rules.catalogue_profiles import _PAO_FROM_OVA
from oso_gateway.dossier.rules.check_gateway import DATE_PAIRS
from oso_gateway.dossier.rules.check_profiles import _PAO_PO_FORBIDDEN, _PAO_VO_FORBIDDEN
from oso_gateway.dossier.rules.check_standard import category_findings
from oso_gateway.dossier.rules.engine import check_rules
from oso_gateway.dossier.rules.registry import (
    BINNENBRIN,
    CLOCK_SLACK,
    OVERSTAPDOSSIER,
    PROFILES,
    SECRET_EMAIL,
    SECRET_PHONE,
    STANDAARDVERSIE,
    SWV_DOSSIER,
    VALIDATIEVERSIE,
    Rule,
    all_rules,
    rule,
)
from oso_gateway.dossier.rules.values import (
    brin_is_valid,
    bsn_is_valid,
    element_path,
    email_is_valid,
    onderwijsnummer_is_valid,
    vestiging_is_valid,
)

__all__ = [
    "BINNENBRIN",
    "CLOCK_SLACK",
    "DATE_PAIRS",
    "OVERSTAPDOSSIER",
    "PROFILES",
    "SECRET_EMAIL",
    "SECRET_PHONE",
    "STANDAARDVERSIE",
    "SWV_DOSSIER",
    "VALIDATIEVERSIE",
    "_PAO_FROM_OVA",
    "_PAO_PO_FORBIDDEN",
    "_PAO_VO_FORBIDDEN",
    "Rule",
    "all_rules",
    "brin_is_valid",
    "bsn_is_valid",
    "catalogue_gateway",
    "catalogue_profiles",
    "catalogue_standard",
    "category_findings",
    "check_rules",
    "element_path",
    "email_is_valid",
    "onderwijsnummer_is_valid",
    "rule",
    "scan_base64",
    "vestiging_is_valid",
]
