"""validate_schema and validate_dossier: findings, report, errors, and no pupil data in messages."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from test_schema_mutations import DOSSIER_NS, instances

from oso_gateway.dossier import schema as schema_module
from oso_gateway.dossier.findings import Severity
from oso_gateway.dossier.schema import (
    CODE_ATTRIBUTE,
    CODE_ROOT,
    CODE_STRUCTURE,
    CODE_VALUE,
    compiled_schema,
    element_path,
    sanitise_message,
    schema_locations,
    validate_schema,
)
from oso_gateway.dossier.validate import CODE_NOT_A_DOSSIER, ValidationReport, validate_dossier
from oso_gateway.errors import DossierParseError, DossierRuleError, DossierSchemaError
from oso_gateway.protocol import STANDAARDVERSIE

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
N = f"{{{DOSSIER_NS}}}"
SECRET = "Jansen-O'Brien 1234"  # stands in for pupil data; must never appear in output

GENERATED = dict(instances(schema_locations()[0], variants=1))


def _opt_out(examples_dir: Path) -> bytes:
    return (examples_dir / "Voorbeelddossier_OV_POVO_opt_out.xml").read_bytes()


def _set(data: bytes, name: str, value: str) -> bytes:
    root = etree.fromstring(data)
    element = root.find(f".//{N}{name}")
    assert element is not None, name
    element.text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _all_text(report: ValidationReport) -> str:
    return " ".join(f"{f.path} {f.message_en} {f.message_nl}" for f in report.findings)


def test_standard_version_constant_matches_the_schema_file() -> None:
    xsd = etree.parse(str(schema_locations()[0])).getroot()
    assert STANDAARDVERSIE == "2019.1" == xsd.get("version")
    assert xsd.get("targetNamespace") == schema_module.DOSSIER_NS


def test_schema_is_compiled_once_per_thread() -> None:
    first = compiled_schema()
    assert compiled_schema() is first
    other: list[etree.XMLSchema] = []
    thread = threading.Thread(target=lambda: other.append(compiled_schema()))
    thread.start()
    thread.join()
    assert other and other[0] is not first


def test_schema_file_is_looked_up_in_the_source_tree_then_the_install_prefix() -> None:
    first, fallback = schema_locations()
    assert first.is_file()
    assert fallback.parts[-3:] == ("oso-gateway", "schemas", "oso_gegevensset_2019.xsd")


def test_valid_generated_dossier_has_no_schema_findings() -> None:
    tree = etree.ElementTree(etree.fromstring(GENERATED["dossier-max0"]))
    assert validate_schema(tree) == []


def test_bad_value_finding_names_element_type_and_line_but_not_the_value() -> None:
    data = _set(GENERATED["dossier-max0"], "geboortedatum", SECRET)
    findings = validate_schema(etree.ElementTree(etree.fromstring(data)))
    assert len(findings) == 1
    finding = findings[0]
    assert finding.code == CODE_VALUE
    assert finding.severity is Severity.ERROR
    assert finding.path == "/dossier/huidigeschool/leerling/geboortedatum"
    assert "xs:date" in finding.message_en and "geboortedatum" in finding.message_en
    assert finding.message_nl.startswith("Voldoet niet aan het OSO-schema")
    assert finding.line is not None and finding.line > 1
    assert "Jansen" not in finding.message_en + finding.message_nl


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("brincode", SECRET),  # pattern facet
        ("adresbuitenland", SECRET * 3),  # maxLength facet
        ("voorschoolsemaanden", "1234567"),  # maxInclusive facet
        ("aandachtspunten", SECRET * 20),
        ("geslacht", SECRET),  # integer
        ("tehuis", SECRET),  # boolean
        # a value that quotes the phrases libxml2 puts after it must still be removed whole
        ("brincode", "X' is not accepted by Fenna Jansen"),
        ("brincode", "12' of Fenna Jansen, BSN 111222333"),
    ],
)
def test_no_schema_message_quotes_the_offending_value(name: str, value: str) -> None:
    data = _set(GENERATED["dossier-max0"], name, value)
    findings = validate_schema(etree.ElementTree(etree.fromstring(data)))
    assert findings
    for finding in findings:
        text = finding.message_en + finding.message_nl
        assert value not in text and "Jansen" not in text and "1234567" not in text
        assert "111222333" not in text
        assert name in finding.message_en


def test_unknown_attribute_value_is_not_quoted() -> None:
    root = etree.fromstring(GENERATED["dossier-max0"])
    land = root.find(f".//{N}land")
    assert land is not None
    land.set("omschrijving", "")
    land.set("onbekend", SECRET)
    findings = validate_schema(etree.ElementTree(root))
    assert {f.code for f in findings} == {CODE_ATTRIBUTE}
    assert all("Jansen" not in f.message_en for f in findings)


def test_a_name_the_schema_does_not_declare_is_not_quoted() -> None:
    """A document's own element or attribute name may be anything: "Element
    'Dijkstra999999527'" and "attribute 'Dijkstra'" were echoed (an integrator's walkthrough).
    The schema's own names stay: they say where the document went wrong."""
    root = etree.fromstring(GENERATED["dossier-max0"])
    leerling = root.find(f".//{N}leerling")
    assert leerling is not None
    leerling.set("Dijkstra", "999999527")
    leerling.append(etree.Element(N + "Dijkstra999999527"))
    findings = validate_schema(etree.ElementTree(root))
    text = " ".join(f"{f.path} {f.message_en} {f.message_nl}" for f in findings)
    assert findings and "Dijkstra" not in text and "999999527" not in text, text
    assert "(a name not in the schema)" in text and "'leerling'" in text


