"""What a dossier discloses, per category: the facts a disclosure record keeps (pure).

``disclosure_facts`` compares what minimisation left in the dossier with what the school's
``categorie_uitlevering`` and the parents' objections withheld. It returns category keys, reasons
and the dossier's own inzage record (whether and when the parents reviewed it): no pupil data.
``pupil_number`` reads the BSN (or onderwijsnummer), which callers store only as a keyed hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from oso_gateway.dossier.categories import (
    CATEGORIES,
    EXCLUDED,
    Uitlevering,
    declared_status,
    is_present,
    q,
)
from oso_gateway.dossier.minimise import MinimiseResult

#: why a category was withheld
VERBODEN = "VERBODEN"
OPT_UIT = "OPT-UIT"
OBJECTION = "objection"
REASONS = (VERBODEN, OPT_UIT, OBJECTION)


@dataclass(frozen=True, kw_only=True)
class Withheld:
    category: str
    reason: str  #: VERBODEN, OPT-UIT (the school's file) or objection (recorded at the gateway)


@dataclass(frozen=True, kw_only=True)
class DisclosureFacts:
    """Category keys sent and withheld (with the reason), and the inzage record, if any."""

    sent: tuple[str, ...]
    withheld: tuple[Withheld, ...]
    #: {"inzage": "true"/"false", "date": "YYYY-MM-DD"} from the dossier's own inzage element
    inzage: dict[str, str] | None = None


def disclosure_facts(minimised: MinimiseResult) -> DisclosureFacts:
    """The disclosure of a minimised dossier (``minimise`` applied the objections as opt-outs)."""
    root = minimised.root
    objected = set(minimised.opted_out)
    sent = tuple(c.key for c in CATEGORIES if is_present(root, c))
    withheld = []
    for c in CATEGORIES:
        status = declared_status(root, c)
        if isinstance(status, Uitlevering) and status in EXCLUDED:
            reason = OBJECTION if c.key in objected else str(status)
            withheld.append(Withheld(category=c.key, reason=reason))
    return DisclosureFacts(sent=sent, withheld=tuple(withheld), inzage=inzage_record(root))


def inzage_record(root: etree._Element) -> dict[str, str] | None:
    block = root.find(q("inzage"))
    if block is None:
        return None
    record = {}
    given = (block.findtext(q("inzage")) or "").strip()
    when = (block.findtext(q("inzagedatum")) or "").strip()
    if given in ("true", "false", "1", "0"):
        record["inzage"] = "true" if given in ("true", "1") else "false"
    if len(when) == 10 and when[4] == "-" and when[7] == "-" and when.replace("-", "").isdigit():
        record["date"] = when
    return record or None


def pupil_number(root: etree._Element) -> str | None:
    """The pupil's BSN, else onderwijsnummer (for a keyed hash; never stored or logged)."""
    pupil = root.find(f"{q('huidigeschool')}/{q('leerling')}")
    if pupil is None:
        return None
    for name in ("bsn", "onderwijsnummer"):
        value = (pupil.findtext(q(name)) or "").strip()
        if value:
            return value
    return None
