"""The synthetic dossier generator: validity, determinism, realism, attachments, CLI."""

from __future__ import annotations

import base64
import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from oso_gateway.cli import main
from oso_gateway.dossier import categories
from oso_gateway.dossier.generator import (
    DEMO_SCHOOLS,
    NS,
    OVERSTAP_KINDS,
    TEST_BSN_MAX,
    TEST_BSN_MIN,
    TEST_ONDERWIJSNUMMER_MAX,
    TEST_ONDERWIJSNUMMER_MIN,
    demo_school,
    generate_dossier,
    generate_dossier_of_size,
)
from oso_gateway.dossier.rules import bsn_is_valid, onderwijsnummer_is_valid
from oso_gateway.dossier.validate import validate_dossier

NOW = date(2026, 11, 29)
#: Dates spread over a school year: early autumn, just before/after the eindtoets, summer.
NOWS = (date(2026, 9, 2), date(2027, 1, 15), date(2027, 3, 1), date(2027, 5, 20), date(2027, 7, 30))


def _at_noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def validation_errors(data: bytes, day: date) -> list[str]:
    """Errors of the project's validator (hardened parse, XSD, business rules); [] when valid."""
    report = validate_dossier(data, now=_at_noon(day))
    return [f"{f.code} at {f.path}" for f in report.errors]


def q(local: str) -> str:
    return f"{{{NS}}}{local}"


def leerling(data: bytes) -> etree._Element:
    found = etree.fromstring(data).find(f"{q('huidigeschool')}/{q('leerling')}")
    assert found is not None
    return found


def texts(el: etree._Element, local: str) -> list[str]:
    return [e.text or "" for e in el.iter(q(local))]


@pytest.mark.parametrize("opt_out", [None, True, False])
@pytest.mark.parametrize("kind", OVERSTAP_KINDS)
def test_every_overstap_kind_generates_a_valid_dossier(kind: str, opt_out: bool | None) -> None:
    data = generate_dossier(overstap=kind, seed=11, now=NOW, attachments_kb=4, opt_out=opt_out)
    assert validation_errors(data, NOW) == []
    assert texts(etree.fromstring(data), "overstap") == [kind]


def test_two_hundred_seeds_over_the_school_year_all_validate() -> None:
    failures = []
    for seed in range(200):
        kind = OVERSTAP_KINDS[seed % len(OVERSTAP_KINDS)]
        day = NOWS[seed % len(NOWS)]
        data = generate_dossier(overstap=kind, seed=seed, now=day)
        errors = validation_errors(data, day)
        if errors:
            failures.append((kind, seed, day, errors[:3]))
    assert failures == []


def test_same_seed_gives_byte_identical_dossiers() -> None:
    first = generate_dossier(overstap="VOVO", seed=42, now=NOW, attachments_kb=8)
    second = generate_dossier(overstap="VOVO", seed=42, now=NOW, attachments_kb=8)
    assert first == second


def test_different_seeds_give_different_pupils() -> None:
    pupils = set()
    for seed in range(25):
        ll = leerling(generate_dossier(overstap="POVO", seed=seed, now=NOW))
        pupils.add(
            (
                tuple(texts(ll, "voornaam")[:1]),
                texts(ll, "achternaam")[0],
                texts(ll, "geboortedatum")[0],
                texts(ll, "bsn")[0],
            )
        )
    assert len(pupils) == 25


def test_pupil_data_does_not_depend_on_the_attachment_size() -> None:
    small = leerling(generate_dossier(overstap="POPO", seed=5, now=NOW, attachments_kb=1))
    large = leerling(generate_dossier(overstap="POPO", seed=5, now=NOW, attachments_kb=50))
    for field in ("voornaam", "achternaam", "geboortedatum", "bsn", "straat"):
        assert texts(small, field) == texts(large, field)


def test_bsns_pass_the_eleven_test_and_lie_in_the_test_range() -> None:
    for seed in range(100):
        kind = ("POPO", "POVO", "VOVO")[seed % 3]
        ll = leerling(generate_dossier(overstap=kind, seed=seed, now=NOW))
        (bsn,) = texts(ll, "bsn")
        assert bsn_is_valid(bsn)
        assert TEST_BSN_MIN <= int(bsn) <= TEST_BSN_MAX


def test_onderwijsnummer_replaces_the_bsn_on_request_and_passes_its_check() -> None:
    for seed in range(40):
        data = generate_dossier(overstap="POPO", seed=seed, now=NOW, onderwijsnummer=True)
        ll = leerling(data)
        assert texts(ll, "bsn") == []
        (number,) = texts(ll, "onderwijsnummer")
        assert onderwijsnummer_is_valid(number)
        assert TEST_ONDERWIJSNUMMER_MIN <= int(number) <= TEST_ONDERWIJSNUMMER_MAX
        assert not bsn_is_valid(number)
        if seed < 5:
            assert validation_errors(data, NOW) == []


