"""Synthetic OSO gegevensset 2019.1 dossiers for tests, the demo and the benchmarks.

``generate_dossier`` is pure and deterministic: no I/O, no clock (``now`` is an argument), and all
randomness comes from ``random.Random(seed)`` (attachment bytes from a ``Random`` derived from the
same seed). The same arguments always give byte-identical XML.

What a dossier contains follows the official example dossiers for each kind of transfer:

* POPO (primary → primary), POVO (primary → secondary), VOVO (secondary → secondary): an
  ``overstapdossier`` with the categorie_uitlevering the official examples use for that kind.
* POSWV, VOSWV (primary/secondary school → samenwerkingsverband passend onderwijs, e.g. for a
  toelaatbaarheidsverklaring): a ``swv-dossier``; the onderwijsondersteuning block is always there
  and, as the SWV profile requires, the pupil has no BSN or onderwijsnummer.

Every generated person is fictional: names come from ``fakedata``; the pupil's BSN is drawn from a
test range (see ``TEST_BSN_MIN``), or an onderwijsnummer on request; e-mail addresses and websites
use the reserved ``.example`` domain.

Size: without attachments a dossier is roughly 7-22 KB of XML (16 KB on average). Attachments
(``attachments_kb``) are real ZIP files (stored, not compressed, filled with incompressible
pseudo-random bytes), base64 encoded, so the XML grows by about 4/3 x ``attachments_kb`` KB:
``attachments_kb=10`` gives dossiers of about 30 KB, ``attachments_kb=115`` about 175 KB.
``generate_dossier_of_size`` hits a target size directly (benchmarks: 30 KB, 2 MB, 50 MB).
"""

from __future__ import annotations

import base64
import io
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from lxml import etree

from oso_gateway.dossier import fakedata
from oso_gateway.dossier.rules import bsn_is_valid, onderwijsnummer_is_valid
from oso_gateway.protocol import DOSSIER_NS, STANDAARDVERSIE, VALIDATIEVERSIE

NS: Final = DOSSIER_NS
PAKKETNAAM: Final = "oso-gateway testdata"
#: Version of the generator's output; bumped when the same seed starts giving different dossiers.
PAKKETVERSIE: Final = "1"

#: Supported kinds of transfer (values of metadata/overstap, codelist 16).
OVERSTAP_KINDS: Final[tuple[str, ...]] = ("POPO", "POVO", "VOVO", "POSWV", "VOSWV")

#: Category keys in the order of categorie_uitlevering.
CATEGORY_KEYS: Final[tuple[str, ...]] = (
    "metadata",
    "ouderinzage",
    "school",
    "leerling",
    "oudersverzorgers",
    "vve",
    "schoolloopbaan",
    "overstapadvies",
    "onderwijsondersteuning",
    "verzuim",
    "eindtoetsbo",
    "toetsresultaten",
    "handelingsplannen",
    "cijferlijsten",
    "vombo",
    "bijlagedocs",
)
VERPLICHT: Final = "VERPLICHT"
OPTIONEEL: Final = "OPTIONEEL"
VERBODEN: Final = "VERBODEN"
OPT_UIT: Final = "OPT-UIT"
_ALWAYS_VERPLICHT: Final = frozenset(
    {"metadata", "ouderinzage", "school", "leerling", "oudersverzorgers", "schoolloopbaan"}
    | {"overstapadvies"}
)

#: BSN test range. Real BSNs are issued by municipalities; the numbers 999990000-999999999 are
#: used by the Rijksdienst voor Identiteitsgegevens for the fictional persons of its BRP/BSN test
#: environments, so a BSN from this range is recognisably test data. We draw from it only.
TEST_BSN_MIN: Final = 999_990_000
TEST_BSN_MAX: Final = 999_999_999

#: Fixed timestamp for every ZIP entry (deterministic archives).
_ZIP_DATE_TIME: Final = (2020, 1, 1, 0, 0, 0)
#: Bytes of ZIP structure around one stored entry, excluding twice the file name
#: (local header 30 + central directory entry 46 + end of central directory 22).
_ZIP_OVERHEAD: Final = 98


@dataclass(frozen=True, kw_only=True)
class School:
    """A (fictional) school: the sending school of a generated dossier."""

    brin: str
    vestiging: str
    naam: str
    sector: str  #: "PO" (primary) or "VO" (secondary)
    straat: str
    huisnummer: str
    postcode: str
    plaats: str
    telefoon: str
    email: str
    website: str
    directeur: str

    def __post_init__(self) -> None:
        brin_ok = (
            len(self.brin) == 4 and self.brin[:2].isdigit() and self.brin[2:].isalpha()
        ) and self.brin[2:].isupper()
        if not brin_ok or not self.brin.isascii():
            raise ValueError("BRIN must be 2 digits followed by 2 capital letters, e.g. 00YY")
        if len(self.vestiging) != 2 or not self.vestiging.isdigit() or not self.vestiging.isascii():
            raise ValueError("vestiging must be 2 digits, e.g. 00")
        if self.sector not in ("PO", "VO"):
            raise ValueError("sector must be PO or VO")


def _school(brin: str, naam: str, sector: str, plaats: str, pc: str, tel: str) -> School:
    slug = "".join(ch for ch in naam.lower() if ch.isalnum())
    return School(
        brin=brin,
        vestiging="00",
        naam=naam,
        sector=sector,
        straat="Schoolstraat" if sector == "PO" else "Collegeweg",
        huisnummer="1",
        postcode=pc,
        plaats=plaats,
        telefoon=tel,
        email=f"administratie@{slug}.example",
        website=f"www.{slug}.example",
        directeur="M. de Vries" if sector == "PO" else "drs. J. Bakker",
    )


#: The schools of the development PKI (certs/dev): BRIN 00YY, 01AB, 02CD, 03EF, vestiging 00.
DEMO_SCHOOLS: Final[tuple[School, ...]] = (
    _school("00YY", "Basisschool De Regenboog", "PO", "Apeldoorn", "7311AB", "0551234567"),
    _school("01AB", "Het Dev College", "VO", "Apeldoorn", "7321CD", "0557654321"),
    _school("02CD", "Basisschool De Zonnewijzer", "PO", "Deventer", "7411EF", "0570123456"),
    _school("03EF", "Scholengemeenschap De Brug", "VO", "Deventer", "7421GH", "0570654321"),
)

