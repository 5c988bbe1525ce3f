"""An in-memory gateway pair (DESIGN §7, like h11): a sender and a receiver wired directly.

Real components everywhere (dev PKI from certs/dev, real seal/open, real SQLite stores, real
validation); only the HTTP hop is replaced by ``InMemoryTransport``, which hands the sealed bytes
to the receiver's ``ReceiveService`` and its answer back, and can simulate an outage.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from oso_gateway.config import RetrySettings
from oso_gateway.security.keys import load_certificate, load_private_key
from oso_gateway.security.trust import TrustConfig
from oso_gateway.security.wss import Identity
from oso_gateway.store import AtRestCipher, Store, create_store_engine, upgrade
from oso_gateway.transfer.directory import Directory
from oso_gateway.transfer.outbox import Outbox
from oso_gateway.transfer.receive import ReceiverConfig, ReceiveService
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import (
    PeerUnreachable,
    PreparedDossier,
    SenderConfig,
    TransportResponse,
    prepare_dossier,
)
from oso_gateway.transfer.services import StoreInbound, served_schools

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "certs" / "dev"
SENDER_OIN = "00000001000000000001"  # Basisschool De Regenboog, 00YY00
RECEIVER_OIN = "00000001000000000002"  # Het Dev College, 01AB00
VENDOR_OIN = "00000001000000000003"  # 02CD00 + 03EF00
SENDER_SCHOOL = School("00YY", "00")
RECEIVER_SCHOOL = School("01AB", "00")
RECEIVER_URL = "https://gw2.test/oso/v1/messages"
SENDER_URL = "https://gw1.test/oso/v1/messages"
VENDOR_URL = "https://gw3.test/oso/v1/messages"
KEY = bytes(range(32))


def identity(oin: str) -> Identity:
    return Identity(
        oin=oin,
        private_key=load_private_key((DEV / f"gateway-{oin}.key.pem").read_bytes()),
        certificate=load_certificate((DEV / f"gateway-{oin}.crt.pem").read_bytes()),
    )


def renewed_identity(oin: str, into: Path, *, now: datetime) -> tuple[Identity, Path, Path]:
    """A new key and certificate for ``oin`` from the dev issuing CA (a renewal, as a rollover
    holds it beside the old one); written to ``into``: (identity, key file, certificate file)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from oso_gateway.security import pki

    ca_key = serialization.load_pem_private_key(
        (DEV / "issuing-ca.key.pem").read_bytes(), password=None
    )
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    issuer = pki.Authority(
        certificate=load_certificate((DEV / "issuing-ca.crt.pem").read_bytes()), key=ca_key
    )
    key = pki.new_rsa_key()
    certificate = pki.make_end_entity(
        public_key=key.public_key(),
        issuer=issuer,
        subject=pki.gateway_name(organisation="Renewed", oin=oin),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )
    into.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = into / f"renewed-{oin}.key.pem", into / f"renewed-{oin}.crt.pem"
    key_file.write_bytes(pki.key_pem(key))
    cert_file.write_bytes(pki.cert_pem(certificate))
    return Identity(oin=oin, private_key=key, certificate=certificate), key_file, cert_file


def trust() -> TrustConfig:
    return TrustConfig.from_pem(
        anchors=[(DEV / "root-ca.crt.pem").read_bytes()],
        intermediates=[(DEV / "issuing-ca.crt.pem").read_bytes()],
        crls=[(DEV / "root-ca.crl.pem").read_bytes(), (DEV / "issuing-ca.crl.pem").read_bytes()],
    )


def directory_toml(
    *,
    receiver_url: str = RECEIVER_URL,
    sender_url: str = SENDER_URL,
    extra_mandates: dict[str, list[str]] | None = None,
) -> str:
    """The dev gateways as a directory file (certificate paths relative to certs/dev)."""
    mandates = extra_mandates or {}
    gateways = [
        (SENDER_OIN, "Basisschool De Regenboog", sender_url),
        (RECEIVER_OIN, "Het Dev College", receiver_url),
        (VENDOR_OIN, "Dev LAS Leverancier", VENDOR_URL),
    ]
    schools = [
        ("00YY", SENDER_OIN, ""),
        ("01AB", RECEIVER_OIN, ""),
        ("02CD", VENDOR_OIN, "/02CD00"),
        ("03EF", VENDOR_OIN, "/03EF00"),
    ]
    lines = []
    for oin, name, url in gateways:
        lines += [
            f'[gateways."{oin}"]',
            f'name = "{name}"',
            f'endpoint = "{url}"',
            f'encryption_certificate = "gateway-{oin}.crt.pem"',
            "",
        ]
    for brin, oin, _suffix in schools:
        extra = ", ".join(f'"{o}"' for o in mandates.get(brin + "00", []))
        lines += [
            "[[schools]]",
            f'brin = "{brin}"',
            'vestiging = "00"',
            f'name = "School {brin}"',
            f'gateway = "{oin}"',
            f"mandated = [{extra}]",
            "",
        ]
    return "\n".join(lines)


