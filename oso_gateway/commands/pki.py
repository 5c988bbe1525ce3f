"""`oso-gateway pki …`: the development PKI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import click

from oso_gateway.errors import GatewayError
from oso_gateway.security import pki
from oso_gateway.security.keys import (
    load_certificate,
    load_certificates,
    load_crl,
    load_private_key,
)
from oso_gateway.security.trust import Purpose, TrustConfig, verify_certificate


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
    dev = pki.build_dev_pki(now=now)
    for name, data in sorted(dev.files.items()):
        path = out / name
        path.write_bytes(data)
        if name.endswith(".key.pem"):
            path.chmod(0o600)
    click.echo(f"wrote {len(dev.files)} files to {out} (development only; see {out}/README.md)")


@pki_group.command("refresh-crls")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("certs/dev"),
    show_default=True,
)
@click.option("--now", "now_text", metavar="ISO", help="Issue time (default: the clock).")
def refresh_crls(directory: Path, now_text: str | None) -> None:
    """Re-issue the development CRLs (same revocations, valid a year) keeping all keys."""
    now = _parse_now(now_text)
    pairs = (
        (pki.ROOT_CERT_FILE, pki.ROOT_KEY_FILE, pki.ROOT_CRL_FILE),
        (pki.ISSUING_CERT_FILE, pki.ISSUING_KEY_FILE, pki.ISSUING_CRL_FILE),
    )
    try:
        fresh = {}
        for cert_name, key_name, crl_name in pairs:
            issuer = pki.Authority(
                certificate=load_certificate((directory / cert_name).read_bytes()),
                key=load_private_key((directory / key_name).read_bytes()),
            )
            old = load_crl((directory / crl_name).read_bytes())
            fresh[crl_name] = pki.crl_pem(pki.reissue_crl(old, issuer=issuer, now=now))
    except (OSError, ValueError, GatewayError) as exc:
        raise click.ClickException(f"cannot refresh the CRLs in {directory}: {exc}") from None
    for name, data in fresh.items():
        (directory / name).write_bytes(data)
    click.echo(f"re-issued {', '.join(fresh)} in {directory} (valid for {pki.CRL_DAYS} days)")


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@pki_group.command("verify")
@click.argument("cert_file", type=_FILE)
@click.option("--anchor", "anchors", type=_FILE, multiple=True, required=True, help="Root CA(s).")
@click.option("--intermediate", "intermediates", type=_FILE, multiple=True, help="Issuing CAs.")
@click.option("--crl", "crls", type=_FILE, multiple=True, help="CRL files (PEM or DER).")
@click.option("--no-require-crl", is_flag=True, help="Do not fail on a missing or stale CRL.")
@click.option(
    "--purpose",
    type=click.Choice(["signing", "encryption", "client", "server"]),
    default="signing",
    show_default=True,
)
@click.option("--now", "now_text", metavar="ISO", help="Verification time (default: the clock).")
def verify(
    cert_file: Path,
    anchors: tuple[Path, ...],
    intermediates: tuple[Path, ...],
    crls: tuple[Path, ...],
    no_require_crl: bool,
    purpose: str,
    now_text: str | None,
) -> None:
    """Check a certificate the way the gateway does; exit 1 with the error code when rejected.

    Further certificates in CERT_FILE after the first are used as intermediates.
    """
    now = _parse_now(now_text)
    try:
        cert, *sent = load_certificates(cert_file.read_bytes())
        trust = TrustConfig.from_pem(
            anchors=[p.read_bytes() for p in anchors],
            intermediates=[p.read_bytes() for p in intermediates],
            crls=[p.read_bytes() for p in crls],
            require_crl=not no_require_crl,
        )
        verified = verify_certificate(
            cert,
            trust=trust,
            now=now,
            purpose=cast(Purpose, purpose),
            extra_intermediates=sent,
        )
    except GatewayError as exc:
        click.echo(f"REJECTED {exc.code}: {exc.detail}")
        raise SystemExit(1) from None
    click.echo(f"OK {purpose}: OIN {verified.oin or '-'}, sha256:{verified.fingerprint_sha256}")
    click.echo(f"not after {verified.not_after.isoformat()}")
    for depth, c in enumerate(verified.chain):
        click.echo(f"  {depth}: {c.subject.rfc4514_string()}")


def register(group: click.Group) -> None:
    group.add_command(pki_group)