#: Typical (sending, receiving) demo schools per kind of transfer (BRIN + vestiging). The receiving
#: school is not part of the dossier itself; it is where the demo sends it.
DEMO_ROUTES: Final[dict[str, tuple[str, str]]] = {
    "POPO": ("00YY00", "02CD00"),
    "POVO": ("00YY00", "01AB00"),
    "VOVO": ("01AB00", "03EF00"),
    "POSWV": ("00YY00", "02CD00"),
    "VOSWV": ("01AB00", "03EF00"),
}


def demo_school(brin_vestiging: str) -> School:
    """The demo school with this BRIN + vestiging (e.g. ``"00YY00"``)."""
    for school in DEMO_SCHOOLS:
        if school.brin + school.vestiging == brin_vestiging:
            return school
    raise KeyError(brin_vestiging)


@dataclass(frozen=True)
class _Kind:
    sector: str  # sector of the sending school
    overdrachtsoort: str
    categories: dict[str, str]


def _cats(**overrides: str) -> dict[str, str]:
    out = {k: (VERPLICHT if k in _ALWAYS_VERPLICHT else OPTIONEEL) for k in CATEGORY_KEYS}
    out.update(overrides)
    return out


# As in the official example dossiers: VVE only for POPO, VO-MBO only from VO. The SWV profile
# (PaO) forbids the eindtoets block in a dossier from a primary school.
_KINDS: Final[dict[str, _Kind]] = {
    "POPO": _Kind("PO", "overstapdossier", _cats(vombo=VERBODEN)),
    "POVO": _Kind("PO", "overstapdossier", _cats(vve=VERBODEN, vombo=VERBODEN)),
    "VOVO": _Kind("VO", "overstapdossier", _cats(vve=VERBODEN)),
    "POSWV": _Kind("PO", "swv-dossier", _cats(vombo=VERBODEN, eindtoetsbo=VERBODEN)),
    "VOSWV": _Kind("VO", "swv-dossier", _cats(vve=VERBODEN)),
}


def test_bsn(rng: random.Random) -> str:
    """A BSN from the test range that passes the 11-proef."""
    while True:
        candidate = str(rng.randint(TEST_BSN_MIN, TEST_BSN_MAX))
        if bsn_is_valid(candidate):
            return candidate


test_bsn.__test__ = False  # type: ignore[attr-defined]  # not a pytest test

#: Onderwijsnummers (for pupils without a BSN) are issued by DUO: nine digits starting with "10"
#: whose BSN-weighted sum leaves remainder 5 mod 11. There is no official test range; we use
#: 109990000-109999999 by analogy with the BSN test range.
TEST_ONDERWIJSNUMMER_MIN: Final = 109_990_000
TEST_ONDERWIJSNUMMER_MAX: Final = 109_999_999


def test_onderwijsnummer(rng: random.Random) -> str:
    """An onderwijsnummer from our test range that passes its check."""
    while True:
        candidate = str(rng.randint(TEST_ONDERWIJSNUMMER_MIN, TEST_ONDERWIJSNUMMER_MAX))
        if onderwijsnummer_is_valid(candidate):
            return candidate


test_onderwijsnummer.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# --------------------------------------------------------------------------- helpers


def _today(now: date | datetime) -> date:
    return now.date() if isinstance(now, datetime) else now


def _schoolyear_start(day: date) -> int:
    """Calendar year in which the school year containing ``day`` started (1 August)."""
    return day.year if day.month >= 8 else day.year - 1


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _d(day: date) -> str:
    return day.isoformat()


def _b(value: bool) -> str:
    return "true" if value else "false"


def _rand_date(rng: random.Random, start: date, end: date) -> date:
    if end <= start:
        return start
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _initials(names: Sequence[str]) -> str:
    return "".join(f"{n[0]}." for n in names if n)


@dataclass
class _Address:
    straat: str
    nummer: str
    toevoeging: str | None
    postcode: str
    plaats: str
    gemeente: str
    netnummer: str


@dataclass
class _Person:
    geslacht: str
    voornamen: list[str]
    voorvoegsel: str
    achternaam: str
    roepnaam: str


@dataclass
class _Ctx:
    """Everything the section builders share."""

    rng: random.Random
    kind: str
    profile: _Kind
    today: date
    school: School
    cats: dict[str, str]
    pupil: _Person
    address: _Address
    birth: date
    level: int  # PO: groep 1..8; VO: leerjaar 1..6 (jaargroep 11..16)
    vo_programma: tuple[str, str, str, int] | None
    advies: tuple[str, str] | None
    address_secret: bool = False  # adresgeheim: no address of the pupil (or of carers living there)
    documents: list[tuple[etree._Element, str]] = field(default_factory=list)

    def allowed(self, key: str) -> bool:
        return self.cats[key] in (VERPLICHT, OPTIONEEL)

    @property
    def po(self) -> bool:
        return self.profile.sector == "PO"


def _address(rng: random.Random) -> _Address:
    plaats, gemeente, pc2, netnummer = rng.choice(fakedata.PLACES)
    letters = fakedata.POSTCODE_LETTERS
    return _Address(
        straat=rng.choice(fakedata.STREETS),
        nummer=str(rng.randint(1, 180)),
        toevoeging=rng.choice(("a", "b", "bis")) if rng.random() < 0.1 else None,
        postcode=f"{pc2}{rng.randint(10, 99)}{rng.choice(letters)}{rng.choice(letters)}",
        plaats=plaats,
        gemeente=gemeente,
        netnummer=netnummer,
    )


def _person(rng: random.Random, geslacht: str, surname: tuple[str, str] | None = None) -> _Person:
    n = rng.choices((1, 2, 3), weights=(5, 4, 1))[0]
    names = rng.sample(fakedata.FIRST_NAMES[geslacht], n)
    voorvoegsel, achternaam = surname if surname is not None else rng.choice(fakedata.SURNAMES)
    return _Person(geslacht, names, voorvoegsel, achternaam, names[0])


def _phone(rng: random.Random, netnummer: str | None = None) -> str:
    if netnummer is None:
        return "06" + "".join(str(rng.randrange(10)) for _ in range(8))
    return netnummer + "".join(str(rng.randrange(10)) for _ in range(10 - len(netnummer)))


def _email_local(person: _Person) -> str:
    raw = f"{person.roepnaam}.{person.voorvoegsel}{person.achternaam}".lower()
    return "".join(ch for ch in raw if ch.isascii() and (ch.isalnum() or ch == "."))