def dev_directory(**kwargs: Any) -> Directory:
    return Directory.from_toml(directory_toml(**kwargs).encode(), DEV, source="<test directory>")


class Clock:
    """A settable clock (starts at the real time: the dev PKI's CRLs are current now)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.now += delta


class InMemoryTransport:
    """POSTs go straight to the receive service registered for the endpoint."""

    def __init__(self) -> None:
        self.receivers: dict[str, ReceiveService] = {}
        self.down = False
        self.posts: list[tuple[str, bytes]] = []
        #: called with (url, request bytes, answer); may replace the answer (e.g. lose it)
        self.intercept: Callable[[str, bytes, TransportResponse], TransportResponse] | None = None
        self._lock = threading.Lock()

    def post(self, url: str, data: bytes, *, action: str) -> TransportResponse:
        with self._lock:
            self.posts.append((url, data))
        if self.down or url not in self.receivers:
            raise PeerUnreachable(f"connection refused: {url}")
        result = self.receivers[url].handle(data)
        answer = TransportResponse(status=result.http_status, body=result.body)
        if self.intercept is not None:
            answer = self.intercept(url, data, answer)
        return answer


def sqlite_store(path: Path) -> Store:
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    return Store(engine, AtRestCipher(KEY))


def cli_config_and_store(tmp_path: Path) -> tuple[Path, Store]:
    """A ``config.toml`` for the CLI (data dir ``data``, storage key ``KEY``) and the store the
    CLI opens with it, already migrated."""
    config = tmp_path / "config.toml"
    key = base64.b64encode(KEY).decode()
    config.write_text(f'data_dir = "data"\n[storage]\nkey = "{key}"\n')
    return config, sqlite_store(tmp_path / "data" / "gateway.sqlite")


@dataclass
class GatewayPair:
    clock: Clock
    directory: Directory
    transport: InMemoryTransport
    sender_store: Store
    receiver_store: Store
    receiver: ReceiveService
    inbound: StoreInbound
    outbox: Outbox
    sender_config: SenderConfig

    def prepare(self, data: bytes, **options: Any) -> PreparedDossier:
        """``prepare_dossier`` of ``data`` from the sender to the receiving school, now
        (``options``: its other keyword arguments, such as ``objections``)."""
        return prepare_dossier(
            data,
            to=RECEIVER_SCHOOL,
            directory=self.directory,
            config=self.sender_config,
            now=self.clock(),
            **options,
        )

    def set_receiver_directory(self, directory: Directory) -> None:
        self.receiver.directory = directory

    def set_sender_directory(self, directory: Directory) -> None:
        self.directory = directory
        self.outbox.directory = directory

    def close(self) -> None:
        self.sender_store.engine.dispose()
        self.receiver_store.engine.dispose()


FAST_RETRY = RetrySettings(max_attempts=4, base_delay=1.0, max_delay=8.0, jitter=0.0)


def make_pair(tmp_path: Path, *, retry: RetrySettings = FAST_RETRY) -> GatewayPair:
    clock = Clock()
    directory = dev_directory()
    transport = InMemoryTransport()
    the_trust = trust()
    receiver_identity = identity(RECEIVER_OIN)
    receiver_store = sqlite_store(tmp_path / "receiver" / "gateway.sqlite")
    inbound = StoreInbound(receiver_store)
    receiver = ReceiveService(
        config=ReceiverConfig(
            identities=(receiver_identity,),
            trust=the_trust,
            served=served_schools(directory, (receiver_identity,)),
        ),
        directory=directory,
        store=inbound,
        clock=clock,
    )
    transport.receivers[RECEIVER_URL] = receiver
    sender_store = sqlite_store(tmp_path / "sender" / "gateway.sqlite")
    sender_config = SenderConfig(identity=identity(SENDER_OIN), trust=the_trust)
    outbox = Outbox(
        store=sender_store,
        directory=directory,
        config=sender_config,
        transport=transport,
        retry=retry,
        clock=clock,
    )
    return GatewayPair(
        clock=clock,
        directory=directory,
        transport=transport,
        sender_store=sender_store,
        receiver_store=receiver_store,
        receiver=receiver,
        inbound=inbound,
        outbox=outbox,
        sender_config=sender_config,
    )


def with_sending_school(data: bytes, brin: str) -> bytes:
    """The dossier with ``huidigeschool/brincode`` replaced (to test mandates)."""
    from lxml import etree

    root = etree.fromstring(data)
    ns = "http://www.edustandaard.nl/oso_gegevensset/2019/dossier"
    element = root.find(f"{{{ns}}}huidigeschool/{{{ns}}}brincode")
    assert element is not None
    element.text = brin
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")
