"""Two gateways that both send and receive, wired in memory, for the pull workflow.

The old school 00YY00 (gateway 1) holds the pupil's dossier; the new school 01AB00 (gateway 2)
requests it. Real seal/open, real SQLite stores, real validation; only HTTP is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from gateway_pair import (
    FAST_RETRY,
    RECEIVER_OIN,
    RECEIVER_URL,
    SENDER_OIN,
    SENDER_URL,
    Clock,
    InMemoryTransport,
    dev_directory,
    identity,
    sqlite_store,
    trust,
)
from lxml import etree

from oso_gateway.config import PullSettings, SchoolPolicy
from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.store import Store
from oso_gateway.transfer.directory import Directory
from oso_gateway.transfer.handlers import default_handlers
from oso_gateway.transfer.outbox import Outbox
from oso_gateway.transfer.pull.payloads import Pupil
from oso_gateway.transfer.pull.service import PullService
from oso_gateway.transfer.receive import ReceiverConfig, ReceiveService
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import PreparedDossier, SenderConfig, prepare_dossier
from oso_gateway.transfer.services import StoreInbound, served_schools

OLD = School("00YY", "00")
NEW = School("01AB", "00")
N = "{http://www.edustandaard.nl/oso_gegevensset/2019/dossier}"


@dataclass
class Side:
    store: Store
    pull: PullService
    receiver: ReceiveService
    outbox: Outbox

    def drain(self) -> None:
        self.outbox.run_once()


@dataclass
class PullPair:
    clock: Clock
    directory: Directory
    transport: InMemoryTransport
    old: Side
    new: Side

    def drain(self) -> None:
        for _ in range(3):
            self.old.drain()
            self.new.drain()

    def fail_outbox(self, side: Side) -> None:
        """Every message ``side`` has queued fails for good: the other gateway is unreachable
        through all retries (the clock runs on), then reachable again."""
        self.transport.down = True
        for _ in range(8):
            side.drain()
            self.clock.advance(timedelta(seconds=30))
        self.transport.down = False

    def push(self, data: bytes) -> PreparedDossier:
        """Queue ``data`` at the old school for the new school, unrequested (a push)."""
        prepared = prepare_dossier(
            data, to=NEW, directory=self.directory, config=self.old.outbox.config, now=self.clock()
        )
        self.old.outbox.enqueue(prepared)
        return prepared

    def close(self) -> None:
        self.old.store.engine.dispose()
        self.new.store.engine.dispose()


def _side(
    tmp: Path,
    oin: str,
    url: str,
    clock: Clock,
    directory: Directory,
    transport: InMemoryTransport,
    settings: PullSettings,
    store: Store | None = None,
) -> Side:
    ident = identity(oin)
    store = store or sqlite_store(tmp / oin / "gateway.sqlite")
    config = SenderConfig(identity=ident, trust=trust())
    outbox = Outbox(
        store=store,
        directory=directory,
        config=config,
        transport=transport,
        retry=FAST_RETRY,
        clock=clock,
    )
    pull = PullService(
        store=store,
        directory=directory,
        outbox=outbox,
        sender_config=config,
        settings=settings,
        clock=clock,
    )
    outbox.gate = pull.check_push
    outbox.gate_again = pull.recheck_push
    receiver = ReceiveService(
        config=ReceiverConfig(
            identities=(ident,), trust=trust(), served=served_schools(directory, (ident,))
        ),
        directory=directory,
        store=StoreInbound(store),
        clock=clock,
        handlers=default_handlers(pull=pull),
    )
    transport.receivers[url] = receiver
    return Side(store=store, pull=pull, receiver=receiver, outbox=outbox)


def make_pull_pair(
    tmp: Path,
    *,
    policy: SchoolPolicy | None = None,
    old_store: Store | None = None,
    new_store: Store | None = None,
) -> PullPair:
    """``old_store`` / ``new_store``: the old or the new school's store (a migrated one, on
    PostgreSQL say); default: SQLite in ``tmp``."""
    clock = Clock()
    directory = dev_directory()
    transport = InMemoryTransport()
    settings = PullSettings(default_policy=policy or SchoolPolicy())
    old = _side(tmp, SENDER_OIN, SENDER_URL, clock, directory, transport, settings, old_store)
    new = _side(tmp, RECEIVER_OIN, RECEIVER_URL, clock, directory, transport, settings, new_store)
    return PullPair(clock=clock, directory=directory, transport=transport, old=old, new=new)


def dossier(clock: Clock, seed: int = 2019) -> bytes:
    return generate_dossier(overstap="POVO", seed=seed, now=clock())


def pupil_of(data: bytes, **changes: object) -> Pupil:
    """The request that names the dossier's pupil (with ``changes`` applied)."""
    leerling = etree.fromstring(data).find(f"{N}huidigeschool/{N}leerling")
    assert leerling is not None
    values: dict[str, object] = {
        "bsn": leerling.findtext(N + "bsn"),
        "onderwijsnummer": leerling.findtext(N + "onderwijsnummer"),
        "birth_date": date.fromisoformat(leerling.findtext(N + "geboortedatum") or ""),
        "family_name": leerling.findtext(N + "achternaam") or "",
    }
    values.update(changes)
    return Pupil(**values)  # type: ignore[arg-type]


def valid_bsns(count: int, *, start: int = 999_990_000) -> list[str]:
    """``count`` test BSNs (99999xxxx, passing the 11-proef) from ``start`` up: a pupil each,
    for requests that must not be refused as a second open one for one pupil (OSO-E486)."""
    from oso_gateway.dossier.rules import bsn_is_valid

    found: list[str] = []
    number = start
    while len(found) < count:
        if bsn_is_valid(str(number)):
            found.append(str(number))
        number += 1
    return found
