"""``oso-gateway generate``: write synthetic OSO dossiers (test data, no real pupils)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from oso_gateway.dossier.generator import (
    DEMO_SCHOOLS,
    OVERSTAP_KINDS,
    demo_school,
    generate_dossier,
)

_SCHOOL_CODES = tuple(s.brin + s.vestiging for s in DEMO_SCHOOLS)


@click.command("generate")
@click.option(
    "--overstap",
    type=click.Choice(OVERSTAP_KINDS),
    required=True,
    help="Kind of transfer: POPO, POVO, VOVO, or POSWV/VOSWV (to a samenwerkingsverband).",
)
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Dossier i is generated with seed SEED+i; the same seed gives identical files.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    required=True,
    help="Directory to write the dossiers to (created if missing).",
)
@click.option(
    "--attachments-kb",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Total size of the attached ZIP files per dossier in KiB (0: no attachments). "
    "10 gives dossiers of about 30 KB, 115 about 175 KB.",
)
@click.option(
    "--marker",
    default=None,
    help="Text appended to the pupil's names, to check in tests that names never leak.",
)
@click.option(
    "--school",
    type=click.Choice(_SCHOOL_CODES),
    default=None,
    help="Sending demo school (BRIN + vestiging); default: the first of the right sector.",
)
@click.option(
    "--opt-out/--no-opt-out",
    default=None,
    help="Opt out of every optional category, or of none (default: decided by the seed).",
)
@click.option(
    "--onderwijsnummer",
    is_flag=True,
    help="Identify the pupils by an onderwijsnummer instead of a BSN.",
)
def generate(
    overstap: str,
    count: int,
    seed: int,
    out: Path,
    attachments_kb: int,
    marker: str | None,
    school: str | None,
    opt_out: bool | None,
    onderwijsnummer: bool,
) -> None:
    """Write COUNT synthetic dossiers to OUT as dossier-<overstap>-<seed>.xml."""
    sending = demo_school(school) if school else None
    if sending is not None and overstap[:2] != sending.sector:
        raise click.BadParameter(
            f"{overstap} needs a sending school of sector {overstap[:2]}", param_hint="--school"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create {out}: {exc.strerror}") from exc
    today = date.today()
    step = max(1, count // 10)
    for index in range(count):
        dossier_seed = seed + index
        data = generate_dossier(
            overstap=overstap,
            seed=dossier_seed,
            now=today,
            attachments_kb=attachments_kb,
            marker=marker,
            sending_school=sending,
            opt_out=opt_out,
            onderwijsnummer=onderwijsnummer,
        )
        # The file name carries only the kind and the seed: never pupil data.
        target = out / f"dossier-{overstap}-{dossier_seed}.xml"
        try:
            target.write_bytes(data)
        except OSError as exc:
            raise click.ClickException(f"cannot write {target}: {exc.strerror}") from exc
        if count >= 20 and (index + 1) % step == 0:
            click.echo(f"generated {index + 1}/{count}", err=True)
    click.echo(f"wrote {count} {overstap} dossier(s) to {out}")


def register(group: click.Group) -> None:
    group.add_command(generate)
