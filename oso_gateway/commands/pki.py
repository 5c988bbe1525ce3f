"""`oso-gateway pki …`: the development PKI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from oso_gateway.security.pki import build_dev_pki


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            "use ISO 8601, e.g. 2026-01-01T00:00:00Z", param_hint="--now"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group("pki")
def pki_group() -> None:
    """Development PKI (certificates for local testing only)."""


@pki_group.command("init-dev")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("certs/dev"),
    show_default=True,
    help="Directory to write the development PKI into.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--now", "now_text", metavar="ISO", help="Generation time (default: the clock).")
def init_dev(out: Path, force: bool, now_text: str | None) -> None:
    """Generate the development PKI: CAs, school gateways, TLS, revoked/expired examples, CRLs.

    DEVELOPMENT ONLY: the private keys are written unencrypted and are meant to be committed.
    """
    now = _parse_now(now_text)
    out.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in out.iterdir() if p.name.endswith(".pem") or p.suffix == ".toml"]
    if existing and not force:
        raise click.UsageError(f"{out} already holds a PKI ({len(existing)} files); use --force")
    click.echo("generating RSA keys (this takes a little while)…", err=True)
    pki = build_dev_pki(now=now)
    for name, data in sorted(pki.files.items()):
        path = out / name
        path.write_bytes(data)
        if name.endswith(".key.pem"):
            path.chmod(0o600)
    click.echo(f"wrote {len(pki.files)} files to {out} (development only; see {out}/README.md)")


def register(group: click.Group) -> None:
    group.add_command(pki_group)
