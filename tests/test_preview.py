"""The "what will be shared" preview: counts per category, no personal data unless asked for."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from dossier_samples import SAMPLE_PII, add, build_dossier, find, q, sample_xml, set_category
from lxml import etree

from oso_gateway.cli import main
from oso_gateway.dossier.minimise import minimise
from oso_gateway.dossier.preview import Action, preview, render_text
from oso_gateway.security.xmlparse import parse_xml

LL = "huidigeschool/leerling"
_PII_ELEMENTS = ("voornaam", "achternaam", "roepnaam", "bsn", "geboortedatum", "straat")
_PII_ELEMENTS += ("postcode", "nummer", "bestandsnaam", "redennietakkoord", "gbavoornaam")


def _pii_of(root: etree._Element) -> set[str]:
    """Personal values of a dossier: names, BSN, birth date, addresses, numbers, file names."""
    values = {
        (el.text or "").strip()
        for name in _PII_ELEMENTS
        for el in root.iter(q(name))
        if len((el.text or "").strip()) >= 4
    }
    return values | set(SAMPLE_PII) & {
        v for v in SAMPLE_PII if v in etree.tostring(root, encoding=str)
    }


def _assert_clean(text: str, root: etree._Element) -> None:
    leaked = [v for v in _pii_of(root) if v in text]
    assert leaked == [], "preview leaks personal data"


def test_sample_preview_counts_items_and_attachments() -> None:
    root = build_dossier()
    p = preview(root)
    toets = p.category("toetsresultaten")
    assert toets.action == Action.SHARED
    assert {i.name: i.count for i in toets.items} == {"toets": 2}
    docs = p.category("bijlagedocs")
    assert docs.attachments == 2
    sizes = [
        len(base64.b64decode(el.text or ""))
        for el in find(root, f"{LL}/overigdocumentlijst").iter(q("bestandsinhoud"))
    ]
    assert docs.attachment_bytes == sum(sizes)
    assert p.category("handelingsplannen").attachments == 1
    assert p.category("onderwijsondersteuning").attachments == 0  # the plan is its own category
    assert p.attachments == 3
    assert {i.name for i in p.category("leerling").items} >= {"bsn", "voornaam", "huisarts"}
    assert "onderwijsondersteuning" not in {i.name for i in p.category("leerling").items}


def test_preview_says_what_happens_to_each_category() -> None:
    root = build_dossier(overdrachtsoort="swv-dossier", overstap="POSWV")
    add(root, LL, "certificaat", "Certificaat")  # vombo: VERBODEN in the sample
    set_category(root, "verzuim", "OPT-UIT")
    set_category(root, "vve", "VERPLICHT")
    p = preview(root)
    assert p.category("vombo").action == Action.REMOVED
    assert p.category("verzuim").action == Action.REMOVED
    assert p.category("vve").action == Action.MISSING
    assert p.category("cijferlijsten").action == Action.SHARED
    minimised = preview(minimise(root).root)
    assert minimised.category("vombo").action == Action.ABSENT
    assert minimised.category("verzuim").action == Action.ABSENT
    assert p.category("verzuim").status == "OPT-UIT"


def test_removed_categories_do_not_count_as_shared_attachments() -> None:
    root = build_dossier()
    set_category(root, "bijlagedocs", "OPT-UIT")
    p = preview(root)
    assert p.category("bijlagedocs").action == Action.REMOVED
    assert p.attachments == 1


def test_default_preview_carries_no_personal_data() -> None:
    root = build_dossier()
    p = preview(root)
    assert p.details is None
    _assert_clean(render_text(p), root)
    _assert_clean(render_text(p, language="en", show_details=True), root)
    _assert_clean(json.dumps(p.as_dict(include_details=True)), root)


@pytest.mark.parametrize("name", ["Voorbeelddossier_OV_POPO_full.xml"])
def test_official_example_preview_carries_no_personal_data(examples_dir: Path, name: str) -> None:
    root = parse_xml((examples_dir / name).read_bytes()).getroot()
    p = preview(root, include_details=True)
    assert len(_pii_of(root)) > 10
    _assert_clean(render_text(p), root)
    _assert_clean(json.dumps(p.as_dict()), root)
    assert p.category("toetsresultaten").items[0].count >= 1


def test_details_are_opt_in_and_separated() -> None:
    root = build_dossier()
    p = preview(root, include_details=True)
    assert p.details is not None
    leerling = next(d for d in p.details if d.key == "leerling")
    assert ("/dossier/huidigeschool/leerling/bsn", "111222333") in {
        (f.path, f.value) for f in leerling.fields
    }
    text = render_text(p, show_details=True)
    head, _, tail = text.partition("DETAILS")
    assert "111222333" not in head and "111222333" in tail
    assert "persoonsgegevens" in tail.splitlines()[0]
    docs = next(d for d in p.details if d.key == "bijlagedocs")
    assert [n for n, _ in docs.attachments] == ["rapport.pdf", "foto.jpg"]


def test_details_never_include_attachment_content() -> None:
    root = build_dossier()
    content = (find(root, f"{LL}/overigdocumentlijst/document/bestandsinhoud").text or "")[:40]
    p = preview(root, include_details=True)
    assert content not in render_text(p, show_details=True)
    assert content not in json.dumps(p.as_dict(include_details=True))


def test_render_rejects_unknown_language() -> None:
    with pytest.raises(ValueError):
        render_text(preview(build_dossier()), language="fr")


# --- CLI -----------------------------------------------------------------------------------------


def _write_sample(tmp_path: Path) -> Path:
    path = tmp_path / "dossier.xml"
    path.write_bytes(sample_xml())
    return path


def test_cli_preview_prints_counts_without_personal_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["preview", str(_write_sample(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "Toetsresultaten" in result.output and "2 × toets" in result.output
    assert not any(v in result.output for v in SAMPLE_PII)


def test_cli_preview_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["preview", "--json", str(_write_sample(tmp_path))])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert "details" not in data
    cats = {c["category"]: c for c in data["categories"]}
    assert cats["toetsresultaten"]["items"] == {"toets": 2}


def test_cli_preview_details_only_on_request(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["preview", "--details", str(_write_sample(tmp_path))])
    assert result.exit_code == 0
    assert "111222333" in result.output


def test_cli_preview_rejects_non_dossier_with_code_only(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_bytes(b"<geheim>Fenna Testdata-Jansen</geheim>")
    result = CliRunner().invoke(main, ["preview", str(path)])
    assert result.exit_code == 1
    assert "OSO-E101" in result.output
    assert "Fenna" not in result.output


def test_preview_without_categorie_uitlevering_reports_no_status() -> None:
    root = build_dossier()
    metadata = find(root, "metadata")
    metadata.remove(find(metadata, "categorie_uitlevering"))
    p = preview(root)
    assert all(c.status is None for c in p.categories)
    assert p.category("toetsresultaten").action == Action.SHARED
    assert p.category("vombo").action == Action.ABSENT


def test_values_outside_their_code_list_are_not_shown() -> None:
    # A LAS that puts a name into a coded field must not make the preview print it.
    root = build_dossier()
    find(root, "metadata/overstap").text = "Fenna Jansen"
    find(root, "overdrachtsoort").text = "BSN 111222333"
    find(root, "metadata/categorie_uitlevering/cat_verzuim").text = "Jansen"
    p = preview(root)
    shown = render_text(p, language="en") + json.dumps(p.as_dict())
    assert "Jansen" not in shown and "111222333" not in shown
    assert p.overstap == p.overdrachtsoort == "(invalid)"
    assert {c.key: c.status for c in p.categories}["verzuim"] == "(invalid)"
