"""Dossier validation against its floor, measured in the same run.

For the official ~175 KB example (``../shared``; skipped with a message when absent) this reports
the median time of:

* the floor: the plain lxml parse of the bytes (no validation can be cheaper);
* the hardened parse (``parse_xml``: limits, DOCTYPE/entity/PI checks);
* ``validate_dossier(..., schema_only=True)``: hardened parse + XSD;
* ``validate_dossier(...)``: hardened parse + XSD + business rules;

and their ratios to the floor, sampled round-robin (one sample of each per round, the median of
the rounds). The issue's target: a 175 KB dossier validates in under 3 ms.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from benchmarks.__main__ import Report, median_time
from oso_gateway.dossier.schema import compiled_schema
from oso_gateway.dossier.validate import validate_dossier
from oso_gateway.security.xmlparse import parse_xml


def _main_checkout(repo: Path) -> Path:
    """In a git worktree ``.git`` is a file naming <main>/.git/worktrees/<x>: ../shared lies
    next to the main checkout, not next to the worktree."""
    git = repo / ".git"
    if git.is_file():
        text = git.read_text(encoding="utf-8").strip()
        gitdir = Path(text.removeprefix("gitdir:").strip())
        if text.startswith("gitdir:") and gitdir.parent.name == "worktrees":
            return gitdir.parent.parent.parent
    return repo


EXAMPLES = (
    _main_checkout(Path(__file__).resolve().parents[1]).parent
    / "shared"
    / "oso-gegevensset-2019.1"
    / "examples"
)
EXAMPLE = EXAMPLES / "Voorbeelddossier_OV_POPO_full.xml"
TARGET_MS = 3.0


def run(report: Report, quick: bool) -> None:
    report.section("dossier validation (official POPO example)")
    if not EXAMPLE.is_file():
        report.line("skipped", "-", f"official example not found at {EXAMPLE}")
        return
    data = EXAMPLE.read_bytes()
    now = datetime.now(UTC)
    repeat = 3 if quick else 9
    plain_parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    compiled_schema()  # compile outside the measurement
    full_report = validate_dossier(data, now=now)
    if not full_report.valid:
        report.line("skipped", "-", "the example does not validate; fix that first")
        return

    # Round-robin, one sample of each per round (as in bench_wss): on a shared machine, load
    # from other processes then hits the floor and the validation alike instead of one of them.
    samples: dict[str, list[float]] = {"floor": [], "hardened": [], "schema": [], "full": []}
    for _ in range(repeat):
        samples["floor"].append(median_time(lambda: etree.fromstring(data, plain_parser), repeat=1))
        samples["hardened"].append(median_time(lambda: parse_xml(data), repeat=1))
        samples["schema"].append(
            median_time(lambda: validate_dossier(data, now=now, schema_only=True), repeat=1)
        )
        samples["full"].append(median_time(lambda: validate_dossier(data, now=now), repeat=1))
    floor, hardened, schema_only, full = (
        statistics.median(samples[name]) for name in ("floor", "hardened", "schema", "full")
    )

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.2f} ms"

    report.line("size", f"{len(data) / 1024:.0f} KB")
    report.line("floor: lxml parse", ms(floor))
    report.line("hardened parse_xml", ms(hardened), f"{hardened / floor:.1f}x floor")
    report.line(
        "validate --schema-only (parse + XSD)", ms(schema_only), f"{schema_only / floor:.1f}x"
    )
    report.line("validate (parse + XSD + rules)", ms(full), f"{full / floor:.1f}x floor")
    report.line("  of which XSD", ms(schema_only - hardened))
    report.line("  of which rules", ms(full - schema_only))
    verdict = "meets" if full * 1000 < TARGET_MS else "MISSES"
    report.line(f"target < {TARGET_MS:.0f} ms for full validation", verdict, ms(full))
