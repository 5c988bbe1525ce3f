"""``oso-gateway validate``: exit codes, human and JSON output, stdin, and no values in output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from test_schema_mutations import DOSSIER_NS, instances

from oso_gateway.cli import main
from oso_gateway.dossier.schema import schema_locations

N = f"{{{DOSSIER_NS}}}"
SECRET = "Jansen-Geheim"

GENERATED = dict(instances(schema_locations()[0], variants=1))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _broken(data: bytes, name: str, value: str) -> bytes:
    root = etree.fromstring(data)
    element = root.find(f".//{N}{name}")
    assert element is not None
    element.text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.fixture
def example(examples_dir: Path) -> Path:
    return examples_dir / "Voorbeelddossier_OV_VOVO_opt_out.xml"


def test_valid_official_dossiers_exit_0(runner: CliRunner, examples_dir: Path) -> None:
    files = sorted(str(p) for p in examples_dir.glob("*.xml"))
    result = runner.invoke(main, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count(": OK") == len(files)


def test_one_invalid_file_makes_the_run_exit_1(
    runner: CliRunner, example: Path, tmp_path: Path
) -> None:
    bad = _write(tmp_path / "bad.xml", _broken(example.read_bytes(), "geboortedatum", SECRET))
    result = runner.invoke(main, ["validate", str(example), bad])
    assert result.exit_code == 1
    assert f"{example}: OK" in result.output
    assert f"{bad}: INVALID" in result.output
    assert "OSO-XSD-VALUE /dossier/huidigeschool/leerling/geboortedatum" in result.output
    assert SECRET not in result.output


def test_finding_lines_show_line_column_code_path_message(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = _write(tmp_path / "bad.xml", _broken(GENERATED["dossier-max0"], "brincode", SECRET))
    result = runner.invoke(main, ["validate", "--schema-only", bad])
    assert result.exit_code == 1
    finding_line = result.output.splitlines()[1].split()
    line, column = finding_line[0].split(":")
    assert int(line) > 0 and column == "-"  # libxml2 reports no column for schema errors
    assert finding_line[1:3] == ["OSO-XSD-VALUE", "/dossier/huidigeschool/brincode"]
    assert "pattern" in result.output and SECRET not in result.output


def test_missing_file_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["validate", str(tmp_path / "absent.xml")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_no_file_argument_is_a_usage_error(runner: CliRunner) -> None:
    assert runner.invoke(main, ["validate"]).exit_code == 2


def test_unknown_option_is_a_usage_error(runner: CliRunner) -> None:
    assert runner.invoke(main, ["validate", "--frobnicate", "x.xml"]).exit_code == 2


def test_stdin_is_read_for_dash(runner: CliRunner, example: Path) -> None:
    result = runner.invoke(main, ["validate", "-"], input=example.read_bytes())
    assert result.exit_code == 0
    assert result.output.startswith("-: OK")


def test_schema_only_skips_business_rules(runner: CliRunner, example: Path, tmp_path: Path) -> None:
    rule_broken = _write(
        tmp_path / "rule.xml", _broken(example.read_bytes(), "standaardversie", "2018.1")
    )
    assert runner.invoke(main, ["validate", rule_broken]).exit_code == 1
    assert runner.invoke(main, ["validate", "--schema-only", rule_broken]).exit_code == 0


def test_json_output_lists_every_file(runner: CliRunner, example: Path, tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.xml", _broken(example.read_bytes(), "datum", SECRET))
    result = runner.invoke(main, ["validate", "--json", str(example), bad])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["valid"] is False
    assert [f["file"] for f in document["files"]] == [str(example), bad]
    assert [f["valid"] for f in document["files"]] == [True, False]
    finding = document["files"][1]["findings"][0]
    assert finding["code"] == "OSO-XSD-VALUE"
    assert finding["path"] == "/dossier/metadata/datum"
    assert isinstance(finding["line"], int)
    assert SECRET not in result.output


def test_dutch_messages_on_request(runner: CliRunner, tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.xml", _broken(GENERATED["dossier-max0"], "tehuis", SECRET))
    result = runner.invoke(main, ["validate", "--schema-only", "--lang", "nl", bad])
    assert result.exit_code == 1
    assert "ONGELDIG" in result.output and "Voldoet niet aan het OSO-schema" in result.output


def test_not_well_formed_file_reports_the_parser_code(runner: CliRunner, tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.xml", b"<dossier><leerling>" + SECRET.encode() + b"</dossier>")
    result = runner.invoke(main, ["validate", bad])
    assert result.exit_code == 1
    assert "OSO-E201" in result.output and SECRET not in result.output


def test_other_root_passes_schema_only_but_not_full_validation(
    runner: CliRunner, tmp_path: Path
) -> None:
    leerling = _write(tmp_path / "leerling.xml", GENERATED["leerling-max0"])
    assert runner.invoke(main, ["validate", "--schema-only", leerling]).exit_code == 0
    result = runner.invoke(main, ["validate", leerling])
    assert result.exit_code == 1 and "OSO-DOSSIER-ROOT" in result.output