@pytest.mark.parametrize("onderwijsnummer", [False, True])
@pytest.mark.parametrize("kind", ["POSWV", "VOSWV"])
def test_swv_dossiers_carry_no_bsn_or_onderwijsnummer(kind: str, onderwijsnummer: bool) -> None:
    data = generate_dossier(overstap=kind, seed=6, now=NOW, onderwijsnummer=onderwijsnummer)
    ll = leerling(data)
    assert texts(ll, "bsn") == [] and texts(ll, "onderwijsnummer") == []
    assert etree.fromstring(data).findtext(q("overdrachtsoort")) == "swv-dossier"


def test_marker_appears_in_every_name_field_of_the_pupil() -> None:
    marker = "QQXMARKERQQ"
    ll = leerling(generate_dossier(overstap="POVO", seed=3, now=NOW, marker=marker))
    gba = ll.find(q("gba"))
    assert gba is not None
    fields = [(ll, "voornaam"), (ll, "roepnaam"), (ll, "achternaam")]
    fields += [(gba, "gbavoornaam"), (gba, "gbaachternaam")]
    for parent, field in fields:
        assert marker in (parent.findtext(q(field)) or ""), field
    unmarked = leerling(generate_dossier(overstap="POVO", seed=3, now=NOW))
    assert marker not in etree.tostring(unmarked).decode()


def _attachments(data: bytes) -> list[tuple[str, bytes]]:
    root = etree.fromstring(data)
    out = []
    for doc in root.iter(q("document")):
        name = doc.findtext(q("bestandsnaam"))
        content = doc.findtext(q("bestandsinhoud"))
        assert name and content
        out.append((name, base64.b64decode(content, validate=True)))
    return out


@pytest.mark.parametrize("kb", [3, 64, 700])
def test_attachments_are_real_zip_files_of_about_the_requested_total_size(kb: int) -> None:
    data = generate_dossier(overstap="POVO", seed=8, now=NOW, attachments_kb=kb)
    attachments = _attachments(data)
    assert attachments
    for name, raw in attachments:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            assert archive.testzip() is None  # CRCs check out
            assert archive.namelist() == [name]
    total = sum(len(raw) for _, raw in attachments)
    assert abs(total - kb * 1024) <= max(0.02 * kb * 1024, 64 * len(attachments))


def test_attachment_bytes_are_incompressible_so_the_size_is_real() -> None:
    data = generate_dossier(overstap="VOVO", seed=2, now=NOW, attachments_kb=32)
    raw = b"".join(r for _, r in _attachments(data))
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x", raw)
    assert len(packed.getvalue()) > 0.95 * len(raw)


def test_zero_attachment_size_gives_a_dossier_without_documents() -> None:
    for seed in range(10):
        data = generate_dossier(overstap="POSWV", seed=seed, now=NOW, attachments_kb=0)
        assert b"<document>" not in data
        assert validation_errors(data, NOW) == []


def test_opt_out_removes_every_optional_category_and_marks_it() -> None:
    data = generate_dossier(overstap="VOVO", seed=4, now=NOW, attachments_kb=0, opt_out=True)
    root = etree.fromstring(data)
    statuses = categories.declared_statuses(root)
    opted = [k for k, v in statuses.items() if v == categories.Uitlevering.OPT_UIT]
    assert "verzuim" in opted and "toetsresultaten" in opted
    assert categories.Uitlevering.OPTIONEEL not in statuses.values()
    for key in opted:
        assert not categories.is_present(root, categories.BY_KEY[key]), key


def test_attachments_keep_the_bijlagedocs_category_even_with_opt_out() -> None:
    data = generate_dossier(overstap="VOVO", seed=4, now=NOW, attachments_kb=20, opt_out=True)
    statuses = categories.declared_statuses(etree.fromstring(data))
    assert statuses["bijlagedocs"] == categories.Uitlevering.OPTIONEEL
    assert _attachments(data)


def test_official_kinds_use_the_official_forbidden_categories() -> None:
    expected = {"POPO": {"vombo"}, "POVO": {"vve", "vombo"}, "VOVO": {"vve"}}
    for kind, forbidden in expected.items():
        statuses = categories.declared_statuses(
            etree.fromstring(generate_dossier(overstap=kind, seed=1, now=NOW, opt_out=False))
        )
        verboden = {k for k, v in statuses.items() if v == categories.Uitlevering.VERBODEN}
        assert verboden == forbidden, kind


