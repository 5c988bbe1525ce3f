"""An in-memory gateway pair (DESIGN §7, like h11): a sender and a receiver wired directly.

Real components everywhere (dev PKI from certs/dev, real seal/open, real SQLite stores, real
validation); only the HTTP hop is replaced by ``InMemoryTransport``, which hands the sealed bytes
to the receiver's ``ReceiveService`` and its answer back, and can simulate an outage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from oso_gateway.config import RetrySettings
from oso_gateway.errors import MandateMissing, UnknownSchool
from oso_gateway.security.keys import load_certificate, load_private_key
from oso_gateway.security.trust import TrustConfig
from oso_gateway.security.wss import KT_RSA_OAEP, Identity
from oso_gateway.store import AtRestCipher, Store, create_store_engine, upgrade
from oso_gateway.transfer.outbox import Outbox
from oso_gateway.transfer.receive import ReceiverConfig, ReceiveService, School
from oso_gateway.transfer.send import (
    PeerUnreachable,
    SenderConfig,
    TransportResponse,
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


def trust() -> TrustConfig:
    return TrustConfig.from_pem(
        anchors=[(DEV / "root-ca.crt.pem").read_bytes()],
        intermediates=[(DEV / "issuing-ca.crt.pem").read_bytes()],
        crls=[(DEV / "root-ca.crl.pem").read_bytes(), (DEV / "issuing-ca.crl.pem").read_bytes()],
    )


@dataclass(frozen=True, kw_only=True)
class Entry:
    endpoint: str
    oin: str
    encryption_certificate: x509.Certificate
    key_transport: str = KT_RSA_OAEP


@dataclass
class PairDirectory:
    """A directory with the dev gateways (each mandated for its own schools)."""

    entries: dict[School, Entry] = field(default_factory=dict)
    mandates: dict[School, set[str]] = field(default_factory=dict)

    def add(self, school: School, oin: str, endpoint: str) -> None:
        cert = load_certificate((DEV / f"gateway-{oin}.crt.pem").read_bytes())
        self.entries[school] = Entry(endpoint=endpoint, oin=oin, encryption_certificate=cert)
        self.mandates.setdefault(school, set()).add(oin)

    def lookup(self, brin: str, vestiging: str) -> Entry:
        entry = self.entries.get(School(brin, vestiging))
        if entry is None:
            raise UnknownSchool(f"school {brin}{vestiging} not in the directory")
        return entry

    def check_mandate(self, oin: str, brin: str, vestiging: str) -> None:
        if oin not in self.mandates.get(School(brin, vestiging), set()):
            raise MandateMissing(f"school {brin}{vestiging} has not mandated OIN {oin}")

    def schools(self) -> list[str]:
        return [s.code for s in self.entries]


def dev_directory() -> PairDirectory:
    directory = PairDirectory()
    directory.add(SENDER_SCHOOL, SENDER_OIN, SENDER_URL)
    directory.add(RECEIVER_SCHOOL, RECEIVER_OIN, RECEIVER_URL)
    directory.add(School("02CD", "00"), VENDOR_OIN, VENDOR_URL + "/02CD00")
    directory.add(School("03EF", "00"), VENDOR_OIN, VENDOR_URL + "/03EF00")
    return directory


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


@dataclass
class GatewayPair:
    clock: Clock
    directory: PairDirectory
    transport: InMemoryTransport
    sender_store: Store
    receiver_store: Store
    receiver: ReceiveService
    inbound: StoreInbound
    outbox: Outbox
    sender_config: SenderConfig

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