# --------------------------------------------------------------------------- building blocks


def _adres(parent: etree._Element, a: _Address, soort: str = "bezoek") -> None:
    adres = _sub(parent, "adres")
    _sub(adres, "soortadres", soort)
    _sub(adres, "straat", a.straat)
    _sub(adres, "nummer", a.nummer)
    if a.toevoeging:
        _sub(adres, "toevoeging", a.toevoeging)
    _sub(adres, "postcode", a.postcode)
    _sub(adres, "plaats", a.plaats)
    _sub(adres, "gemeente", a.gemeente)
    _sub(adres, "land", "6030").set("omschrijving", "Nederland")


def _communicatie(
    parent: etree._Element,
    soort: str,
    aanduiding: str,
    nummer: str,
    *,
    geheim: bool | None = None,
    nood: bool | None = None,
) -> None:
    c = _sub(parent, "communicatie")
    _sub(c, "soort", soort)
    _sub(c, "aanduiding", aanduiding)
    _sub(c, "nummer", nummer)
    if geheim is not None:
        _sub(c, "geheim", _b(geheim))
    if nood is not None:
        _sub(c, "noodnummer", _b(nood))


def _names(parent: etree._Element, p: _Person, *, roepnaam: bool = True) -> None:
    for name in p.voornamen:
        _sub(parent, "voornaam", name)
    _sub(parent, "voorletters-1", _initials(p.voornamen))
    if p.voorvoegsel:
        _sub(parent, "voorvoegsel", p.voorvoegsel)
    _sub(parent, "achternaam", p.achternaam)
    if roepnaam:
        _sub(parent, "roepnaam", p.roepnaam)


def _document(ctx: _Ctx, parent: etree._Element, kind: str) -> None:
    """A document slot; its content is filled in (or the slot removed) at the end."""
    filename, omschrijving = ctx.rng.choice(fakedata.DOCUMENT_KINDS[kind])
    doc = _sub(parent, "document")
    _sub(doc, "bestandsnaam", filename)
    _sub(doc, "omschrijving", omschrijving)
    content = _sub(doc, "bestandsinhoud", "-")
    ctx.documents.append((content, filename))


# --------------------------------------------------------------------------- sections


def _metadata(ctx: _Ctx, root: etree._Element) -> None:
    md = _sub(root, "metadata")
    _sub(md, "deeldossier", "LASLVS")
    _sub(md, "pakketnaam", PAKKETNAAM)
    _sub(md, "pakketversie", PAKKETVERSIE)
    _sub(md, "datum", _d(ctx.today))
    _sub(md, "standaardversie", STANDAARDVERSIE)
    _sub(md, "validatieversie", VALIDATIEVERSIE)
    cu = _sub(md, "categorie_uitlevering")
    for key in CATEGORY_KEYS:
        _sub(cu, f"cat_{key}", ctx.cats[key])
    _sub(md, "overstap", ctx.kind)


def _inzage(ctx: _Ctx, root: etree._Element) -> None:
    rng = ctx.rng
    inz = _sub(root, "inzage")
    _sub(inz, "voorlopigdossier", _b(rng.random() < 0.1))
    _sub(inz, "inzage", "true")
    _sub(inz, "inzagedatum", _d(ctx.today - timedelta(days=rng.randint(1, 21))))
    akkoord = rng.choices(("Ja", "Nee", "Onbekend"), weights=(17, 2, 1))[0]
    _sub(inz, "akkoord", akkoord)
    if akkoord == "Nee":
        _sub(inz, "redennietakkoord", rng.choice(fakedata.REDEN_NIET_AKKOORD))
    _sub(inz, "toestemming", "Ja")


def _huidigeschool_head(ctx: _Ctx, root: etree._Element) -> etree._Element:
    s = ctx.school
    hs = _sub(root, "huidigeschool")
    _sub(hs, "naam", s.naam)
    lst = _sub(hs, "adreslijst")
    plaats = next((p for p in fakedata.PLACES if p[0] == s.plaats), None)
    gemeente = plaats[1] if plaats else s.plaats
    _adres(lst, _Address(s.straat, s.huisnummer, None, s.postcode, s.plaats, gemeente, ""))
    com = _sub(hs, "communicatielijst")
    _communicatie(com, "telefoon", "werk", s.telefoon, nood=False)
    _communicatie(com, "e-mail", "werk", s.email, nood=False)
    _sub(hs, "brincode", s.brin)
    _sub(hs, "vestigingscode", s.vestiging)
    _sub(hs, "aanleverpunt", "1")
    _sub(hs, "soort", "BAO" if s.sector == "PO" else "VO")
    _sub(hs, "naamdirecteur", s.directeur)
    _sub(hs, "website", s.website)
    return hs


def _leerling_personal(ctx: _Ctx, ll: etree._Element, identifier: tuple[str, str] | None) -> None:
    rng, p = ctx.rng, ctx.pupil
    _names(ll, p)
    _sub(ll, "geboortedatum", _d(ctx.birth))
    _sub(ll, "geslacht", p.geslacht)
    _sub(ll, "adresgeheim", _b(ctx.address_secret))
    if not ctx.address_secret:
        _adres(_sub(ll, "adreslijst"), ctx.address)
    if not ctx.po or ctx.level >= 7:
        com = _sub(ll, "communicatielijst")
        _communicatie(com, "telefoon", "prive", _phone(rng), geheim=False, nood=False)
        local = _email_local(p).replace(".", "", 1) + str(rng.randint(1, 99))
        _communicatie(com, "e-mail", "prive", f"{local}@mail.example", geheim=False, nood=False)
    gba = _sub(ll, "gba")
    for name in p.voornamen:
        _sub(gba, "gbavoornaam", name)
    if p.voorvoegsel:
        _sub(gba, "gbavoorvoegsel", p.voorvoegsel)
    _sub(gba, "gbaachternaam", p.achternaam)
    _sub(gba, "gbageboortedatum", ctx.birth.strftime("%d-%m-%Y"))
    # No geboorteplaats or nationaliteit: the overstapdossier profile does not allow them.
    if identifier is not None:  # ("bsn", number) or ("onderwijsnummer", number)
        _sub(ll, *identifier)
    _sub(ll, "leerlingid", f"LL{rng.randrange(10**6):06d}")
    start_po = _start_po(ctx)
    _sub(ll, "onderwijssinds", _d(start_po))
    start_here = start_po if ctx.po else date(_vo_start_year(ctx), 8, 1)
    _sub(ll, "startdatumhuidigonderwijs", _d(start_here))
    _sub(ll, "datuminschrijving", _d(start_here))
    if ctx.po:
        _sub(ll, "leerlinggewicht", rng.choices(("0.00", "0.30", "1.20"), weights=(17, 2, 1))[0])
    _sub(ll, "tehuis", "false")
    if rng.random() < 0.6:
        _huisarts(ctx, ll)