def test_a_made_up_name_in_a_standard_namespace_is_not_quoted() -> None:
    """Any name in a w3.org namespace passed as standard, so a document could put anything
    there (a review); only the XML and XSI names themselves are quoted."""
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}"
    for raw in (
        "Element '{http://www.w3.org/Jansen-123456782}Jansen999999527': This element is not "
        "expected.",
        f"Element 'leerling', attribute '{xsi}Jansen999999527': The attribute "
        f"'{xsi}Jansen999999527' is not allowed.",
        "Element 'leerling', attribute 'xml:Jansen999999527': The attribute is not allowed.",
    ):
        assert "Jansen" not in sanitise_message(raw), raw
    kept = sanitise_message(f"Element 'leerling', attribute '{xsi}type': not resolved.")
    assert f"'{xsi}type'" in kept


def test_sanitiser_removes_values_containing_quotes() -> None:
    raw = (
        f"Element '{{{DOSSIER_NS}}}achternaam': [facet 'maxLength'] The value '{SECRET}' has a "
        "length of '19'; this exceeds the allowed maximum length of '5'."
    )
    clean = sanitise_message(raw)
    assert "Jansen" not in clean and "Brien" not in clean
    assert clean.startswith("Element 'achternaam': [facet 'maxLength'] The value has a length")


def test_structure_findings_for_missing_and_unexpected_elements() -> None:
    root = etree.fromstring(GENERATED["dossier-max0"])
    leerling = root.find(f".//{N}leerling")
    assert leerling is not None
    achternaam = leerling.find(N + "achternaam")
    assert achternaam is not None
    leerling.remove(achternaam)
    findings = validate_schema(etree.ElementTree(root))
    assert [f.code for f in findings] == [CODE_STRUCTURE]
    assert "achternaam" in findings[0].message_en


def test_root_outside_the_namespace_is_a_root_finding() -> None:
    findings = validate_schema(etree.ElementTree(etree.fromstring(b"<dossier/>")))
    assert [f.code for f in findings] == [CODE_ROOT]


def test_element_path_uses_positions_only_for_repeated_names() -> None:
    root = etree.fromstring(GENERATED["dossier-max0"])
    voornamen = root.findall(f".//{N}leerling/{N}voornaam")
    assert len(voornamen) == 2
    assert element_path(voornamen[1]) == "/dossier/huidigeschool/leerling/voornaam[2]"
    achternaam = root.find(f".//{N}leerling/{N}achternaam")
    assert achternaam is not None
    assert element_path(achternaam) == "/dossier/huidigeschool/leerling/achternaam"


# ---- validate_dossier -------------------------------------------------------------------------


def test_official_example_is_valid_with_rules(examples_dir: Path) -> None:
    report = validate_dossier(_opt_out(examples_dir), now=NOW)
    assert report.valid
    assert report.tree is not None
    report.raise_for_errors()  # no exception


def test_not_well_formed_input_becomes_a_parse_finding_with_position() -> None:
    report = validate_dossier(b"<dossier>\n  <metadata>\n</dossier>", now=NOW)
    assert not report.valid and report.tree is None
    (finding,) = report.findings
    assert finding.code == "OSO-E201"
    assert finding.line == 3
    with pytest.raises(DossierParseError) as raised:
        report.raise_for_errors()
    assert raised.value.code == "OSO-E101"


def test_doctype_is_refused_as_a_forbidden_construct() -> None:
    report = validate_dossier(b'<!DOCTYPE d [<!ENTITY e "x">]><d>&e;</d>', now=NOW)
    assert [f.code for f in report.findings] == ["OSO-E202"]


