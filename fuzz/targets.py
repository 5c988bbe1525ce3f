"""The fuzz targets: each takes the fuzzer's bytes and may raise only a ``GatewayError``.

Seeds: the payload test vectors (``tests/vectors/wss/payloads``) and, made at start-up from them,
a sealed message, a dossier and a receipt (``seeds``), so that mutations start from inputs that
get far.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from lxml import etree

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.dossier.validate import validate_dossier
from oso_gateway.errors import GatewayError
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.keys import load_certificate, load_private_key
from oso_gateway.security.trust import TrustConfig
from oso_gateway.security.wss import Identity, OpenPolicy, open_message, seal
from oso_gateway.security.xmlparse import ParseLimits, parse_xml
from oso_gateway.transfer import wire

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "certs" / "dev"
VECTORS = REPO / "tests" / "vectors" / "wss" / "payloads"
#: inputs the fuzzers found, named ``<target>-<what>.xml`` (each a regression test too)
FOUND = REPO / "tests" / "vectors" / "fuzz"
SENDER, RECIPIENT = "00000001000000000001", "00000001000000000002"
#: small bounds: the fuzzer explores the limits instead of spending its time on big inputs
LIMITS = ParseLimits(max_bytes=256 * 1024, max_markup=20_000, max_elements=5_000)


@functools.cache
def now() -> datetime:
    """An instant at which the dev PKI is valid (an hour after it was made)."""
    manifest = tomllib.loads((DEV / "identities.toml").read_text("utf-8"))
    return datetime.fromisoformat(str(manifest["generated_at"])) + timedelta(hours=1)


@functools.cache
def identity(oin: str) -> Identity:
    return Identity(
        oin=oin,
        private_key=load_private_key((DEV / f"gateway-{oin}.key.pem").read_bytes()),
        certificate=load_certificate((DEV / f"gateway-{oin}.crt.pem").read_bytes()),
    )


@functools.cache
def trust() -> TrustConfig:
    return TrustConfig.from_pem(
        anchors=[(DEV / "root-ca.crt.pem").read_bytes()],
        intermediates=[(DEV / "issuing-ca.crt.pem").read_bytes()],
        crls=[(DEV / "root-ca.crl.pem").read_bytes(), (DEV / "issuing-ca.crl.pem").read_bytes()],
    )


def _seal(payload: etree._Element) -> bytes:
    return seal(
        payload,
        sender=identity(SENDER),
        recipient_certificate=identity(RECIPIENT).certificate,
        to="https://gateway2.example/oso",
        action=wire.ACTION_DELIVER,
        message_id="urn:uuid:6b1f7c2e-9a53-4d8e-8f0a-2c4b1e7d9a01",
        now=now(),
    ).data


def _open(data: bytes) -> None:
    policy = OpenPolicy(max_bytes=LIMITS.max_bytes)
    open_message(data, identities=[identity(RECIPIENT)], trust=trust(), policy=policy, now=now())


def parser(data: bytes) -> None:
    """The hardened parser on any bytes."""
    parse_xml(data, limits=LIMITS)


def opened(data: bytes) -> None:
    """``open_message`` on any bytes (seeds: sealed messages, so mutations reach deep)."""
    _open(data)


def sealed(data: bytes) -> None:
    """Any payload that parses, sealed by a trusted sender: open gives back exactly its
    canonical form (decryption, the payload's parse, C14N and every digest on hostile XML)."""
    try:
        payload = parse_xml(data, limits=LIMITS).getroot()
    except GatewayError:
        return
    message = _seal(payload)
    result = open_message(message, identities=[identity(RECIPIENT)], trust=trust(), now=now())
    if exc_c14n(result.payload) != exc_c14n(payload):
        raise AssertionError("open did not give back what was sealed")


def dossier(data: bytes) -> None:
    """Dossier validation (hardened parse, XSD, business rules) on any bytes."""
    validate_dossier(data, now=now(), limits=LIMITS)


def receipt(data: bytes) -> None:
    """The receipt check: the receipt payload parsed and read as the sender does."""
    wire.parse_receipt(parse_xml(data, limits=LIMITS).getroot())


TARGETS: dict[str, Callable[[bytes], None]] = {
    "parser": parser,
    "open": opened,
    "sealed": sealed,
    "dossier": dossier,
    "receipt": receipt,
}


def seeds(target: str) -> list[bytes]:
    """The seed inputs of ``target``: the payload vectors, what the fuzzers found for it, and
    inputs made from the vectors that get far (a sealed message, a dossier, a receipt)."""
    vectors = [path.read_bytes() for path in sorted(VECTORS.glob("*.xml"))]
    vectors += [path.read_bytes() for path in sorted(FOUND.glob(f"{target}-*.xml"))]
    a_dossier = generate_dossier(overstap="POVO", seed=1, now=now())
    if target == "open":
        return [_seal(parse_xml(v).getroot()) for v in vectors[:2]] + [
            _seal(parse_xml(a_dossier).getroot())
        ]
    if target == "dossier":
        return [a_dossier, *vectors]
    if target == "receipt":
        built = wire.build_receipt(
            wire.Receipt(
                request_message_id="urn:uuid:6b1f7c2e-9a53-4d8e-8f0a-2c4b1e7d9a01",
                status="imported",
                received_at=now(),
                payload_digest="0" * 64,
                payload_bytes=123,
                receiver_brin="01AB",
                receiver_vestiging="00",
            )
        )
        return [etree.tostring(built), *vectors]
    return [*vectors, a_dossier]
