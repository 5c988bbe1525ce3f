"""Business rules: the official examples and our sample pass; each rule fires on its own mutation,
at the right path, with a message that carries no pupil data."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import official_example_files, official_examples
from dossier_samples import (
    SAMPLE_PII,
    add,
    build_dossier,
    find,
    q,
    remove,
    set_category,
    set_text,
    zip_attachment,
)
from lxml import etree

from oso_gateway.dossier.categories import CATEGORIES
from oso_gateway.dossier.codelists import CODE_LISTS
from oso_gateway.dossier.findings import Finding, Severity
from oso_gateway.dossier.rules import (
    _PAO_FROM_OVA,
    _PAO_PO_FORBIDDEN,
    _PAO_VO_FORBIDDEN,
    all_rules,
    brin_is_valid,
    bsn_is_valid,
    check_rules,
    element_path,
    email_is_valid,
    onderwijsnummer_is_valid,
    vestiging_is_valid,
)
from oso_gateway.security.xmlparse import parse_xml

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LL = "huidigeschool/leerling"
BAD = "ONGELDIG-waarde-42"
Mutation = Callable[[etree._Element], object]


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def _assert_no_pii(findings: list[Finding], extra: tuple[str, ...] = ()) -> None:
    for f in findings:
        for text in (f.message_nl, f.message_en):
            for value in (*SAMPLE_PII, BAD, *extra):
                assert value not in text, f"{f.code} message leaks a dossier value"


# --- baseline --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", official_examples(), ids=lambda p: p.name)
def test_official_example_has_no_error_findings(examples_dir: Path, path: Path) -> None:
    root = parse_xml(path.read_bytes()).getroot()
    errors = [f for f in check_rules(root, now=NOW) if f.severity == Severity.ERROR]
    assert errors == []


@pytest.mark.parametrize(
    ("overstap", "soort"),
    [
        ("POVO", "overstapdossier"),
        ("POPO", "overstapdossier"),
        ("VOVO", "overstapdossier"),
        ("POVO", "overdrachtbinnenbrin"),
        ("POSWV", "swv-dossier"),
    ],
)
def test_sample_dossier_passes_every_rule(overstap: str, soort: str) -> None:
    assert check_rules(build_dossier(overstap=overstap, overdrachtsoort=soort), now=NOW) == []


def test_sample_dossier_is_valid_against_the_project_schema() -> None:
    xsd = Path(__file__).resolve().parent.parent / "schemas" / "oso_gegevensset_2019.xsd"
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    for kw in ({}, {"overstap": "VOVO"}, {"overdrachtsoort": "swv-dossier"}):
        assert schema.validate(etree.ElementTree(build_dossier(**kw))), schema.error_log


def test_check_rules_refuses_a_foreign_root() -> None:
    with pytest.raises(ValueError):
        check_rules(etree.Element("dossier"), now=NOW)


# --- identifier helpers ------------------------------------------------------------------------


def test_bsn_eleven_test() -> None:
    assert bsn_is_valid("111222333")
    assert not bsn_is_valid("111222334")
    assert not bsn_is_valid("11122233")
    assert not bsn_is_valid("１１１２２２３３３")  # full-width digits are not ASCII
    assert not bsn_is_valid("000000000")  # passes the arithmetic, but is no BSN
    assert not bsn_is_valid("99999001a")


def test_onderwijsnummer_check() -> None:
    # 9·1 − 4 = 5: remainder 5 under the BSN weighting, and it starts with 10
    assert onderwijsnummer_is_valid("100000004")
    assert not bsn_is_valid("100000004")
    assert not onderwijsnummer_is_valid("100000009")  # remainder 0: a BSN, not an onderwijsnummer
    assert not onderwijsnummer_is_valid("200000004")  # does not start with 10
    assert not onderwijsnummer_is_valid("10000004")


def test_brin_and_vestiging_formats() -> None:
    assert brin_is_valid("00YY") and brin_is_valid("14AI")
    assert not brin_is_valid("00yy") and not brin_is_valid("0YYY") and not brin_is_valid("00Y1")
    assert vestiging_is_valid("00") and not vestiging_is_valid("0") and not vestiging_is_valid("0A")


def test_email_format() -> None:
    assert email_is_valid("ouder@voorbeeld.example")
    assert not email_is_valid("geen-apenstaartje")
    assert not email_is_valid("a b@x.nl")
    assert not email_is_valid("x@-x.nl")


def test_element_path_numbers_same_named_siblings() -> None:
    root = build_dossier()
    docs = find(root, f"{LL}/overigdocumentlijst").findall(q("document"))
    assert element_path(docs[1]) == (
        "/dossier/huidigeschool/leerling/overigdocumentlijst/document[2]"
    )
    assert element_path(find(root, f"{LL}/bsn")) == "/dossier/huidigeschool/leerling/bsn"


# --- one negative case per rule -------------------------------------------------------------


def _del(path: str) -> Mutation:
    return lambda r: remove(r, path)


def _set(path: str, text: str) -> Mutation:
    return lambda r: set_text(r, path, text)


def _add(parent: str, name: str, text: str | None = None) -> Mutation:
    return lambda r: add(r, parent, name, text)


def _all(*ms: Mutation) -> Mutation:
    def run(r: etree._Element) -> None:
        for m in ms:
            m(r)

    return run


def _secret_phone(r: etree._Element) -> None:
    comm = find(r, f"{LL}/verzorger/communicatielijst/communicatie")
    find(comm, "geheim").text = "true"


def _verzorger_secret_address(r: etree._Element) -> None:
    v = find(r, f"{LL}/verzorger")
    find(v, "adresgeheim").text = "true"
    lijst = etree.Element(q("adreslijst"))
    adres = etree.SubElement(lijst, q("adres"))
    etree.SubElement(adres, q("soortadres")).text = "post"
    find(v, "adresgeheim").addnext(lijst)


def _doc_content(text: str) -> Mutation:
    return _set(f"{LL}/overigdocumentlijst/document/bestandsinhoud", text)


def _truncated_zip() -> str:
    raw = base64.b64decode(zip_attachment())
    return base64.b64encode(raw[:40]).decode()


DOC = f"/dossier/{LL}/overigdocumentlijst/document[1]"
#: The binnen-BRIN profile requires no category's data, so a category rule can fire on its own.
_BB = {"overdrachtsoort": "overdrachtbinnenbrin"}
_SWV = {"overdrachtsoort": "swv-dossier", "overstap": "POSWV"}
_SWV_VO = {"overdrachtsoort": "swv-dossier", "overstap": "VOSWV"}
# (rule id, base-dossier keywords, mutation, expected path)
CASES: list[tuple[str, dict[str, str], Mutation, str]] = [
    (
        "OG.01",
        {},
        _set(f"{LL}/communicatielijst/communicatie/nummer", "geen-adres"),
        f"/dossier/{LL}/communicatielijst/communicatie/nummer",
    ),
    ("OG.02", {}, _set("metadata/standaardversie", "2018.1"), "/dossier/metadata/standaardversie"),
    (
        "OG.03",
        {},
        _all(
            _add(f"{LL}/onderwijsondersteuning", "lwoo"),
            _add(f"{LL}/onderwijsondersteuning/lwoo", "lwoo_einddatum", "2026-06-30"),
        ),
        f"/dossier/{LL}/onderwijsondersteuning/lwoo/lwoo_einddatum",
    ),
    (
        "OG.04",
        {},
        _add(f"{LL}/verzorger", "overlijdensdatum", "2020-01-01"),
        f"/dossier/{LL}/verzorger/overlijdensdatum",
    ),
    ("OG.05", {}, _add(f"{LL}/huisarts", "geslacht", "1"), f"/dossier/{LL}/huisarts/geslacht"),
    ("OVa.MD01", {}, _set("metadata/deeldossier", "LVS"), "/dossier/metadata/deeldossier"),
    (
        "OVb.MD01",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _set("metadata/deeldossier", "TIB"),
        "/dossier/metadata/deeldossier",
    ),
    (
        "OVa.MD02",
        {},
        _set("metadata/validatieversie", "2018.1.1"),
        "/dossier/metadata/validatieversie",
    ),
    (
        "OVb.MD02",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _set("metadata/validatieversie", "2018.1.1"),
        "/dossier/metadata/validatieversie",
    ),
    (
        "OVa.MD03",
        {},
        _del("metadata/categorie_uitlevering"),
        "/dossier/metadata/categorie_uitlevering",
    ),
    (
        "OVb.MD03",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _del("metadata/categorie_uitlevering"),
        "/dossier/metadata/categorie_uitlevering",
    ),
    ("OVa.OS01", {}, _del("metadata/overstap"), "/dossier/metadata/overstap"),
    ("OVa.OS02", {}, _set("metadata/overstap", "VOMBO"), "/dossier/metadata/overstap"),
    (
        "OVa.IZ01",
        {},
        _all(_del("inzage"), lambda r: set_category(r, "ouderinzage", "OPTIONEEL")),
        "/dossier/inzage",
    ),
    (
        "OVa.IZ02",
        {},
        _all(_set("inzage/inzage", "false"), _del("inzage/inzagedatum")),
        "/dossier/inzage/inzage",
    ),
    ("OVa.IZ03", {}, _del("inzage/inzagedatum"), "/dossier/inzage/inzagedatum"),
    (
        "OVa.IZ04",
        {},
        _all(_del("inzage/akkoord"), _del("inzage/redennietakkoord")),
        "/dossier/inzage/akkoord",
    ),
    ("OVa.IZ05", {"overstap": "VOVO"}, _del("inzage/toestemming"), "/dossier/inzage/toestemming"),
    (
        "GW.IZ06",
        _BB,
        _set("inzage/inzage", "false"),
        "/dossier/inzage/inzagedatum",
    ),
    ("GW.IZ07", {}, _del("inzage/redennietakkoord"), "/dossier/inzage/akkoord"),
    ("GW.IZ08", {}, _set("inzage/akkoord", "Ja"), "/dossier/inzage/redennietakkoord"),
    ("GW.IZ09", {}, _set("inzage/toestemming", "Nee"), "/dossier/inzage/toestemming"),
    ("OVa.SL01", {}, _del("huidigeschool/adreslijst"), "/dossier/huidigeschool/adreslijst"),
    (
        "OVa.SL02",
        {},
        _del("huidigeschool/communicatielijst"),
        "/dossier/huidigeschool/communicatielijst",
    ),
    (
        "OVa.SL01:schoolloopbaan",
        {},
        _all(
            _del(f"{LL}/schoolloopbaanlijst"),
            lambda r: set_category(r, "schoolloopbaan", "OPTIONEEL"),
        ),
        f"/dossier/{LL}/schoolloopbaanlijst",
    ),
    ("OVa.LL01", {}, _del(f"{LL}/voornaam"), f"/dossier/{LL}/voornaam"),
    ("OVa.LL02", {}, _del(f"{LL}/geboortedatum"), f"/dossier/{LL}/geboortedatum"),
    ("OVa.LL03", {}, _add(LL, "geboortemaand", "2014-05"), f"/dossier/{LL}/geboortemaand"),
    (
        "OVb.LL01",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _add(LL, "geboortemaand", "2014-05"),
        f"/dossier/{LL}/geboortemaand",
    ),
    ("OVa.LL04", {}, _del(f"{LL}/adresgeheim"), f"/dossier/{LL}/adresgeheim"),
    ("OVa.LL05", {}, _del(f"{LL}/adreslijst"), f"/dossier/{LL}/adreslijst"),
    ("OVa.LL06", {}, _set(f"{LL}/adresgeheim", "true"), f"/dossier/{LL}/adreslijst/adres"),
    (
        "OVb.LL02",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _set(f"{LL}/adresgeheim", "true"),
        f"/dossier/{LL}/adreslijst/adres",
    ),
    ("OVa.LL07", {}, _add(LL, "postcode4adres", "9999"), f"/dossier/{LL}/postcode4adres"),
    (
        "OVb.LL03",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _add(LL, "postcode4adres", "9999"),
        f"/dossier/{LL}/postcode4adres",
    ),
    (
        "OVa.LL08",
        {},
        _secret_phone,
        f"/dossier/{LL}/verzorger/communicatielijst/communicatie/nummer",
    ),
    (
        "OVb.LL04",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _secret_phone,
        f"/dossier/{LL}/verzorger/communicatielijst/communicatie/nummer",
    ),
    (
        "OVa.LL09",
        {},
        _all(
            _del(f"{LL}/adreslijst"),
            _set(f"{LL}/adresgeheim", "true"),
            _add(LL, "adresbuitenland", "Rue Exemple 1"),
        ),
        f"/dossier/{LL}/adresbuitenland",
    ),
    (
        "OVb.LL05",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _all(
            _del(f"{LL}/adreslijst"),
            _set(f"{LL}/adresgeheim", "true"),
            _add(LL, "adresbuitenland", "Rue Exemple 1"),
        ),
        f"/dossier/{LL}/adresbuitenland",
    ),
    ("OVa.LL10", {}, _add(LL, "geboorteplaats", "Teststad"), f"/dossier/{LL}/geboorteplaats"),
    ("OVa.LL11", {}, _add(LL, "nationaliteit", "0001"), f"/dossier/{LL}/nationaliteit"),
    ("OVa.LL12", {}, _del(f"{LL}/bsn"), f"/dossier/{LL}/bsn"),
    ("OVa.LL13", {}, _del(f"{LL}/leerlingid"), f"/dossier/{LL}/leerlingid"),
    ("OVa.LL14", {}, _del(f"{LL}/datuminschrijving"), f"/dossier/{LL}/datuminschrijving"),
    (
        "OVa.LL15",
        {},
        _all(_del(f"{LL}/verzorgersaansprakelijk"), _add(LL, "aansprakelijkeinstelling")),
        f"/dossier/{LL}/verzorgersaansprakelijk",
    ),
    (
        "OVa.AI01",
        {},
        _all(_set(f"{LL}/verzorgersaansprakelijk", "false")),
        f"/dossier/{LL}/aansprakelijkeinstelling",
    ),
    (
        "OVa.OV01",
        {},
        _all(_del(f"{LL}/verzorger"), lambda r: set_category(r, "oudersverzorgers", "OPTIONEEL")),
        f"/dossier/{LL}/verzorger",
    ),
    ("OVa.OV03", {}, _verzorger_secret_address, f"/dossier/{LL}/verzorger/adreslijst/adres"),
    (
        "OVb.OV01",
        {"overdrachtsoort": "overdrachtbinnenbrin"},
        _verzorger_secret_address,
        f"/dossier/{LL}/verzorger/adreslijst/adres",
    ),
    (
        "OVa.VV01",
        {},
        _all(_add(LL, "voorschools"), lambda r: set_category(r, "vve", "OPTIONEEL")),
        f"/dossier/{LL}/voorschools",
    ),
    (
        "OVa.VV02",
        {},
        _all(_add(LL, "vroegschools"), lambda r: set_category(r, "vve", "OPTIONEEL")),
        f"/dossier/{LL}/vroegschools",
    ),
    (
        "OVa.OA01",
        {},
        _all(
            _del(f"{LL}/overstapadvies"), lambda r: set_category(r, "overstapadvies", "OPTIONEEL")
        ),
        f"/dossier/{LL}/overstapadvies",
    ),
    ("OVa.OA02", {}, _del(f"{LL}/overstapadvies/advies"), f"/dossier/{LL}/overstapadvies/advies"),
    (
        "OVa.OA03",
        {},
        _all(_del(f"{LL}/overstapadvies/contactnodig")),
        f"/dossier/{LL}/overstapadvies/contactnodig",
    ),
    (
        "OVa.OA04",
        {},
        _del(f"{LL}/overstapadvies/contactpersoon"),
        f"/dossier/{LL}/overstapadvies/contactpersoon",
    ),
    (
        "OVa.OA05",
        {},
        _del(f"{LL}/overstapadvies/contacttelefoon"),
        f"/dossier/{LL}/overstapadvies/contacttelefoon",
    ),
    (
        "OVa.EB02",
        {},
        _del(f"{LL}/eindtoets_basisonderwijs/eindtoetsresultaat"),
        f"/dossier/{LL}/eindtoets_basisonderwijs/eindtoetsresultaat",
    ),
    (
        "OVa.EB03",
        {},
        _all(
            _del(f"{LL}/eindtoets_basisonderwijs/eindtoetsresultaat"),
            _set(f"{LL}/eindtoets_basisonderwijs/deelgenomen", "false"),
        ),
        f"/dossier/{LL}/eindtoets_basisonderwijs/eindtoetsresultaat",
    ),
    (
        "OVa.EB04",
        {},
        _del(f"{LL}/eindtoets_basisonderwijs/eindtoetsresultaat/toets_advies"),
        f"/dossier/{LL}/eindtoets_basisonderwijs/eindtoetsresultaat/toets_advies",
    ),
    (
        "OVa.TR04",
        {},
        _set(f"{LL}/toetslijst/toets/afname/afnamedatum", "2023-07-31"),
        f"/dossier/{LL}/toetslijst/toets[1]/afname/afnamedatum",
    ),
    (
        "OVa.TR05",
        {},
        _all(
            _del(f"{LL}/toetslijst/toets/resultaat/toetsscore"),
            _del(f"{LL}/toetslijst/toets/resultaat/referentiescore"),
        ),
        f"/dossier/{LL}/toetslijst/toets[1]/resultaat",
    ),
    (
        "OVa.TR06",
        {},
        _del(f"{LL}/toetslijst/toets/resultaat/toetsscore/aantalgoed"),
        f"/dossier/{LL}/toetslijst/toets[1]/resultaat/toetsscore",
    ),
    (
        "OVa.CL01",
        {},
        _del(f"{LL}/cijferlijstlijst/cijferlijst/cijferlijstTypelijst/score/waarde"),
        f"/dossier/{LL}/cijferlijstlijst/cijferlijst/cijferlijstTypelijst/score",
    ),
    ("GW.BSN01", {}, _set(f"{LL}/bsn", "111222334"), f"/dossier/{LL}/bsn"),
    (
        "GW.OWN01",
        {},
        _all(_del(f"{LL}/bsn"), _add(LL, "onderwijsnummer", "111222333")),
        f"/dossier/{LL}/onderwijsnummer",
    ),
    ("GW.BRIN01", {}, _set("huidigeschool/brincode", "99zz"), "/dossier/huidigeschool/brincode"),
    (
        "GW.VEST01",
        {},
        _set(f"{LL}/schoolloopbaanlijst/schoolloopbaan/vestigingscode", "1"),
        f"/dossier/{LL}/schoolloopbaanlijst/schoolloopbaan/vestigingscode",
    ),
    ("GW.DAT01", {}, _set(f"{LL}/geboortedatum", "2026-06-03"), f"/dossier/{LL}/geboortedatum"),
    ("GW.DAT02", {}, _set("inzage/inzagedatum", "2026-06-03"), "/dossier/inzage/inzagedatum"),
    ("GW.DAT03", {}, _set("metadata/datum", "2026-06-03"), "/dossier/metadata/datum"),
    (
        "GW.DAT04",
        {},
        _set(f"{LL}/onderwijsondersteuning/handelingsplan/einddatum", "2025-08-31"),
        f"/dossier/{LL}/onderwijsondersteuning/handelingsplan/einddatum",
    ),
    ("GW.DOC01", {}, _doc_content("niet*base64!"), f"{DOC}/bestandsinhoud"),
    (
        "GW.DOC02",
        {},
        _doc_content(base64.b64encode(b"%PDF-1.4 geen zip").decode()),
        f"{DOC}/bestandsinhoud",
    ),
    ("GW.DOC03", {}, _doc_content(_truncated_zip()), f"{DOC}/bestandsinhoud"),
    (
        "GW.DOC04",
        {},
        _set(f"{LL}/overigdocumentlijst/document/bestandsnaam", "script.exe"),
        f"{DOC}/bestandsnaam",
    ),
    (
        "GW.DOC05",
        {},
        _set(f"{LL}/overigdocumentlijst/document/bestandsnaam", "../../etc.pdf"),
        f"{DOC}/bestandsnaam",
    ),
]


_BY_ID = {c[0]: c for c in CASES}
# The SWV profile shares many checks with the overstapdossier profile: same mutation, own code.
CASES += [(pao, _SWV, _BY_ID[ova][2], _BY_ID[ova][3]) for pao, ova in _PAO_FROM_OVA.items()]
CASES += [
    ("PaO.SO02", _SWV, _set("metadata/overstap", "POVO"), "/dossier/metadata/overstap"),
    ("PaO.LL12", _SWV, _add(LL, "onderwijsnummer", "100000004"), f"/dossier/{LL}/onderwijsnummer"),
    (
        "PaO.OV05",
        _SWV,
        _add(f"{LL}/verzorger", "banknummer", "123456789"),
        f"/dossier/{LL}/verzorger/banknummer",
    ),
    (
        "PaO.EB01",
        _SWV,
        _add(LL, "eindtoets_basisonderwijs"),
        f"/dossier/{LL}/eindtoets_basisonderwijs",
    ),
]
for _i, _name in enumerate(_PAO_VO_FORBIDDEN, start=1):
    CASES.append(
        (
            f"PaO.VV0{_i}",
            _SWV_VO,
            _all(_add(LL, _name), lambda r: set_category(r, "vve", "OPTIONEEL")),
            f"/dossier/{LL}/{_name}",
        )
    )
for _i, _name in enumerate(_PAO_PO_FORBIDDEN, start=1):
    CASES.append(
        (
            f"PaO.VM0{_i}",
            _SWV,
            _all(_add(LL, _name), lambda r: set_category(r, "vombo", "OPTIONEEL")),
            f"/dossier/{LL}/{_name}",
        )
    )


@pytest.mark.parametrize(("rid", "kw", "mutate", "path"), CASES, ids=[c[0] for c in CASES])
def test_rule_fires_alone_at_its_path(
    rid: str, kw: dict[str, str], mutate: Mutation, path: str
) -> None:
    root = build_dossier(**kw)
    mutate(root)
    findings = check_rules(root, now=NOW)
    code = rid.split(":")[0]
    assert _codes(findings) == {code}, [(f.code, f.path) for f in findings]
    assert path in {f.path for f in findings}
    _assert_no_pii(findings)


# --- categories: every VERPLICHT / VERBODEN / OPT-UIT rule --------------------------------------

_FILLERS: dict[str, Mutation] = {
    # categories the sample leaves out: give them one element so VERBODEN/OPT-UIT can fire
    "vve": _add(LL, "vanpeuterspeelzaal", "true"),
    "vombo": _add(LL, "certificaat", "Certificaat"),
    "onderwijsondersteuning": lambda r: None,
}


def _category_cases() -> list[tuple[str, str, str]]:
    cases = []
    for c in CATEGORIES:
        for status in ("VERBODEN", "OPT-UIT"):
            cases.append((c.key, status, f"{c.rule}:{status.lower()}"))
        if not c.schema_required:
            cases.append((c.key, "VERPLICHT", f"{c.rule}:verplicht"))
    return cases


@pytest.mark.parametrize(("key", "status", "rid"), _category_cases(), ids=lambda v: str(v))
def test_category_rule_fires(key: str, status: str, rid: str) -> None:
    from oso_gateway.dossier.categories import BY_KEY, category_elements

    c = BY_KEY[key]
    root = build_dossier(**_BB)
    if status == "VERPLICHT":
        for el in list(category_elements(root, c)):
            parent = el.getparent()
            assert parent is not None
            parent.remove(el)
    else:
        _FILLERS.get(key, lambda r: None)(root)
    set_category(root, key, status)
    findings = check_rules(root, now=NOW)
    assert _codes(findings) == {c.rule}, [(f.code, f.path) for f in findings]
    expected = (
        {f"/dossier/metadata/categorie_uitlevering/{c.element}"}
        if status == "VERPLICHT"
        else {element_path(el) for el in category_elements(root, c)}
    )
    assert {f.path for f in findings} == expected
    assert all(
        ("VERPLICHT" if status == "VERPLICHT" else status) in f.message_nl
        or "uitgezet" in f.message_nl
        for f in findings
    )
    _assert_no_pii(findings)


def test_category_status_not_excluded_allows_data() -> None:
    root = build_dossier(**_BB)
    _FILLERS["vve"](root)
    set_category(root, "vve", "OPTIONEEL")
    assert check_rules(root, now=NOW) == []


# --- code lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cl", CODE_LISTS, ids=lambda cl: cl.code)
def test_code_list_value_outside_list_fires(cl: object) -> None:
    from oso_gateway.dossier.codelists import CodeList

    assert isinstance(cl, CodeList)
    root = build_dossier(**_BB)
    parent_name, _, child_name = cl.selectors[-1].rpartition("/")
    if parent_name == "categorie_uitlevering":
        target = set_text(root, f"metadata/categorie_uitlevering/{child_name}", BAD)
    else:
        holder = add(root, "", parent_name) if parent_name else root
        target = add(holder, "", child_name, BAD)
    findings = check_rules(root, now=NOW)
    assert _codes(findings) == {cl.code}, [(f.code, f.path) for f in findings]
    assert [f.path for f in findings] == [element_path(target)]
    assert f"codelijst {cl.number}" in findings[0].message_nl
    _assert_no_pii(findings)


def test_code_list_checks_real_fields_in_place() -> None:
    root = build_dossier()
    set_text(root, f"{LL}/geslacht", "3")
    set_text(root, "metadata/overstap", "PO-VO")
    findings = check_rules(root, now=NOW)
    assert {(f.code, f.path) for f in findings} >= {
        ("CL14", f"/dossier/{LL}/geslacht"),
        ("CL16", "/dossier/metadata/overstap"),
    }


# --- coverage and message hygiene ----------------------------------------------------------------


def test_every_rule_has_a_negative_case() -> None:
    covered = {c[0] for c in CASES} | {c[2] for c in _category_cases()}
    covered |= {cl.code for cl in CODE_LISTS}
    assert {r.id for r in all_rules()} == covered


def test_rule_codes_are_stable_strings_with_both_languages() -> None:
    for r in all_rules():
        assert r.nl and r.en and r.code
        assert r.code.startswith(("OG.", "OS.cat", "OVa.", "OVb.", "PaO.", "CL", "GW."))


def test_dates_are_judged_against_the_given_clock() -> None:
    root = build_dossier()
    set_text(root, f"{LL}/geboortedatum", "2026-06-03")
    assert "GW.DAT01" in _codes(check_rules(root, now=NOW))
    later = datetime(2026, 7, 1, tzinfo=UTC)
    assert "GW.DAT01" not in _codes(check_rules(root, now=later))


def test_attachment_whitespace_in_base64_is_accepted() -> None:
    root = build_dossier()
    el = find(root, f"{LL}/overigdocumentlijst/document/bestandsinhoud")
    text = el.text or ""
    el.text = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert check_rules(root, now=NOW) == []


def test_docs_list_every_rule_code_and_code_list() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "rules.md").read_text("utf-8")
    for r in all_rules():
        variant = r.id.split(":", 1)[1] if ":" in r.id else ""
        assert f"| `{r.code}` | {variant} | {r.severity} |" in doc, r.id
        assert r.en in doc and r.nl in doc, r.id
    for c in CATEGORIES:
        assert f"| `{c.element}` | {c.rule} |" in doc


def test_sender_can_check_an_export_before_minimisation() -> None:
    root = build_dossier()
    add(root, LL, "vanpeuterspeelzaal", "true")  # vve is VERBODEN: minimise will remove it
    assert _codes(check_rules(root, now=NOW)) == {"OS.cat06"}
    assert check_rules(root, now=NOW, excluded_data=False) == []
    remove(root, f"{LL}/verzuim")
    set_category(root, "verzuim", "VERPLICHT")
    assert _codes(check_rules(root, now=NOW, excluded_data=False)) == {"OS.cat10"}


_OFFICIAL_CASES: list[tuple[str, str, Mutation, str]] = [
    (
        "Voorbeelddossier_OV_POVO_full.xml",
        "GW.BSN01",
        _set(f"{LL}/bsn", "123456789"),
        f"/dossier/{LL}/bsn",
    ),
    (
        "Voorbeelddossier_OV_POVO_full.xml",
        "OVa.IZ03",
        _del("inzage/inzagedatum"),
        "/dossier/inzage/inzagedatum",
    ),
    (
        "Voorbeelddossier_OV_VOVO_full.xml",
        "OVa.IZ05",
        _del("inzage/toestemming"),
        "/dossier/inzage/toestemming",
    ),
    (
        "Voorbeelddossier_OV_POPO_full.xml",
        "OS.cat06",
        lambda r: set_category(r, "vve", "VERBODEN"),
        f"/dossier/{LL}/voorschools",
    ),
    (
        "Voorbeelddossier_OV_POVO_opt_out.xml",
        "OS.cat12",
        _add(LL, "toetslijst"),
        f"/dossier/{LL}/toetslijst",
    ),
    (
        "Voorbeelddossier_OV_POVO_full.xml",
        "CL14",
        _set(f"{LL}/geslacht", "9"),
        f"/dossier/{LL}/geslacht",
    ),
    (
        "Voorbeelddossier_OV_POVO_full.xml",
        "GW.BRIN01",
        _set("huidigeschool/brincode", "0YYY"),
        "/dossier/huidigeschool/brincode",
    ),
]


@pytest.mark.parametrize(
    ("name", "code", "mutate", "path"), _OFFICIAL_CASES, ids=[c[1] for c in _OFFICIAL_CASES]
)
def test_rule_fires_on_a_mutated_official_example(
    examples_dir: Path, name: str, code: str, mutate: Mutation, path: str
) -> None:
    root = parse_xml((examples_dir / name).read_bytes()).getroot()
    pii = {
        (el.text or "").strip()
        for tag in ("voornaam", "achternaam", "bsn", "geboortedatum", "straat", "postcode")
        for el in root.iter(q(tag))
    }
    mutate(root)
    errors = [f for f in check_rules(root, now=NOW) if f.severity == Severity.ERROR]
    assert _codes(errors) == {code}, [(f.code, f.path) for f in errors]
    assert path in {f.path for f in errors}
    _assert_no_pii(errors, extra=tuple(v for v in pii if len(v) >= 4))


# --- one walk for the elements the checks iterate -----------------------------------------------


def test_the_checks_iterate_only_names_collected_in_the_one_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oso_gateway.dossier.rules.context import ITER_NAMES, _Ctx

    asked: set[str] = set()
    iterate = _Ctx.iter

    def spy(self: _Ctx, name: str):  # type: ignore[no-untyped-def]
        asked.add(name)
        return iterate(self, name)

    monkeypatch.setattr(_Ctx, "iter", spy)
    for overstap, soort in (
        ("POVO", "overstapdossier"),
        ("POPO", "overstapdossier"),
        ("VOSWV", "swv-dossier"),
        ("POSWV", "swv-dossier"),
    ):
        check_rules(build_dossier(overstap=overstap, overdrachtsoort=soort), now=NOW)
    for path in official_example_files():  # the files themselves, or none without ../shared
        check_rules(parse_xml(path.read_bytes()).getroot(), now=NOW)
    assert asked and asked <= set(ITER_NAMES)


def test_iterating_a_name_outside_the_walk_still_finds_every_element_in_order() -> None:
    from oso_gateway.dossier.rules.context import ITER_NAMES, _Ctx

    root = build_dossier()
    ctx = _Ctx(root, NOW)
    for name in (*ITER_NAMES, "adres", "naam", "nummer"):
        assert list(ctx.iter(name)) == list(root.iter(q(name)))