def test_schema_error_raises_dossier_schema_error_listing_codes_and_paths_only() -> None:
    data = _set(GENERATED["dossier-max0"], "geboortedatum", SECRET)
    report = validate_dossier(data, now=NOW)
    assert not report.valid
    with pytest.raises(DossierSchemaError) as raised:
        report.raise_for_errors()
    assert raised.value.code == "OSO-E102"
    assert raised.value.detail == f"{CODE_VALUE} at /dossier/huidigeschool/leerling/geboortedatum"
    assert "Jansen" not in str(raised.value)


def test_rule_error_raises_dossier_rule_error(examples_dir: Path) -> None:
    data = _set(_opt_out(examples_dir), "standaardversie", "2018.1")
    report = validate_dossier(data, now=NOW)
    assert not report.valid
    assert all(not f.code.startswith("OSO-XSD") for f in report.findings)
    with pytest.raises(DossierRuleError) as raised:
        report.raise_for_errors()
    assert raised.value.code == "OSO-E103"
    assert "/dossier/metadata/standaardversie" in raised.value.detail


def test_schema_only_does_not_run_the_rules(examples_dir: Path) -> None:
    data = _set(_opt_out(examples_dir), "standaardversie", "2018.1")
    assert validate_dossier(data, now=NOW, schema_only=True).valid


def test_rules_do_not_run_on_a_schema_invalid_dossier() -> None:
    data = _set(GENERATED["dossier-max0"], "brincode", "xx")
    report = validate_dossier(data, now=NOW)
    assert {f.code for f in report.findings} == {CODE_VALUE}


def test_other_global_root_passes_the_schema_but_is_not_a_dossier() -> None:
    data = GENERATED["leerling-max0"]
    assert validate_dossier(data, now=NOW, schema_only=True).valid
    report = validate_dossier(data, now=NOW)
    assert [f.code for f in report.findings] == [CODE_NOT_A_DOSSIER]
    with pytest.raises(DossierSchemaError):
        report.raise_for_errors()


def test_warnings_alone_keep_a_dossier_valid() -> None:
    from oso_gateway.dossier.findings import Finding

    warning = Finding(
        code="X", severity=Severity.WARNING, path="/dossier", message_nl="w", message_en="w"
    )
    report = ValidationReport(findings=(warning,), tree=None)
    assert report.valid
    report.raise_for_errors()


def test_report_as_dict_is_json_ready_and_value_free() -> None:
    data = _set(GENERATED["dossier-max0"], "inzagedatum", SECRET)
    report = validate_dossier(data, now=NOW)
    document = report.as_dict()
    assert document["valid"] is False
    assert "Jansen" not in str(document) and "Jansen" not in _all_text(report)


@pytest.mark.parametrize(
    ("kinds", "code"),
    [
        (("delete", "duplicate", "swap", "text-in-complex", "child-in-leaf"), CODE_STRUCTURE),
        (("unknown-first-child", "foreign-child", "unqualified"), CODE_STRUCTURE),
        (("value", "empty"), CODE_VALUE),
        (("unknown-attribute", "foreign-attribute", "xsi-nil"), CODE_ATTRIBUTE),
        (("root-namespace-2018", "root-unqualified"), CODE_ROOT),
    ],
)
def test_each_kind_of_schema_error_gets_its_own_code(kinds: tuple[str, ...], code: str) -> None:
    from test_schema_mutations import mutations

    tree = etree.ElementTree(etree.fromstring(GENERATED["dossier-min"]))
    codes = set()
    for mutation in mutations(tree, kinds=frozenset(kinds)):
        codes |= {
            f.code for f in validate_schema(etree.ElementTree(etree.fromstring(mutation.data)))
        }
    assert codes == {code}


def test_validate_tree_gives_the_same_report_as_validate_dossier(examples_dir: Path) -> None:
    from oso_gateway.dossier.validate import validate_tree
    from oso_gateway.security.xmlparse import parse_xml

    good = _opt_out(examples_dir)
    bad = _set(good, "standaardversie", "2018.1")
    for data in (good, bad, GENERATED["leerling-max0"], _set(good, "datum", SECRET)):
        by_tree = validate_tree(parse_xml(data), now=NOW)
        by_bytes = validate_dossier(data, now=NOW)
        assert by_tree.findings == by_bytes.findings
    assert not validate_tree(parse_xml(bad), now=NOW).valid
    assert validate_tree(parse_xml(bad), now=NOW, schema_only=True).valid
