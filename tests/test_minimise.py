"""Minimisation by categorie_uitlevering (sender) and the receiver's category check."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dossier_samples import SAMPLE_PII, add, build_dossier, find, q, set_category
from lxml import etree

from oso_gateway.dossier.categories import BY_KEY, declared_status
from oso_gateway.dossier.findings import Severity
from oso_gateway.dossier.minimise import (
    DossierOptOutError,
    category_violations,
    minimise,
    require_no_category_violations,
)
from oso_gateway.dossier.rules import check_rules
from oso_gateway.errors import DossierCategoryError
from oso_gateway.security.xmlparse import parse_xml

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LL = "huidigeschool/leerling"
XSD = Path(__file__).resolve().parent.parent / "schemas" / "oso_gegevensset_2019.xsd"
OPTIONAL_IN_EXAMPLES = (
    "onderwijsondersteuning",
    "verzuim",
    "eindtoetsbo",
    "toetsresultaten",
    "handelingsplannen",
    "cijferlijsten",
    "vombo",
    "bijlagedocs",
)


def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def _shape(root: etree._Element) -> set[str]:
    tree = etree.ElementTree(root)
    return {re.sub(r"\{[^}]*\}|\[\d+\]", "", tree.getpath(el)) for el in root.iter(etree.Element)}


def _errors(root: etree._Element) -> list[str]:
    return [f.code for f in check_rules(root, now=NOW) if f.severity == Severity.ERROR]


@pytest.mark.parametrize("kind", ["POVO", "VOVO"])
def test_opt_out_of_a_full_example_gives_the_official_opt_out_example(
    examples_dir: Path, kind: str
) -> None:
    full = parse_xml((examples_dir / f"Voorbeelddossier_OV_{kind}_full.xml").read_bytes())
    official = parse_xml((examples_dir / f"Voorbeelddossier_OV_{kind}_opt_out.xml").read_bytes())
    result = minimise(full.getroot(), opt_out=OPTIONAL_IN_EXAMPLES)
    assert _shape(result.root) == _shape(official.getroot())
    cat_path = "metadata/categorie_uitlevering"
    assert [e.text for e in find(result.root, cat_path)] == [
        e.text for e in find(official.getroot(), cat_path)
    ]
    assert _errors(result.root) == []
    assert _schema().validate(etree.ElementTree(result.root)), _schema().error_log


def test_minimise_does_not_touch_the_input() -> None:
    root = build_dossier()
    before = etree.tostring(root)
    result = minimise(root, opt_out=["toetsresultaten"])
    assert etree.tostring(root) == before
    assert result.root is not root


def test_nothing_to_remove_leaves_the_dossier_as_it_was() -> None:
    root = build_dossier()
    result = minimise(root)
    assert not result.changed
    assert etree.tostring(result.root) == etree.tostring(root)


def test_verboden_category_data_is_removed_and_its_marker_kept() -> None:
    root = build_dossier()
    add(root, LL, "vanpeuterspeelzaal", "true")  # vve is VERBODEN in the sample
    assert "OS.cat06" in _errors(root)
    result = minimise(root)
    assert [(r.key, str(r.status), r.elements, r.nodes) for r in result.removed] == [
        ("vve", "VERBODEN", 1, 1)
    ]
    assert declared_status(result.root, BY_KEY["vve"]) == "VERBODEN"
    assert result.root.find(f".//{q('vanpeuterspeelzaal')}") is None
    assert _errors(result.root) == []


def test_opt_out_marks_the_category_and_removes_its_data() -> None:
    result = minimise(build_dossier(), opt_out=["toetsresultaten", "bijlagedocs"])
    assert result.opted_out == ("toetsresultaten", "bijlagedocs")
    assert declared_status(result.root, BY_KEY["toetsresultaten"]) == "OPT-UIT"
    counts = {r.key: (r.elements, r.nodes) for r in result.removed}
    # one toetslijst; one overigdocumentlijst with two documents of three fields each
    assert counts["bijlagedocs"] == (1, 1 + 2 * 4)
    assert counts["toetsresultaten"][0] == 1
    assert result.root.find(f".//{q('toetslijst')}") is None
    assert _errors(result.root) == []
    assert _schema().validate(etree.ElementTree(result.root)), _schema().error_log


def test_emptied_onderwijsondersteuning_block_is_dropped() -> None:
    result = minimise(build_dossier(), opt_out=["onderwijsondersteuning", "handelingsplannen"])
    assert result.root.find(f".//{q('onderwijsondersteuning')}") is None
    assert _schema().validate(etree.ElementTree(result.root))


def test_partial_onderwijsondersteuning_opt_out_keeps_the_other_part() -> None:
    result = minimise(build_dossier(), opt_out=["onderwijsondersteuning"])
    block = result.root.find(f".//{q('onderwijsondersteuning')}")
    assert block is not None
    assert [etree.QName(c).localname for c in block] == ["handelingsplan"]


def test_opting_out_of_a_mandatory_category_is_refused() -> None:
    with pytest.raises(DossierOptOutError) as info:
        minimise(build_dossier(), opt_out=["schoolloopbaan"])
    assert info.value.code == "OSO-E105"
    assert not any(v in str(info.value) for v in SAMPLE_PII)


def test_opt_out_refusal_does_not_echo_an_invalid_status_value() -> None:
    root = build_dossier()
    find(root, "metadata/categorie_uitlevering/cat_verzuim").text = "Fenna Jansen"
    with pytest.raises(DossierOptOutError) as info:
        minimise(root, opt_out=["verzuim"])
    assert "Jansen" not in str(info.value) and "invalid" in str(info.value)


def test_opt_out_needs_a_categorie_uitlevering_block() -> None:
    root = build_dossier()
    metadata = find(root, "metadata")
    metadata.remove(find(metadata, "categorie_uitlevering"))
    with pytest.raises(DossierOptOutError):
        minimise(root, opt_out=["verzuim"])


def test_unknown_category_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        minimise(build_dossier(), opt_out=["geheimen"])


def test_schema_required_category_marked_verboden_cannot_be_minimised() -> None:
    root = build_dossier()
    set_category(root, "leerling", "VERBODEN")
    with pytest.raises(DossierCategoryError) as info:
        minimise(root)
    assert info.value.code == "OSO-E104"


def test_result_summary_holds_counts_only() -> None:
    result = minimise(build_dossier(), opt_out=["verzuim"])
    text = repr(result.as_dict())
    assert result.as_dict() == {
        "removed": [{"category": "verzuim", "status": "OPT-UIT", "elements": 1, "nodes": 3}],
        "opted_out": ["verzuim"],
    }
    assert not any(v in text for v in SAMPLE_PII)


# --- receiver side -------------------------------------------------------------------------------


def test_receiver_accepts_a_clean_dossier() -> None:
    root = build_dossier()
    assert category_violations(root) == []
    require_no_category_violations(root)


def test_receiver_accepts_missing_verplicht_data_as_not_a_category_violation() -> None:
    root = build_dossier(overdrachtsoort="swv-dossier", overstap="POSWV")
    set_category(root, "vve", "VERPLICHT")
    assert category_violations(root) == []


def test_receiver_rejects_opted_out_data() -> None:
    root = build_dossier()
    set_category(root, "toetsresultaten", "OPT-UIT")
    found = category_violations(root)
    assert [(f.code, f.path) for f in found] == [
        ("OS.cat12", "/dossier/huidigeschool/leerling/toetslijst")
    ]
    with pytest.raises(DossierCategoryError) as info:
        require_no_category_violations(root)
    assert info.value.code == "OSO-E104"
    assert "OS.cat12" in info.value.detail
    assert not any(v in str(info.value) for v in SAMPLE_PII)


def test_minimised_dossier_passes_the_receiver_check() -> None:
    root = build_dossier()
    add(root, LL, "certificaat", "Certificaat")  # vombo is VERBODEN in the sample
    with pytest.raises(DossierCategoryError):
        require_no_category_violations(root)
    require_no_category_violations(minimise(root).root)


def test_dossier_without_categorie_uitlevering_is_left_alone() -> None:
    root = build_dossier()
    metadata = find(root, "metadata")
    metadata.remove(find(metadata, "categorie_uitlevering"))
    result = minimise(root)
    assert not result.changed
    assert category_violations(result.root) == []
