"""``oso-gateway validate FILE...``: check OSO 2019 dossiers against the schema and the rules.

Exit status: 0 every file is valid, 1 at least one is not, 2 usage error (unknown option,
missing or unreadable file). Output never contains a value from a dossier: findings give line,
column, code, element path and a message about the rule.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from oso_gateway.dossier.findings import Finding
from oso_gateway.dossier.validate import ValidationReport, validate_dossier

STDIN = "-"


def _read(name: str) -> bytes:
    if name == STDIN:
        return sys.stdin.buffer.read()
    path = Path(name)
    if not path.is_file():
        raise click.UsageError(f"no such file: {name}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.UsageError(f"cannot read {name}: {exc.strerror}") from None


def _line(finding: Finding, lang: str) -> str:
    where = f"{finding.line or '-'}:{finding.column or '-'}"
    message = finding.message_nl if lang == "nl" else finding.message_en
    level = "" if finding.severity == "error" else f" ({finding.severity})"
    return f"  {where} {finding.code}{level} {finding.path} {message}"


def _human(name: str, report: ValidationReport, lang: str) -> str:
    verdict = "OK" if report.valid else ("ONGELDIG" if lang == "nl" else "INVALID")
    lines = [f"{name}: {verdict}"]
    lines += [_line(f, lang) for f in report.findings]
    return "\n".join(lines)


@click.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document for all files.")
@click.option("--schema-only", is_flag=True, help="Check the XSD only, not the business rules.")
@click.option(
    "--lang", type=click.Choice(["nl", "en"]), default="en", show_default=True, help="Language."
)
def validate_command(files: tuple[str, ...], as_json: bool, schema_only: bool, lang: str) -> None:
    """Validate OSO gegevensset 2019.1 dossiers (FILE may be - for standard input)."""
    if list(files).count(STDIN) > 1:
        raise click.UsageError("standard input (-) can be given only once")
    inputs = [(name, _read(name)) for name in files]  # all usage errors before any output
    now = datetime.now(UTC)
    results: list[tuple[str, ValidationReport]] = []
    for name, data in inputs:
        results.append((name, validate_dossier(data, now=now, schema_only=schema_only)))
    if as_json:
        document = {
            "valid": all(r.valid for _, r in results),
            "schema_only": schema_only,
            "files": [{"file": name, **report.as_dict()} for name, report in results],
        }
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        for name, report in results:
            click.echo(_human(name, report, lang))
    if not all(report.valid for _, report in results):
        raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(validate_command)