def test_no_date_in_the_past_tense_lies_after_now() -> None:
    for seed in range(30):
        day = NOWS[seed % len(NOWS)]
        root = etree.fromstring(
            generate_dossier(overstap=OVERSTAP_KINDS[seed % 5], seed=seed, now=day)
        )
        for field in ("datum", "inzagedatum", "geboortedatum", "afnamedatum", "datum_afname"):
            for value in texts(root, field):
                assert date.fromisoformat(value) <= day, (field, value, day)


def test_sending_school_is_configurable_and_must_match_the_sector() -> None:
    school = demo_school("02CD00")
    root = etree.fromstring(
        generate_dossier(overstap="POPO", seed=1, now=NOW, sending_school=school)
    )
    assert root.findtext(f"{q('huidigeschool')}/{q('brincode')}") == "02CD"
    assert root.findtext(f"{q('huidigeschool')}/{q('naam')}") == school.naam
    vo_school = next(s for s in DEMO_SCHOOLS if s.sector == "VO")
    with pytest.raises(ValueError, match="sector"):
        generate_dossier(overstap="POPO", seed=1, now=NOW, sending_school=vo_school)


def test_unknown_overstap_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="overstap"):
        generate_dossier(overstap="XXYY", seed=1, now=NOW)


def test_now_may_be_a_datetime() -> None:
    as_date = generate_dossier(overstap="POVO", seed=9, now=NOW)
    as_datetime = generate_dossier(overstap="POVO", seed=9, now=_at_noon(NOW))
    assert as_date == as_datetime


@pytest.mark.parametrize("target", [30_000, 175_000, 2_000_000])
def test_dossier_of_size_hits_the_target_size(target: int) -> None:
    data = generate_dossier_of_size(target, now=NOW, seed=3)
    assert abs(len(data) - target) <= 0.03 * target
    assert validation_errors(data, NOW) == []


def test_default_dossier_without_attachments_is_tens_of_kilobytes_at_most() -> None:
    sizes = [len(generate_dossier(overstap="POVO", seed=s, now=NOW)) for s in range(20)]
    assert 5_000 < min(sizes) and max(sizes) < 60_000


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_writes_count_files_named_without_pupil_data_and_exits_0(tmp_path: Path) -> None:
    marker = "QQXCLIMARKQQ"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            *("generate", "--overstap", "VOVO", "--count", "3", "--seed", "10"),
            *("--out", str(out), "--attachments-kb", "2", "--marker", marker),
        ],
    )
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"dossier-VOVO-{s}.xml" for s in (10, 11, 12)]
    for f in files:
        data = f.read_bytes()
        assert marker.encode() in data  # the names carry the marker
        assert validation_errors(data, date.today()) == []
        bsn = texts(leerling(data), "bsn")[0]
        assert bsn not in f.name
    assert marker not in result.output


def test_cli_reports_progress_for_large_counts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            *("generate", "--overstap", "POPO", "--count", "20", "--attachments-kb", "0"),
            *("--out", str(tmp_path)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("dossier-POPO-*.xml"))) == 20
    assert "generated 20/20" in result.output


def test_cli_same_seed_writes_identical_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = CliRunner().invoke(
            main, ["generate", "--overstap", "POSWV", "--seed", "77", "--out", str(tmp_path / name)]
        )
        assert result.exit_code == 0, result.output
    a = (tmp_path / "a" / "dossier-POSWV-77.xml").read_bytes()
    assert a == (tmp_path / "b" / "dossier-POSWV-77.xml").read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ["--overstap", "XXYY"],
        ["--overstap", "POVO", "--count", "0"],
        ["--overstap", "POPO", "--school", "01AB00"],
        ["--overstap", "POVO", "--attachments-kb", "-1"],
    ],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["generate", *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_rare_realistic_variants_occur_and_validate() -> None:
    """Secret addresses, deceased parents and opt-outs turn up now and then, and stay valid."""
    wanted = {
        b"<adresgeheim>true</adresgeheim>": None,
        b"<overleden>true</overleden>": None,
        b"<cat_verzuim>OPT-UIT</cat_verzuim>": None,
    }
    for seed in range(400):
        data = generate_dossier(overstap="VOVO", seed=seed, now=NOW)
        for needle, found in wanted.items():
            if found is None and needle in data:
                wanted[needle] = data
    for needle, data in wanted.items():
        assert data is not None, needle
        assert validation_errors(data, NOW) == []
    secret = leerling(wanted[b"<adresgeheim>true</adresgeheim>"] or b"")
    assert secret.find(q("adreslijst")) is None


def test_cli_reports_an_unwritable_output_directory_without_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(
        main, ["generate", "--overstap", "POVO", "--out", str(blocker / "sub")]
    )
    assert result.exit_code == 1
    assert "cannot create" in result.output
    assert "Traceback" not in result.output
