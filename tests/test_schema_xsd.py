"""The OSO gegevensset 2019.1 schema: official examples, structural verdicts, and (optionally) a
differential comparison with the published XSD.

The published XSD is never committed. To run the differential comparison, save it somewhere and
point ``OSO_OFFICIAL_XSD`` at it:
``OSO_OFFICIAL_XSD=/tmp/oso-official/OSO_gegevensset.xsd .venv/bin/pytest tests/test_schema_xsd.py``
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import official_example_files, official_examples, require
from lxml import etree
from test_schema_mutations import (
    DOSSIER_NS,
    Mutation,
    element_types,
    instances,
    mutations,
)

from oso_gateway.dossier.schema import compiled_schema, schema_locations, validate_schema

SCHEMA = schema_locations()[0]
N = f"{{{DOSSIER_NS}}}"


def _valid(data: bytes) -> bool:
    return compiled_schema().validate(etree.ElementTree(etree.fromstring(data)))


def _tree(path: Path) -> etree._ElementTree:
    return etree.parse(str(path))


def _generated() -> dict[str, bytes]:
    return dict(instances(SCHEMA))


GENERATED = _generated()


# --------------------------------------------------------------------------------------------
# (a) what must be accepted
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", official_examples(), ids=lambda p: p.name)
def test_every_official_example_conforms(examples_dir: Path, example: Path) -> None:
    assert validate_schema(_tree(example)) == []


def test_official_examples_are_present_for_every_ov_transfer(examples_dir: Path) -> None:
    names = {p.name for p in examples_dir.glob("*.xml")}
    for kind in ("POPO", "POVO", "VOVO"):
        assert any(f"_{kind}_" in n for n in names), kind


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_documents_built_from_the_schema_conform(name: str) -> None:
    """Every global element is a valid root; maximal instances reach every block (incl. PaO)."""
    assert _valid(GENERATED[name]), name


def test_every_global_element_of_the_standard_is_a_document_root() -> None:
    roots = {name.rsplit("-", 1)[0] for name in GENERATED}
    assert {"dossier", "dossiers", "terugkoppeling", "leerling", "adres", "document"} <= roots
    assert roots == {
        "adres",
        "categorie_uitlevering",
        "cijferlijst",
        "communicatie",
        "document",
        "dossier",
        "dossiers",
        "eindtoetsresultaat",
        "handelingsplan",
        "huidigeschool",
        "instelling",
        "inzage",
        "leerling",
        "metadata",
        "referentiescore",
        "resultaat",
        "school",
        "schoolloopbaan",
        "terugkoppeling",
        "toets",
        "toetsonderdeel",
        "toetsscore",
        "verzorger",
    }


def test_pao_blocks_are_accepted_with_the_2019_1_cardinalities() -> None:
    root = etree.fromstring(GENERATED["dossier-max0"])
    support = root.find(f".//{N}onderwijsondersteuning")
    assert support is not None
    for block in ("tlv", "arrangement_cluster12", "arrangement_pao", "opp", "lwoo", "rvc"):
        assert support.find(N + block) is not None, block
    # since the April 2019 update of 2019.1 the tlv document is optional
    for tlv in support.findall(N + "tlv"):
        for document in tlv.findall(N + "document"):
            tlv.remove(document)
    assert _valid(etree.tostring(root))


# --------------------------------------------------------------------------------------------
# (b) structural verdicts that follow from the standard
# --------------------------------------------------------------------------------------------


def _example_trees() -> Iterator[tuple[str, etree._ElementTree]]:
    """The small official examples (the full ones add only repetitions) and two generated
    maximal dossiers that between them hold every element of the schema (a choice such as the
    pupil's bsn or onderwijsnummer goes one way in each), so that the verdicts below do not
    depend on ../shared being there."""
    for path in official_example_files():
        if "opt_out" in path.name:
            yield path.name, _tree(path)
    for name in ("dossier-max0", "dossier-max1"):
        yield f"generated {name}", etree.ElementTree(etree.fromstring(GENERATED[name]))


def _mutations_of(*kinds: str) -> list[tuple[str, Mutation]]:
    wanted = frozenset(kinds)
    return [(name, m) for name, tree in _example_trees() for m in mutations(tree, kinds=wanted)]


ALWAYS_REJECTED = (
    "text-in-complex",
    "child-in-leaf",
    "unknown-first-child",
    "unknown-last-child",
    "foreign-child",
    "unqualified-child",
    "unknown-attribute",
    "foreign-attribute",
    "xsi-nil",
    "xsi-type:onbekendType",
    "unqualified",
    "other-namespace",
    "root-namespace-2018",
    "root-unqualified",
)


@pytest.mark.parametrize("kind", ALWAYS_REJECTED)
def test_unknown_elements_attributes_text_and_namespaces_are_rejected_everywhere(kind: str) -> None:
    cases = _mutations_of(kind)
    assert cases
    accepted = [f"{n}: {m.path}" for n, m in cases if _valid(m.data)]
    assert accepted == []


REQUIRED = {
    "/dossier/metadata",
    "/dossier/overdrachtsoort",
    "/dossier/huidigeschool",
    "/dossier/metadata/deeldossier",
    "/dossier/metadata/datum",
    "/dossier/metadata/standaardversie",
    "/dossier/metadata/validatieversie",
    "/dossier/metadata/categorie_uitlevering/cat_bijlagedocs",
    "/dossier/huidigeschool/naam",
    "/dossier/huidigeschool/brincode",
    "/dossier/huidigeschool/vestigingscode",
    "/dossier/huidigeschool/aanleverpunt",
    "/dossier/huidigeschool/leerling",
    "/dossier/huidigeschool/leerling/achternaam",
    "/dossier/inzage/voorlopigdossier",
}
OPTIONAL = {
    "/dossier/inzage",
    "/dossier/metadata/categorie_uitlevering",
    "/dossier/metadata/overstap",
    "/dossier/huidigeschool/leerling/bsn",
    "/dossier/huidigeschool/leerling/geboortedatum",
    "/dossier/huidigeschool/leerling/overstapadvies",
    "/dossier/huidigeschool/leerling/onderwijsondersteuning",
}


def _positionless(path: str) -> str:
    return "/".join(step.split("[")[0] for step in path.split("/"))


def test_deleting_a_required_element_is_rejected_and_an_optional_one_accepted() -> None:
    deletes = [m for _, m in _mutations_of("delete")]
    seen_required = seen_optional = 0
    for m in deletes:
        path = _positionless(m.path)
        if path in REQUIRED:
            seen_required += 1
            assert not _valid(m.data), m.path
        elif path in OPTIONAL:
            seen_optional += 1
            assert _valid(m.data), m.path
    assert seen_required >= len(REQUIRED) and seen_optional >= len(OPTIONAL)


SINGLE = {
    "/dossier/metadata",
    "/dossier/huidigeschool",
    "/dossier/huidigeschool/leerling",
    "/dossier/huidigeschool/leerling/achternaam",
    "/dossier/huidigeschool/brincode",
    "/dossier/inzage",
    "/dossier/huidigeschool/leerling/bsn",
}


def test_duplicating_a_single_element_is_rejected() -> None:
    hits = 0
    for _, m in _mutations_of("duplicate"):
        if _positionless(m.path) in SINGLE:
            hits += 1
            assert not _valid(m.data), m.path
    assert hits >= len(SINGLE)


def test_reordering_required_siblings_is_rejected() -> None:
    swaps = [
        m
        for _, m in _mutations_of("swap")
        if _positionless(m.path)
        in {
            "/dossier/metadata",
            "/dossier/huidigeschool/brincode",
            "/dossier/metadata/deeldossier",
            "/dossier/huidigeschool/leerling/achternaam",
        }
    ]
    assert swaps
    assert [m.path for m in swaps if _valid(m.data)] == []


def _typed_names(type_ref: str) -> set[str]:
    return {name for name, types in element_types(SCHEMA).items() if types == {type_ref}}


@pytest.mark.parametrize(
    ("type_ref", "bad"),
    [
        ("xs:date", "2019-02-30"),
        ("xs:date", "01-01-2019"),
        ("xs:date", "2019-01-01T00:00:00"),
        ("xs:boolean", "ja"),
        ("xs:integer", "1.5"),
        ("xs:int", "2147483648"),
        ("xs:decimal", "NaN"),
        ("nonEmptyStringType", ""),
        ("brincodeType", "00yy"),
        ("vestigingscodeType", "123"),
        ("elementcodeType", "123"),
        ("geslachtType", "x"),
    ],
)
def test_a_bad_value_in_a_typed_field_is_rejected(type_ref: str, bad: str) -> None:
    names = _typed_names(type_ref)
    hits = 0
    trees = [(p.name, _tree(p)) for p in official_example_files()] + list(_example_trees())
    for _, tree in trees:
        for element in tree.getroot().iter():
            if isinstance(element.tag, str) and etree.QName(element).localname in names:
                if len(element):
                    continue
                original_text = element.text
                element.text = bad
                try:
                    assert not compiled_schema().validate(tree), tree.getpath(element)
                finally:
                    element.text = original_text
                hits += 1
                break  # one element per name and document keeps this fast
    assert hits


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("voorschoolsemaanden", "0", False),
        ("voorschoolsemaanden", "1", True),
        ("voorschoolsemaanden", "24", True),
        ("voorschoolsemaanden", "25", False),
        ("standaardscore", "1000", True),
        ("standaardscore", "1001", False),
        ("standaardscore", "-1", False),
        ("aandachtspunten", "a" * 280, True),
        ("aandachtspunten", "a" * 281, False),
        ("aandachtspunten", "", False),
        ("locatieomschrijving", "a" * 35, True),
        ("locatieomschrijving", "a" * 36, False),
        ("adresbuitenland", "a" * 36, False),
        ("toets_advies", "", True),
        ("toets_advies", "a" * 1025, False),
        ("lwoo_einddatum", "2019-07-31", True),
        ("lwoo_einddatum", "2019-08-01", False),
        ("lwoo_einddatum", "2019-07-32", False),
        ("geboortemaand", "٢٠١٢-٠٣", True),  # \p{Nd}: any decimal digit, as published
        ("geboortemaand", "2012-3", False),
        ("schooljaar", "٢٠١٢-٢٠١٣", False),  # [0-9] only
        ("gbageboortedatum", "2012-03-17", False),
        ("brincode", "00YYY", False),
        ("straat", " ", True),  # length 1: whitespace counts
        ("nationaliteit", "", True),  # plain xs:string content
        ("toetsomschrijving", "", True),
        ("geslacht", " 2 ", True),  # integer whitespace is collapsed
    ],
)
def test_facets_of_the_standard(name: str, value: str, ok: bool) -> None:
    root = etree.fromstring(GENERATED["dossier-max0"])
    element = root.find(f".//{N}{name}")
    if element is None:  # blocks that only occur in another choice branch
        root = etree.fromstring(GENERATED["dossier-max1"])
        element = root.find(f".//{N}{name}")
    assert element is not None, name
    element.text = value
    assert _valid(etree.tostring(root)) is ok


def test_choice_branches_are_exclusive() -> None:
    root = etree.fromstring(GENERATED["dossier-max0"])
    leerling = root.find(f".//{N}leerling")
    assert leerling is not None
    bsn = leerling.find(N + "onderwijsnummer")
    assert bsn is not None
    extra = etree.Element(N + "bsn")
    extra.text = "x"
    bsn.addnext(extra)
    assert not _valid(etree.tostring(root))


# --------------------------------------------------------------------------------------------
# (c) differential comparison with the published XSD (when available)
# --------------------------------------------------------------------------------------------


def _official_schema() -> etree.XMLSchema:
    location = os.environ.get("OSO_OFFICIAL_XSD", "")
    require(
        "official_xsd",
        bool(location) and Path(location).is_file(),
        "set OSO_OFFICIAL_XSD to a saved copy of the published 2019.1 XSD",
    )
    return etree.XMLSchema(etree.parse(location))


@pytest.mark.slow
def test_our_schema_gives_the_same_verdict_as_the_published_xsd_for_every_mutation() -> None:
    official = _official_schema()
    documents: list[tuple[str, bytes]] = [
        (p.name, p.read_bytes()) for p in official_example_files()
    ]
    documents += [(f"generated {n}", d) for n, d in GENERATED.items()]
    compared = 0
    differences: list[str] = []
    for name, data in documents:
        ours_ok = _valid(data)
        theirs_ok = official.validate(etree.ElementTree(etree.fromstring(data)))
        compared += 1
        if ours_ok != theirs_ok:
            differences.append(f"{name}: ours={ours_ok} official={theirs_ok}")
        if not theirs_ok or not (name.endswith(".xml") or "dossier-m" in name):
            continue
        for m in mutations(etree.ElementTree(etree.fromstring(data))):
            doc = etree.ElementTree(etree.fromstring(m.data))
            ours_ok, theirs_ok = compiled_schema().validate(doc), official.validate(doc)
            compared += 1
            if ours_ok != theirs_ok:
                differences.append(f"{name} {m.kind} {m.path}: ours={ours_ok}")
    print(f"compared {compared} documents with the published XSD: {len(differences)} differ")
    assert compared > 1000
    assert differences == []