def _start_po(ctx: _Ctx) -> date:
    """First school day: the day after the 4th birthday (a school day is not modelled)."""
    fourth = date(ctx.birth.year + 4, ctx.birth.month, min(ctx.birth.day, 28))
    return fourth + timedelta(days=1)


def _vo_start_year(ctx: _Ctx) -> int:
    return _schoolyear_start(ctx.today) - (ctx.level - 1)


def _huisarts(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    arts = _person(rng, rng.choice(("1", "2")))
    ha = _sub(ll, "huisarts")
    _sub(ha, "voorletters-1", _initials(arts.voornamen))
    if arts.voorvoegsel:
        _sub(ha, "voorvoegsel", arts.voorvoegsel)
    _sub(ha, "achternaam", arts.achternaam)  # no roepnaam, geslacht, adresgeheim (OG.05)
    addr = _address(rng)
    addr.plaats, addr.gemeente, addr.netnummer = (
        ctx.address.plaats,
        ctx.address.gemeente,
        ctx.address.netnummer,
    )
    _adres(_sub(ha, "adreslijst"), addr)
    com = _sub(ha, "communicatielijst")
    _communicatie(com, "telefoon", "werk", _phone(rng, addr.netnummer), geheim=False, nood=False)


def _overstapadvies(ctx: _Ctx, ll: etree._Element, eindtoets_advies: str | None) -> None:
    rng = ctx.rng
    oa = _sub(ll, "overstapadvies")
    if ctx.advies is not None:
        code = ctx.advies[0]
        _sub(oa, "advies", code)
        if rng.random() < 0.5:
            _sub(oa, "wensouders", code if rng.random() < 0.7 else _next_advies(code))
        if eindtoets_advies is not None and eindtoets_advies != code:
            _sub(oa, "herzienadvies", eindtoets_advies)
            _sub(oa, "motivatie_herzienadvies", "Resultaat van de eindtoets")
        if rng.random() < 0.3:
            _sub(oa, "profiel", rng.choice(("basis", "plus")))
    _sub(oa, "argumentatie", rng.choice(fakedata.ARGUMENTATIE))
    _sub(oa, "contactnodig", _b(rng.random() < 0.3))
    teacher = _person(rng, rng.choice(("1", "2")))
    title = "Mevr." if teacher.geslacht == "1" else "Dhr."
    prefix = f"{teacher.voorvoegsel} " if teacher.voorvoegsel else ""
    _sub(oa, "contactpersoon", f"{title} {teacher.voornamen[0][0]}. {prefix}{teacher.achternaam}")
    _sub(oa, "contacttelefoon", ctx.school.telefoon)
    _sub(oa, "contactemail", ctx.school.email)
    if rng.random() < 0.4:
        _sub(oa, "aandachtspunten", rng.choice(fakedata.AANDACHTSPUNTEN))


#: VO-advies that matches a VO programme (by schoolsoortomschrijving).
_PROGRAMMA_ADVIES: Final = {
    "VMBO-B": "20",
    "VMBO-K": "30",
    "VMBO-T": "40",
    "HAVO": "50",
    "VWO": "60",
}


def _next_advies(code: str) -> str:
    codes = [c for c, _ in fakedata.ADVIEZEN]
    return codes[min(codes.index(code) + 1, len(codes) - 1)]


def _vve(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    _sub(ll, "vanpeuterspeelzaal", "true")
    _sub(ll, "naampeuterspeelzaal", rng.choice(fakedata.PEUTERSPEELZALEN))
    vs = _sub(ll, "voorschools")
    _sub(vs, "codevoorschoolsehistorie", str(rng.randint(1, 5)))
    _sub(vs, "codevoorschoolsprogramma", str(rng.randint(1, 15)))
    _sub(vs, "voorschoolsemaanden", str(rng.randint(6, 24)))
    _sub(vs, "codevoorschoolsetoeleider", str(rng.randint(1, 9)))
    _sub(vs, "codevoorschoolsedeelname", str(rng.randint(1, 5)))
    _sub(vs, "voorschoolseaanwezigheid", str(rng.randint(2, 4)))
    start = _start_po(ctx)
    year = _schoolyear_start(start)
    for i in range(min(2, ctx.level)):
        vr = _sub(ll, "vroegschools")
        _sub(vr, "codevroegschoolsprogramma", str(rng.randint(1, 15)))
        begin = start if i == 0 else date(year + i, 8, 1)
        _sub(vr, "vroegschoolsdatumingang", _d(begin))
        end = date(year + i + 1, 7, 31)
        if end < ctx.today:
            _sub(vr, "vroegschoolseinddatum", _d(end))


def _schoolloopbaan(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    lst = _sub(ll, "schoolloopbaanlijst")
    current = _schoolyear_start(ctx.today)
    first = current - (ctx.level - 1)
    moved_before = (
        first + rng.randint(1, ctx.level - 1) if ctx.level > 2 and rng.random() < 0.15 else None
    )
    letters = "ABCDEFGHJKLMNPRTVWXZ"
    earlier_brin = f"{rng.randint(4, 9):02d}{rng.choice(letters)}{rng.choice(letters)}"
    groepsnaam = rng.choice(fakedata.GROEPSNAMEN_PO)
    for i, year in enumerate(range(first, current + 1)):
        level = i + 1
        sl = _sub(lst, "schoolloopbaan")
        _sub(sl, "schooljaar", f"{year}-{year + 1}")
        if ctx.po:
            _sub(sl, "groepscode", f"{level}{rng.choice('ABC')}")
            _sub(sl, "groepsnaam", f"Groep {level} {groepsnaam}")
            _sub(sl, "jaargroep", str(level))
        else:
            assert ctx.vo_programma is not None
            _sub(sl, "groepscode", f"{level}{ctx.vo_programma[2][0]}{rng.randint(1, 4)}")
            _sub(sl, "groepsnaam", f"{ctx.vo_programma[2]} {level}")
            _sub(sl, "jaargroep", str(10 + level))
        begin = date(year, 8, 1)
        if ctx.po and i == 0:
            begin = max(begin, _start_po(ctx))
        _sub(sl, "begindatum", _d(begin))
        if year < current:
            _sub(sl, "einddatum", _d(date(year + 1, 7, 31)))
        if moved_before is not None and year < moved_before:
            _sub(sl, "brincode", earlier_brin)
            _sub(sl, "vestigingscode", "00")
        else:
            _sub(sl, "brincode", ctx.school.brin)
            _sub(sl, "vestigingscode", ctx.school.vestiging)
        if ctx.po:
            _sub(sl, "schoolsoort", "BAO")
        else:
            assert ctx.vo_programma is not None
            code, omschrijving, soort, _ = ctx.vo_programma
            _sub(sl, "schoolsoort", "VO")
            _sub(sl, "voelementcode", code)
            _sub(sl, "voelementomschrijving", f"{omschrijving} leerjaar {level}")
            _sub(sl, "schoolsoortomschrijving", soort)


def _onderwijsondersteuning(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    swv = ctx.profile.overdrachtsoort == "swv-dossier"
    oo = _sub(ll, "onderwijsondersteuning")
    if swv or rng.random() < 0.5:
        _document(ctx, _sub(oo, "toelichting_onderwijsbehoeften"), "toelichting")
    if rng.random() < 0.4:
        code, naam = rng.choice(fakedata.DIAGNOSES)
        dg = _sub(oo, "diagnose")
        _sub(dg, "code", code)
        _sub(dg, "naam", naam)
        _sub(dg, "datum", _d(_rand_date(rng, _start_po(ctx), ctx.today - timedelta(days=30))))
        specialist = _person(rng, rng.choice(("1", "2")))
        _sub(dg, "doorwie", f"drs. {_initials(specialist.voornamen)} {specialist.achternaam}")
        _sub(dg, "instantie", rng.choice(fakedata.INSTANTIES))
        _document(ctx, dg, "diagnose")
    _sub(oo, "medicijngebruik", _b(rng.random() < 0.1))
    if ctx.allowed("handelingsplannen"):
        for _ in range(rng.choice((0, 1, 1, 2))):
            hp = _sub(oo, "handelingsplan")
            start = _rand_date(rng, ctx.today - timedelta(days=500), ctx.today - timedelta(days=60))
            _sub(hp, "startdatum", _d(start))
            _sub(hp, "einddatum", _d(start + timedelta(days=rng.choice((90, 120, 180)))))
            _sub(hp, "isgerichtop", rng.choice(fakedata.GERICHT_OP))
            _document(ctx, hp, "handelingsplan")
    if ctx.po and (swv or rng.random() < 0.15):
        opp = _sub(oo, "opp")
        _sub(
            opp,
            "opp_ingangdatum",
            _d(_rand_date(rng, ctx.today - timedelta(days=400), ctx.today - timedelta(days=30))),
        )
        _document(ctx, opp, "opp")
    if swv or rng.random() < 0.1:
        ap = _sub(oo, "arrangement_pao")
        start = _rand_date(rng, ctx.today - timedelta(days=400), ctx.today - timedelta(days=14))
        _sub(ap, "arrangement_datum", _d(start))
        _sub(ap, "arrangement_kenmerk", rng.choice(("licht arrangement", "medium arrangement")))
        _sub(ap, "arrangement_beschikkingsnr", f"SWV-{start.year}-{rng.randint(100, 9999):04d}")
    if not ctx.po and rng.random() < 0.1:
        lw = _sub(oo, "lwoo")
        _sub(lw, "lwoo_ingangdatum", _d(date(_vo_start_year(ctx), 8, 1)))
        _sub(lw, "lwoo_swvnummer", f"VO{rng.randint(2001, 2899)}")
        _sub(lw, "lwoo_beschikkingsnummer", f"LWOO-{rng.randint(10000, 99999)}")
        _sub(lw, "lwoo_einddatum", _d(date(_vo_start_year(ctx) + 2, 7, 31)))


def _verzuim(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    vz = _sub(ll, "verzuim")
    ongeoorloofd = rng.choices((0, 1, 2, 4, 8), weights=(10, 4, 3, 2, 1))[0]
    if ctx.po:
        _sub(vz, "dagdelengeoorloofd", str(rng.randint(0, 16)))
        _sub(vz, "dagdelenongeoorloofd", str(ongeoorloofd))
    else:
        _sub(vz, "urengeoorloofd", str(rng.randint(0, 40)))
        _sub(vz, "urenongeoorloofd", str(ongeoorloofd * 2))
    _sub(vz, "meerdan25percent", "false")
    _sub(vz, "frequentie", str(min(ongeoorloofd, 3)))
    _sub(vz, "contactleerplicht", _b(ongeoorloofd >= 4))
    if not ctx.po:
        _sub(vz, "rmcmelding", "false")
    if ongeoorloofd >= 4:
        _document(ctx, _sub(vz, "documentLijst"), "verzuim")


def _eindtoets_date(ctx: _Ctx, years_back: int = 0) -> date:
    year = _schoolyear_start(ctx.today) - years_back
    # Since school year 2023-2024 the test (doorstroomtoets) is taken in February, before in April.
    return date(year + 1, 2, 6) if year >= 2023 else date(year + 1, 4, 18)


def _eindtoets(ctx: _Ctx, ll: etree._Element, score_advies: str, years_back: int = 0) -> None:
    rng = ctx.rng
    code, naam, low, high = rng.choice(fakedata.EINDTOETSEN)
    codes = [c for c, _ in fakedata.ADVIEZEN]
    frac = codes.index(score_advies) / (len(codes) - 1)
    score = round(low + frac * (high - low) + rng.uniform(-0.05, 0.05) * (high - low))
    score = max(low, min(high, score))
    et = _sub(ll, "eindtoets_basisonderwijs")
    res = _sub(et, "eindtoetsresultaat")
    _sub(res, "toetssoort", code)
    _sub(res, "toetsniveau", "G")
    _sub(res, "toetsomschrijving", naam)
    _sub(res, "datum_afname", _d(_eindtoets_date(ctx, years_back)))
    _sub(res, "wettelijke_ontheffing", "N")
    _sub(res, "standaardscore", str(score))
    _sub(res, "toets_advies", dict(fakedata.ADVIEZEN)[score_advies])
    ond = _sub(res, "onderdelen")
    niveau = "04" if frac >= 0.6 else ("03" if frac >= 0.3 else "02")
    taal = _sub(ond, "onderdeel")
    _sub(taal, "onderdeelcode", "8000")
    _sub(taal, "onderdeelomschrijving", "Nederlandse taal")
    doms = _sub(taal, "domeinen")
    for dcode, dnaam in (("8050", "Lezen"), ("8051", "Taalverzorging")):
        dom = _sub(doms, "domein")
        _sub(dom, "domeincode", dcode)
        _sub(dom, "domeinomschrijving", f"Nederlandse taal - {dnaam}")
        _sub(dom, "dom_referentieniveau", niveau)
    rek = _sub(ond, "onderdeel")
    _sub(rek, "onderdeelcode", "8001")
    _sub(rek, "onderdeelomschrijving", "Rekenen")
    _sub(rek, "ond_referentieniveau", niveau if rng.random() < 0.7 else "02")
    _sub(et, "deelgenomen", "true")
    _document(ctx, et, "eindtoets")


def _toetslijst(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    current = _schoolyear_start(ctx.today)
    sittings: list[tuple[date, int]] = []  # (afnamedatum, groep)
    groep_now = ctx.level if ctx.po else 8 + ctx.level
    for groep in range(3, min(groep_now, 8) + 1):
        year = current - (groep_now - groep)
        for month in (1, 6):
            day = date(year + 1, month, rng.randint(8, 26))
            if day < ctx.today:
                sittings.append((day, groep))
    sittings = sittings[-4:]  # the most recent ones, as a school would send
    if not sittings:
        return
    lst = _sub(ll, "toetslijst")
    teacher = _person(rng, rng.choice(("1", "2")))
    for afname_dag, groep in sittings:
        code, leergebied, naam = rng.choice(fakedata.LVS_TOETSEN)
        t = _sub(lst, "toets")
        ti = _sub(t, "toetsidentificatie")
        _sub(ti, "eldtoetscode", code)
        _sub(ti, "leergebied", leergebied)
        _sub(ti, "toetsnaam", naam)
        af = _sub(t, "afname")
        _sub(af, "afnamedatum", _d(afname_dag))
        _sub(af, "jaargroep", str(groep))
        _sub(af, "dl", str((groep - 3) * 10 + (5 if afname_dag.month == 1 else 10)))
        ad = _sub(af, "afgenomendoor")
        _sub(ad, "naammedewerker", f"{_initials(teacher.voornamen)} {teacher.achternaam}")
        _sub(ad, "functie", "leerkracht")
        res = _sub(t, "resultaat")
        ts = _sub(res, "toetsscore")
        _sub(ts, "vaardigheidsscore", str(rng.randint(20, 80) + groep * 8))
        level = rng.choice(("I", "II", "III", "IV", "V"))
        rs = _sub(res, "referentiescore")
        _sub(rs, "codereferentiescore", "IV")
        _sub(rs, "codevergelijkingsgroep", "Landelijk")
        _sub(rs, "waarde", level)
        rs = _sub(res, "referentiescore")
        _sub(rs, "codereferentiescore", "Percentiel")
        _sub(rs, "codevergelijkingsgroep", "Landelijk")
        _sub(rs, "waarde", str(rng.randint(1, 99)))
        if rng.random() < 0.25:
            _document(ctx, res, "toets")


def _cijferlijsten(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    current = _schoolyear_start(ctx.today)
    periods = [date(current, 11, 20), date(current + 1, 2, 20), date(current + 1, 6, 25)]
    done = [d for d in periods if d < ctx.today]
    if not done:  # early in the school year: the last report of the previous year
        done = [date(current, 6, 25)]
    lst = _sub(ll, "cijferlijstlijst")
    jaargroep = str(ctx.level) if ctx.po else str(10 + ctx.level)
    subjects = list(fakedata.VAKKEN_PO[:6]) if ctx.po else [n for _, n in fakedata.VAKKEN_VO[:9]]
    for i, day in enumerate(done, start=1):
        cl = _sub(lst, "cijferlijst")
        tl = _sub(cl, "cijferlijstTypelijst")
        _sub(tl, "naam", f"Rapport {i}")
        total = 0.0
        for subject in subjects:
            cijfer = round(rng.uniform(5.0, 9.0), 1)
            total += cijfer
            od = _sub(tl, "onderdeel")
            _sub(od, "naam", subject)
            sc = _sub(od, "score")
            _sub(sc, "waarde", f"{cijfer:.1f}")
            _sub(sc, "kwalificatie", _kwalificatie(cijfer))
            _sub(od, "afnamedatum", _d(day))
            _sub(od, "jaargroep", jaargroep)
            _sub(od, "periode", f"periode {i}")
        sc = _sub(tl, "score")
        _sub(sc, "waarde", f"{total / len(subjects):.1f}")
        _sub(cl, "afnamedatum", _d(day))
        _sub(cl, "jaargroep", jaargroep)
        _sub(cl, "periode", f"periode {i}")


def _kwalificatie(cijfer: float) -> str:
    if cijfer < 5.5:
        return "Onvoldoende"
    if cijfer < 7.0:
        return "Voldoende"
    return "Goed" if cijfer < 8.5 else "Zeer goed"


def _verzorgers(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    pupil = ctx.pupil
    single = rng.random() < 0.15
    first_geslacht = rng.choice(("1", "2"))
    genders = (
        [first_geslacht] if single else [first_geslacht, "2" if first_geslacht == "1" else "1"]
    )
    for i, geslacht in enumerate(genders):
        shares_name = i == 0 or rng.random() < 0.3
        surname = (pupil.voorvoegsel, pupil.achternaam) if shares_name else None
        parent = _person(rng, geslacht, surname)
        parent.voornamen = parent.voornamen[:2]
        parent.roepnaam = parent.voornamen[0]
        vz = _sub(ll, "verzorger")
        _names(vz, parent, roepnaam=False)
        _sub(vz, "geslacht", geslacht)
        # As in the official examples, now and then a parent has died (business rule OG.04).
        deceased = i == 1 and rng.random() < 0.03
        separate = i == 1 and rng.random() < 0.2
        secret = ctx.address_secret and not separate
        _sub(vz, "adresgeheim", _b(secret))
        if not secret and not deceased:
            _adres(_sub(vz, "adreslijst"), _address(rng) if separate else ctx.address)
        if not deceased:
            com = _sub(vz, "communicatielijst")
            _communicatie(com, "telefoon", "prive", _phone(rng), geheim=False, nood=i == 0)
            local = f"{_email_local(parent)}{rng.randint(1, 99)}"
            _communicatie(com, "e-mail", "prive", f"{local}@mail.example", geheim=False, nood=False)
        _sub(vz, "relatietotkind", "2" if geslacht == "1" else "1")
        if deceased:
            _sub(vz, "overleden", "true")
            _sub(
                vz,
                "overlijdensdatum",
                _d(_rand_date(rng, ctx.birth, ctx.today - timedelta(days=60))),
            )
        _sub(vz, "wettigevertegenwoordiger", _b(not deceased))


def _vombo(ctx: _Ctx, ll: etree._Element) -> None:
    rng = ctx.rng
    assert ctx.vo_programma is not None
    code = ctx.vo_programma[0]
    if ctx.level > 1:
        bv = _sub(ll, "bevorderd")
        _sub(bv, "elementcode", code)
        _sub(bv, "leerjaar", str(10 + ctx.level))
    for vakcode, vak in rng.sample(fakedata.VAKKEN_VO, 4):
        rv = _sub(ll, "resultaatvakkenvo")
        _sub(rv, "vakcode", vakcode)
        _sub(rv, "vakleergebied", vak)
        _sub(rv, "afgerond", "false")
        _sub(rv, "examenvak", "false")
        _sub(rv, "rapportcijfer", f"{rng.uniform(5.0, 9.0):.1f}")


# --------------------------------------------------------------------------- attachments


def _zip_bytes(filename: str, size: int, seed: int, index: int) -> bytes:
    """A real ZIP archive of about ``size`` bytes holding one stored file called ``filename``."""
    body_rng = random.Random(f"bijlage:{seed}:{index}")
    header = f"Synthetisch bijlagedocument {index + 1} (testdata, geen echte gegevens)\n".encode()
    payload_len = max(len(header), size - _ZIP_OVERHEAD - 2 * len(filename.encode()))
    payload = header + body_rng.randbytes(payload_len - len(header))
    info = zipfile.ZipInfo(filename, date_time=_ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.create_system = 3
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(info, payload)
    return buf.getvalue()


def _prune_documents(root: etree._Element) -> None:
    """Remove every document, and the containers that need one."""
    doc_tag = f"{{{NS}}}document"
    for doc in list(root.iter(doc_tag)):
        parent = doc.getparent()
        assert parent is not None
        parent.remove(doc)
    for tag in ("toelichting_onderwijsbehoeften", "documentLijst", "overigdocumentlijst"):
        for el in list(root.iter(f"{{{NS}}}{tag}")):
            if len(el) == 0:
                parent = el.getparent()
                assert parent is not None
                parent.remove(el)


def _fill_documents(ctx: _Ctx, root: etree._Element, seed: int, attachments_kb: int) -> None:
    if attachments_kb <= 0 or not ctx.allowed("bijlagedocs") or not ctx.documents:
        _prune_documents(root)
        return
    total = attachments_kb * 1024
    share = total // len(ctx.documents)
    for index, (element, filename) in enumerate(ctx.documents):
        data = _zip_bytes(filename, share, seed, index)
        element.text = base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- public API


def _categories(
    rng: random.Random, profile: _Kind, opt_out: bool | None, attachments_kb: int
) -> dict[str, str]:
    cats = dict(profile.categories)
    optional = [k for k in CATEGORY_KEYS if cats[k] == OPTIONEEL]
    if opt_out is None:
        chosen = [k for k in optional if rng.random() < 0.5] if rng.random() < 0.2 else []
    else:
        chosen = optional if opt_out else []
    if profile.overdrachtsoort == "swv-dossier":
        chosen = [k for k in chosen if k != "onderwijsondersteuning"]
    if attachments_kb > 0:  # attachments were asked for: keep the category that carries them
        chosen = [k for k in chosen if k != "bijlagedocs"]
    for key in chosen:
        cats[key] = OPT_UIT
    return cats


def generate_dossier_element(
    *,
    overstap: str,
    seed: int,
    now: date | datetime,
    attachments_kb: int = 0,
    marker: str | None = None,
    sending_school: School | None = None,
    opt_out: bool | None = None,
    onderwijsnummer: bool = False,
) -> etree._Element:
    """Build a synthetic dossier as an lxml element (see ``generate_dossier``)."""
    if overstap not in _KINDS:
        raise ValueError(f"unknown overstap kind {overstap!r}; supported: {OVERSTAP_KINDS}")
    if attachments_kb < 0:
        raise ValueError("attachments_kb must not be negative")
    profile = _KINDS[overstap]
    school = sending_school or next(s for s in DEMO_SCHOOLS if s.sector == profile.sector)
    if school.sector != profile.sector:
        raise ValueError(f"{overstap} needs a sending school of sector {profile.sector}")
    rng = random.Random(seed)
    today = _today(now)

    cats = _categories(rng, profile, opt_out, attachments_kb)
    vo_programma = None
    if overstap in ("POPO", "POSWV"):
        level = rng.randint(2, 7) if overstap == "POPO" else rng.randint(3, 8)
    elif overstap == "POVO":
        level = 8
    else:
        vo_programma = rng.choice(fakedata.VO_PROGRAMMAS)
        level = rng.randint(1, 3)
    # Age: a child starts groep 1 in the school year after its 4th birthday, cut-off 1 October.
    groep = level if profile.sector == "PO" else 8 + level
    cohort = _schoolyear_start(today) - groep - 3  # birth year of a pupil born on 1 October
    birth = _rand_date(rng, date(cohort - 1, 10, 1), date(cohort, 9, 30))
    geslacht = rng.choice(("1", "2"))
    pupil = _person(rng, geslacht)
    if marker:
        pupil.voornamen[0] = f"{pupil.voornamen[0]}{marker}"
        pupil.roepnaam = pupil.voornamen[0]
        pupil.achternaam = f"{pupil.achternaam}-{marker}"
    advies = None
    if overstap == "POVO" or (overstap == "POSWV" and level == 8):
        advies = rng.choice(fakedata.ADVIEZEN)
    ctx = _Ctx(
        rng=rng,
        kind=overstap,
        profile=profile,
        today=today,
        school=school,
        cats=cats,
        pupil=pupil,
        address=_address(rng),
        birth=birth,
        level=level,
        vo_programma=vo_programma,
        advies=advies,
        address_secret=rng.random() < 0.03,
    )
    number = test_onderwijsnummer(rng) if onderwijsnummer else test_bsn(rng)
    identifier: tuple[str, str] | None = (
        "onderwijsnummer" if onderwijsnummer else "bsn",
        number,
    )
    if profile.overdrachtsoort == "swv-dossier":
        identifier = None  # the SWV profile allows neither BSN nor onderwijsnummer (PaO.LL12)

    root = etree.Element(f"{{{NS}}}dossier", nsmap={None: NS})  # type: ignore[dict-item]  # default namespace
    _metadata(ctx, root)
    _sub(root, "overdrachtsoort", profile.overdrachtsoort)
    _inzage(ctx, root)
    hs = _huidigeschool_head(ctx, root)
    ll = _sub(hs, "leerling")
    _leerling_personal(ctx, ll, identifier)
    _sub(ll, "verzorgersaansprakelijk", "true")

    _leerling_sections(ctx, ll, advies)
    _fill_documents(ctx, root, seed, attachments_kb)
    return root


def _leerling_sections(ctx: _Ctx, ll: etree._Element, advies: tuple[str, str] | None) -> None:
    """The pupil's sections after the personal data, each present when its category is allowed
    (and, for optional ones, by chance), in the schema's order."""
    rng, today, level, vo_programma = ctx.rng, ctx.today, ctx.level, ctx.vo_programma
    profile = ctx.profile
    eindtoets_advies, eindtoets_years_back = None, 0
    with_eindtoets = (
        advies is not None and ctx.allowed("eindtoetsbo") and _eindtoets_date(ctx) < today
    )
    if with_eindtoets:
        assert advies is not None
        eindtoets_advies = advies[0] if rng.random() < 0.7 else _next_advies(advies[0])
    elif vo_programma is not None and level == 1 and ctx.allowed("eindtoetsbo"):
        # First-year secondary pupils: the eindtoets of groep 8, as in the official VOVO example.
        if rng.random() < 0.4:
            eindtoets_advies, eindtoets_years_back = _PROGRAMMA_ADVIES[vo_programma[2]], 1
    _overstapadvies(ctx, ll, eindtoets_advies if advies is not None else None)
    if ctx.allowed("vve") and rng.random() < 0.5:
        _vve(ctx, ll)
    _schoolloopbaan(ctx, ll)
    swv = profile.overdrachtsoort == "swv-dossier"
    if ctx.allowed("onderwijsondersteuning") and (swv or rng.random() < 0.35):
        _onderwijsondersteuning(ctx, ll)
    if ctx.allowed("verzuim") and rng.random() < 0.7:
        _verzuim(ctx, ll)
    if eindtoets_advies is not None:
        _eindtoets(ctx, ll, eindtoets_advies, eindtoets_years_back)
    if ctx.allowed("toetsresultaten") and rng.random() < 0.8:
        _toetslijst(ctx, ll)
    if ctx.allowed("cijferlijsten") and (not ctx.po or rng.random() < 0.4):
        _cijferlijsten(ctx, ll)
    if ctx.allowed("bijlagedocs"):
        lst = _sub(ll, "overigdocumentlijst")
        for _ in range(rng.randint(1, 3)):
            _document(ctx, lst, "overig")
    _verzorgers(ctx, ll)
    if ctx.allowed("vombo") and not ctx.po:
        _vombo(ctx, ll)


def serialize_dossier(root: etree._Element) -> bytes:
    """UTF-8 XML with declaration, indented like LAS exports."""
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def generate_dossier(
    *,
    overstap: str,
    seed: int,
    now: date | datetime,
    attachments_kb: int = 0,
    marker: str | None = None,
    sending_school: School | None = None,
    opt_out: bool | None = None,
    onderwijsnummer: bool = False,
) -> bytes:
    """A synthetic, valid OSO gegevensset 2019.1 dossier as UTF-8 XML bytes.

    ``overstap``: one of ``OVERSTAP_KINDS``. ``seed``: the same seed (and other arguments) gives
    byte-identical output. ``now``: the dossier's creation date; every date in the dossier that
    lies in the past is on or before it. ``attachments_kb``: total size in KiB of the attached ZIP
    files (0: no documents at all). ``marker``: appended to the pupil's first name and surname, to
    check in tests that the names never leak. ``sending_school``: defaults to the first demo school
    of the right sector. ``opt_out``: True makes every OPTIONEEL category OPT-UIT (like the
    official opt-out examples), False none, None (default) lets the seed decide (1 in 5 dossiers
    has some opt-outs). ``onderwijsnummer``: identify the pupil by an onderwijsnummer instead of a
    BSN (SWV dossiers carry neither). Raises ``ValueError`` on an unknown kind or a school of the
    wrong sector.
    """
    return serialize_dossier(
        generate_dossier_element(
            overstap=overstap,
            seed=seed,
            now=now,
            attachments_kb=attachments_kb,
            marker=marker,
            sending_school=sending_school,
            opt_out=opt_out,
            onderwijsnummer=onderwijsnummer,
        )
    )


def generate_dossier_of_size(
    target_bytes: int,
    *,
    overstap: str = "POVO",
    seed: int = 0,
    now: date | datetime,
    sending_school: School | None = None,
) -> bytes:
    """A dossier of about ``target_bytes`` bytes (within a few KB; at least the size of the
    dossier without attachments), for benchmarks. Bijlagedocumenten are never opted out."""
    base = generate_dossier(
        overstap=overstap,
        seed=seed,
        now=now,
        attachments_kb=1,
        sending_school=sending_school,
        opt_out=False,
    )
    if target_bytes <= len(base):
        return base
    # Base64 turns 3 bytes into 4; 1 KiB of attachments is already in ``base``.
    extra = (target_bytes - len(base)) * 3 / 4
    kb = 1 + round(extra / 1024)
    return generate_dossier(
        overstap=overstap,
        seed=seed,
        now=now,
        attachments_kb=kb,
        sending_school=sending_school,
        opt_out=False,
    )
