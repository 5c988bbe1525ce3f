"""`oso-gateway seal` and `oso-gateway open`: one WS-Security message, by hand.

``seal`` signs and encrypts a payload for one recipient; ``open`` decrypts and verifies a message
addressed to one of our identities, checking the sender's certificate against the trust anchors.
Both are thin: they read files, call ``oso_gateway.security.wss`` and write the result.

Exit status: 0 done, 1 the message (or payload) was rejected, 2 usage error (including a key,
certificate or CRL file that cannot be used). A rejection prints ``rejected: OSO-Exxx <public
message>`` on stderr and never any payload data; ``--verbose`` adds our log's ``detail`` (which by
the house rules names codes, paths, sizes and fingerprints only).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from cryptography import x509
from lxml import etree

from oso_gateway.commands.db import config_option, settings_or_exit
from oso_gateway.config import Settings
from oso_gateway.errors import GatewayError, LocalError
from oso_gateway.runtime import load_identities, load_trust
from oso_gateway.security import wss
from oso_gateway.security.keys import load_certificates, load_private_key, spki
from oso_gateway.security.trust import TrustConfig, oin_of
from oso_gateway.security.xmlparse import parse_xml

KEY_TRANSPORTS = {"sha256": wss.KT_RSA_OAEP, "mgf1p": wss.KT_RSA_OAEP_MGF1P}

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_INPUT = click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
_OUTPUT = click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path)
_VERBOSE = click.option(
    "--verbose", "-v", is_flag=True, help="On rejection also print the detail our log records."
)


# --- reading and writing ------------------------------------------------------------------------


def _read_input(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    return path.read_bytes()


def _write_output(path: Path | None, data: bytes) -> None:
    if path is None or str(path) == "-":
        click.echo(data, nl=False)
        return
    path.write_bytes(data)


def _bad(param: str, exc: GatewayError) -> NoReturn:
    raise click.BadParameter(f"{exc.code} {exc.detail}", param_hint=param)


def _identity(key_file: Path, cert_file: Path, *, key_param: str, cert_param: str) -> wss.Identity:
    """One of our identities from a key file and a certificate file (leaf first, then chain)."""
    try:
        key = load_private_key(key_file.read_bytes())
    except GatewayError as exc:
        _bad(key_param, exc)
    try:
        leaf, *chain = load_certificates(cert_file.read_bytes())
        oin = oin_of(leaf)
    except GatewayError as exc:
        _bad(cert_param, exc)
    if oin is None:
        raise click.BadParameter(
            f"{cert_file}: the certificate carries no OIN (subject serialNumber)",
            param_hint=cert_param,
        )
    if spki(leaf.public_key()) != spki(key.public_key()):
        raise click.BadParameter(
            f"{cert_file} does not belong to the private key {key_file}", param_hint=cert_param
        )
    return wss.Identity(oin=oin, private_key=key, certificate=leaf, chain=tuple(chain))


def _configured(config_file: Path) -> tuple[tuple[wss.Identity, ...], Settings]:
    """(identities, settings) from the configuration file; a problem there is a usage error."""
    settings = settings_or_exit(config_file)
    try:
        return load_identities(settings), settings
    except GatewayError as exc:
        _bad("--config", exc)


def _recipient_certificate(path: Path) -> x509.Certificate:
    try:
        return load_certificates(path.read_bytes())[0]
    except GatewayError as exc:
        _bad("--recipient-cert", exc)


def _reject(exc: GatewayError, *, verbose: bool, as_json: bool) -> NoReturn:
    """Report a rejection (code + public message only, unless --verbose) and exit 1."""
    word = "error" if isinstance(exc, LocalError) else "rejected"
    # e.g. SignerUntrusted (E221) wraps the trust check's own code (E304 revoked, E305 no CRL, …)
    cause = getattr(exc, "cause_code", "") or None
    click.echo(
        f"{word}: {exc.code} {exc.public_message}" + (f" (cause: {cause})" if cause else ""),
        err=True,
    )
    if verbose:
        click.echo(f"detail: {exc.detail}", err=True)
    if as_json:
        report = {"code": exc.code, "message": exc.public_message}
        if cause:
            report["cause_code"] = cause
        click.echo(json.dumps(report))
    sys.exit(1)


# --- seal ---------------------------------------------------------------------------------------


@click.command("seal")
@click.option(
    "--payload", "payload_file", type=_INPUT, required=True, help="Payload XML ('-': stdin)."
)
@click.option("--sender-key", type=_FILE, help="Our private key (PEM).")
@click.option("--sender-cert", type=_FILE, help="Our certificate (PEM; intermediates may follow).")
@click.option(
    "--from-oin", help="With --config: which configured identity signs (default: the only one)."
)
@click.option(
    "--recipient-cert", type=_FILE, required=True, help="The recipient's encryption certificate."
)
@click.option("--to", "to", required=True, help="wsa:To: the recipient's endpoint URL.")
@click.option("--action", required=True, help="wsa:Action URI.")
@click.option(
    "--oaep",
    type=click.Choice(sorted(KEY_TRANSPORTS)),
    default="sha256",
    show_default=True,
    help="RSA-OAEP variant for the key transport (mgf1p for peers that know only rsa-oaep-mgf1p).",
)
@click.option("--message-id", help="wsa:MessageID (default: a fresh urn:uuid).")
@click.option("--relates-to", help="wsa:RelatesTo (replies).")
@click.option(
    "--out", "out_file", type=_OUTPUT, help="Write the sealed message here (default: stdout)."
)
@config_option
@_VERBOSE
def seal_command(
    payload_file: Path,
    sender_key: Path | None,
    sender_cert: Path | None,
    from_oin: str | None,
    recipient_cert: Path,
    to: str,
    action: str,
    oaep: str,
    message_id: str | None,
    relates_to: str | None,
    out_file: Path | None,
    config_file: Path | None,
    verbose: bool,
) -> None:
    """Sign and encrypt a payload for one recipient (WS-Security, Digikoppeling 2W-be-SE)."""
    sender = _sender(sender_key, sender_cert, from_oin, config_file)
    recipient = _recipient_certificate(recipient_cert)
    try:
        payload = parse_xml(_read_input(payload_file)).getroot()
        sealed = wss.seal(
            payload,
            sender=sender,
            recipient_certificate=recipient,
            to=to,
            action=action,
            message_id=message_id or f"urn:uuid:{uuid.uuid4()}",
            relates_to=relates_to,
            key_transport=KEY_TRANSPORTS[oaep],
            now=datetime.now(UTC),
        )
    except GatewayError as exc:
        _reject(exc, verbose=verbose, as_json=False)
    _write_output(out_file, sealed.data)


def _sender(
    key_file: Path | None, cert_file: Path | None, from_oin: str | None, config_file: Path | None
) -> wss.Identity:
    """The signing identity: from --sender-key/--sender-cert, else from the configuration."""
    if key_file is not None or cert_file is not None:
        if key_file is None or cert_file is None:
            raise click.UsageError("--sender-key and --sender-cert go together")
        return _identity(key_file, cert_file, key_param="--sender-key", cert_param="--sender-cert")
    if config_file is None:
        raise click.UsageError("give --sender-key and --sender-cert (or --config)")
    identities, _ = _configured(config_file)
    chosen = [i for i in identities if from_oin is None or i.oin == from_oin]
    if len(chosen) != 1:
        known = ", ".join(i.oin for i in identities) or "none"
        raise click.UsageError(
            f"the configuration holds identities {known}: choose one with --from-oin"
            if len(chosen) > 1
            else f"no configured identity {from_oin or ''} (configured: {known})"
        )
    return chosen[0]


# --- open ---------------------------------------------------------------------------------------


@click.command("open")
@click.argument("message_file", type=_INPUT)
@click.option("--key", "key_files", type=_FILE, multiple=True, help="Our private key (repeatable).")
@click.option(
    "--cert", "cert_files", type=_FILE, multiple=True, help="Our certificate, one per --key."
)
@click.option("--trust", "anchor_files", type=_FILE, multiple=True, help="Trust anchor (root CA).")
@click.option("--intermediate", "intermediate_files", type=_FILE, multiple=True, help="Issuing CA.")
@click.option("--crl", "crl_files", type=_FILE, multiple=True, help="CRL (PEM or DER).")
@click.option(
    "--no-crl-required",
    is_flag=True,
    help="Accept a sender whose issuer has no (fresh) CRL here. Fails closed without this flag.",
)
@click.option("--expected-to", help="Reject unless wsa:To is exactly this URL.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON object (code, message, and on success the metadata) instead of the "
    "payload; the payload goes to --out only.",
)
@click.option("--out", "out_file", type=_OUTPUT, help="Write the payload here (default: stdout).")
@config_option
@_VERBOSE
def open_command(
    message_file: Path,
    key_files: Sequence[Path],
    cert_files: Sequence[Path],
    anchor_files: Sequence[Path],
    intermediate_files: Sequence[Path],
    crl_files: Sequence[Path],
    no_crl_required: bool,
    expected_to: str | None,
    as_json: bool,
    out_file: Path | None,
    config_file: Path | None,
    verbose: bool,
) -> None:
    """Decrypt and verify a sealed message addressed to us; print its payload."""
    if len(key_files) != len(cert_files):
        raise click.UsageError("give one --cert for every --key, in the same order")
    identities = [
        _identity(k, c, key_param="--key", cert_param="--cert")
        for k, c in zip(key_files, cert_files, strict=True)
    ]
    settings = None
    if config_file is not None:
        configured, settings = _configured(config_file)
        identities.extend(configured)
    if not identities:
        raise click.UsageError("give at least one --key/--cert pair (or --config)")
    trust = _trust(anchor_files, intermediate_files, crl_files, no_crl_required, settings)
    data = _read_input(message_file)
    try:
        opened = wss.open_message(
            data,
            identities=identities,
            trust=trust,
            policy=wss.OpenPolicy(expected_to=expected_to),
            now=datetime.now(UTC),
        )
    except GatewayError as exc:
        _reject(exc, verbose=verbose, as_json=as_json)
    payload = etree.tostring(opened.payload, encoding="UTF-8", xml_declaration=True)
    if as_json:
        if out_file is not None:
            _write_output(out_file, payload)
        click.echo(json.dumps(opened_summary(opened), indent=2))
    else:
        _write_output(out_file, payload)


def opened_summary(opened: wss.OpenedMessage) -> dict[str, Any]:
    """What ``open --json`` prints on success: the verified metadata, never payload data."""
    return {
        "code": None,
        "message": "The message was opened and verified.",
        "message_id": opened.message_id,
        "action": opened.action,
        "to": opened.to,
        "from_oin": opened.from_oin,
        "relates_to": opened.relates_to,
        "recipient_oin": opened.recipient_oin,
        "created": opened.created.isoformat(),
        "expires": opened.expires.isoformat(),
        "signer_oin": opened.signer.oin,
        "signer_fingerprint_sha256": opened.signer.fingerprint_sha256,
        "payload_digest": opened.payload_digest,
    }


def _trust(
    anchor_files: Sequence[Path],
    intermediate_files: Sequence[Path],
    crl_files: Sequence[Path],
    no_crl_required: bool,
    settings: Settings | None,
) -> TrustConfig:
    """Trust from --trust/--intermediate/--crl, else from the configuration."""
    if not anchor_files:
        if settings is None:
            raise click.UsageError("give at least one --trust anchor (or --config)")
        try:
            trust = load_trust(settings)
        except GatewayError as exc:
            _bad("--config", exc)
        return dataclasses.replace(trust, require_crl=False) if no_crl_required else trust
    try:
        return TrustConfig.from_pem(
            anchors=[p.read_bytes() for p in anchor_files],
            intermediates=[p.read_bytes() for p in intermediate_files],
            crls=[p.read_bytes() for p in crl_files],
            require_crl=not no_crl_required,
        )
    except GatewayError as exc:
        _bad("--trust/--intermediate/--crl", exc)


def register(group: click.Group) -> None:
    group.add_command(seal_command)
    group.add_command(open_command)
