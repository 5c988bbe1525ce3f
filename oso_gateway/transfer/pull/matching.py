"""Does a dossier's pupil match the request? (pure; compares values, logs nothing)

The identifier (BSN or onderwijsnummer, whichever the request gives) and the birth date must be
equal; a dossier that lacks either cannot be confirmed and does not match. A different family
name is only a warning: names are spelled in many ways (prefixes, diacritics, a second surname),
and the two numbers already pin the pupil.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from lxml import etree

from oso_gateway.protocol import DOSSIER_NS
from oso_gateway.transfer.pull.payloads import Pupil

_N = f"{{{DOSSIER_NS}}}"


@dataclass(frozen=True, kw_only=True)
class Match:
    matches: bool
    #: which facts differ: "identifier", "birth_date" (refusing) and "name" (a warning)
    differs: tuple[str, ...] = ()

    @property
    def name_warning(self) -> bool:
        return "name" in self.differs


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in decomposed if c.isalnum())
    return letters.casefold()


def match_pupil(dossier: etree._Element, pupil: Pupil) -> Match:
    leerling = dossier.find(f"{_N}huidigeschool/{_N}leerling")
    if leerling is None:
        return Match(matches=False, differs=("identifier", "birth_date"))
    differs = []
    if pupil.bsn is not None:
        found = (leerling.findtext(_N + "bsn") or "").strip()
        wanted = pupil.bsn
    else:
        found = (leerling.findtext(_N + "onderwijsnummer") or "").strip()
        wanted = pupil.onderwijsnummer or ""
    if not found or found != wanted:
        differs.append("identifier")
    born = (leerling.findtext(_N + "geboortedatum") or "").strip()
    if born != pupil.birth_date.isoformat():
        differs.append("birth_date")
    prefix = leerling.findtext(_N + "voorvoegsel") or ""
    surname = leerling.findtext(_N + "achternaam") or ""
    wanted_name = _fold(pupil.family_name)
    if wanted_name not in (_fold(surname), _fold(prefix + surname)):
        differs.append("name")
    refusing = [d for d in differs if d != "name"]
    return Match(matches=not refusing, differs=tuple(differs))
