"""One gateway's services as a bundle (``GatewayServices``; ``oso_gateway.runtime.build_services``
wires it from the settings), and the adapter of the receive service onto the store.

Adapters stay thin: ``StoreInbound`` maps the receive service's small ``InboundStore`` interface
onto ``oso_gateway.store.Store``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lxml import etree

from oso_gateway.config import Settings
from oso_gateway.dossier.disclosure import pupil_number
from oso_gateway.errors import GatewayError
from oso_gateway.protocol import DOSSIER_NS
from oso_gateway.security.trust import TrustConfig
from oso_gateway.security.wss import Identity
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.logchain import FIELD_FORMATS, make_event
from oso_gateway.store.presence import Presence
from oso_gateway.store.records import in_turn
from oso_gateway.store.repository import AfterInsert, Duplicate, MessageRecord, PupilFacts
from oso_gateway.transfer.mailbox import InboxService, OutboxService
from oso_gateway.transfer.outage import DatabaseErrors
from oso_gateway.transfer.outbox import Outbox
from oso_gateway.transfer.pull.service import PullService
from oso_gateway.transfer.receive import (
    DuplicateMessage,
    InboundImport,
    ReceiveService,
    StoredReceipt,
)
from oso_gateway.transfer.schools import DirectoryLike, School, ServedSchool
from oso_gateway.transfer.send import SenderConfig, Transport

log = logging.getLogger(__name__)


class StoreInbound:
    """``InboundStore`` over the real store (exactly-once import in one transaction).

    ``duplicate_window``: a dossier whose content (payload digest) this school received within
    it is recorded as a duplicate of the first instead of stored again (None: always imported).
    """

    def __init__(
        self,
        store: Store,
        *,
        after_insert: AfterInsert | None = None,
        duplicate_window: timedelta | None = None,
    ) -> None:
        self.store = store
        #: runs inside the import transaction (e.g. the transfer log; tests: a crash)
        self.after_insert = after_insert
        self.duplicate_window = duplicate_window

    def find_receipt(self, message_id: str, signer_oin: str) -> StoredReceipt | None:
        """The stored receipt of an accepted inbound message of this signer."""
        found = self.store.find_receipt(message_id, signer_oin)
        return None if found is None else StoredReceipt(payload_digest=found[0], receipt=found[1])

    def import_dossier(self, record: InboundImport) -> None:
        # The store logs received -> verified -> imported in the import transaction. It queues
        # this process's concurrent imports itself and commits them together (group commit):
        # no waiting in SQLite's busy handler, one disk flush for several.
        from oso_gateway.dossier.categories import present_keys
        from oso_gateway.store.mailbox import Mailbox

        first = None
        if self.duplicate_window is not None and record.dossier is not None:
            first = Mailbox(self.store).first_with_digest(
                m.IN,
                our_school=record.our_school.code,
                payload_digest=record.payload_digest,
                since=record.received_at - self.duplicate_window,
            )
        tree = record.take_tree()
        categories: tuple[str, ...] = ()
        if record.dossier is not None and tree is not None:
            categories = present_keys(tree)
        pupil = pupil_facts(tree) if first is None else None
        del tree  # not held while the dossier is encrypted and written
        result = self.store.import_inbound(
            message_id=record.message_id,
            action=record.action,
            dossier=record.dossier,
            payload_digest=record.payload_digest,
            receipt=record.receipt,
            now=record.received_at,
            our_oin=record.our_oin,
            our_school=record.our_school.code,
            counterpart_oin=record.counterpart_oin,
            counterpart_school=record.counterpart_school.code,
            signer_fingerprint=record.signer_fingerprint,
            message_size=record.message_size,
            payload_size=record.payload_size,
            relates_to=record.relates_to,
            pupil=pupil,
            after_insert=in_turn(record.persist, self.after_insert),
            categories=",".join(categories) or None,
            duplicate_of=None if first is None else first.pk,
        )
        if isinstance(result, Duplicate):
            raise DuplicateMessage(record.message_id)

    def record_rejection(
        self,
        *,
        message_id: str | None,
        error_code: str,
        counterpart_oin: str | None,
        message_size: int,
        at: datetime,
    ) -> None:
        if message_id is not None:
            self.store.record_rejected_inbound(
                message_id=message_id,
                action="",
                error_code=error_code,
                now=at,
                counterpart_oin=counterpart_oin,
                message_size=message_size,
            )
            return  # the store logged received -> rejected with the row
        event = log_event(
            at=at,
            direction="in",
            message_id=message_id,
            status=m.REJECTED,
            error_code=error_code,
            counterpart_oin=counterpart_oin,
            size_bytes=message_size,
        )
        self.store.append_log([event], now=at)


def log_event(**fields: object) -> dict[str, str]:
    """A transfer-log message event; a value not of its field's strict form is left out (a
    peer's odd MessageID must not make the import fail)."""
    kept = {
        name: value
        for name, value in fields.items()
        if value is not None
        and (not isinstance(value, str) or re.fullmatch(FIELD_FORMATS[name], value) is not None)
    }
    return make_event(kind="message", **kept)


def pupil_facts(root: etree._Element | None) -> PupilFacts:
    """The searchable fields (family name, given names, birth date) of a validated dossier."""
    if root is None:
        return PupilFacts()
    ll = root.find(f"{{{DOSSIER_NS}}}huidigeschool/{{{DOSSIER_NS}}}leerling")
    if ll is None:
        return PupilFacts()
    prefix = ll.findtext(f"{{{DOSSIER_NS}}}voorvoegsel")
    surname = ll.findtext(f"{{{DOSSIER_NS}}}achternaam")
    given = [e.text or "" for e in ll.findall(f"{{{DOSSIER_NS}}}voornaam")]
    born = ll.findtext(f"{{{DOSSIER_NS}}}geboortedatum")
    try:
        birth_date = date.fromisoformat(born) if born else None
    except ValueError:
        birth_date = None
    family = " ".join(p for p in (prefix, surname) if p) or None
    return PupilFacts(
        family_name=family,
        given_names=" ".join(given) or None,
        birth_date=birth_date,
        bsn=pupil_number(root),
    )


def served_schools(directory: Any, identities: Iterable[Identity]) -> tuple[ServedSchool, ...]:
    """The directory's schools whose serving gateway is one of our identities, each once:
    during a key rollover two identities share an OIN (the old and the new key side by side),
    and a school listed twice made every message to it "name several schools" (E453)."""
    found = []
    for oin in dict.fromkeys(identity.oin for identity in identities):
        for entry in directory.schools_served_by(oin):
            found.append(
                ServedSchool(
                    school=School(entry.brin, entry.vestiging),
                    endpoint=entry.endpoint,
                    oin=entry.oin,
                )
            )
    return tuple(found)


@dataclass
class GatewayServices:
    settings: Settings
    store: Store
    directory: DirectoryLike
    identities: tuple[Identity, ...]
    trust: TrustConfig
    receiver: ReceiveService
    inbound: StoreInbound
    sender_config: SenderConfig
    outbox: Outbox
    transport: Transport
    #: the pull workflow: requests on both sides, the inzage gate
    pull: PullService
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: the schools' ends (``oso_gateway.transfer.mailbox``), built by ``build_services``
    inbox: InboxService | None = None
    outbox_view: OutboxService | None = None
    #: a long-running process's hold on its database (``runtime.hold_presence``)
    presence: Presence | None = None
    #: the code of the last trust reload's refusal (None: the last one applied, or none yet);
    #: the current material stays (``transfer.reload``), the metrics say so
    trust_reload_refused: str | None = None
    #: what met an outage of our database, counted without it (``transfer.outage``): the
    #: receiver's, the outbox's and the school API's, one object (``build_services``)
    database_errors: DatabaseErrors = field(default_factory=DatabaseErrors)

    def apply_trust(self, trust: TrustConfig) -> None:
        """Swap in reloaded trust material (``transfer.reload``): every verifier and sealer uses
        ``trust`` from the next message on; the served schools follow the (live) directory."""
        sender_config = dataclasses.replace(self.sender_config, trust=trust)
        configs = {
            oin: dataclasses.replace(config, trust=trust)
            for oin, config in getattr(self.outbox, "configs", {}).items()
        }
        self.trust = trust
        self.sender_config = sender_config
        self.outbox.config = sender_config
        if configs:
            self.outbox.configs = configs
        self.pull.sender_config = sender_config
        self.receiver.reconfigure(
            dataclasses.replace(
                self.receiver.config,
                trust=trust,
                served=served_schools(self.directory, self.identities),
            )
        )

    def schools(self) -> tuple[str, ...]:
        """The schools (BRIN + vestiging) this gateway serves."""
        return tuple(s.school.code for s in self.receiver.config.served)

    def readiness_problems(self, now: datetime) -> list[str]:
        """Why we cannot receive right now (empty: ready). Reasons name no secret."""
        problems = []
        try:
            self.store.check_ready()
        except GatewayError as exc:
            problems.append(f"database: {exc.code} {exc.public_message}")
        except Exception as exc:  # any driver failure: not ready
            problems.append(f"database unreachable ({type(exc).__name__})")
        if not self.identities:
            problems.append("no gateway identity (key and certificate) loaded")
        for identity in self.identities:
            if identity.certificate.not_valid_after_utc < now:
                problems.append(f"certificate of identity {identity.oin} has expired")
        if self.trust.require_crl:
            if not self.trust.crls:
                problems.append("no CRLs loaded")
            for crl in self.trust.crls:
                next_update = crl.next_update_utc
                if next_update is None or next_update < now:
                    problems.append(f"CRL of {crl.issuer.rfc4514_string()} is stale")
        if not self.receiver.config.served:
            problems.append("the directory lists no school served by our identities")
        return problems

    def close(self) -> None:
        for transport in {
            id(t): t for t in (self.transport, *self.outbox.transports.values())
        }.values():
            close = getattr(transport, "close", None)
            if close is not None:
                close()
        if self.presence is not None:
            self.presence.close()
        self.store.engine.dispose()


def config_for_school(
    directory: DirectoryLike,
    configs: dict[str, SenderConfig],
    default: SenderConfig,
    school: School,
) -> SenderConfig:
    """Our identity that serves ``school`` (the directory's gateway for it), else one mandated
    for it, else ``default`` (which the mandate check then refuses)."""
    try:
        entry = directory.lookup(school.brin, school.vestiging)
    except GatewayError:
        return default
    if entry.oin in configs:
        return configs[entry.oin]
    for oin, config in configs.items():
        try:
            directory.check_mandate(oin, school.brin, school.vestiging)
        except GatewayError:
            continue
        return config
    return default


def read_receipt(outbox: Outbox, record: MessageRecord) -> dict[str, Any]:
    """The stored receipt of a delivered message, verified again (signature, certificate path,
    confirmation of our SignatureValue, digest) as of its delivery time; its content as JSON."""
    from oso_gateway.transfer.send import Expected, verify_receipt

    if record.receipt is None or record.signature_value is None:
        return {"verified": False, "error_code": None}
    assert record.counterpart_oin and record.payload_digest and record.counterpart_school
    try:
        receipt, fingerprint = verify_receipt(
            record.receipt,
            expected=Expected(
                message_id=record.message_id,
                signature_value=record.signature_value,
                payload_digest=record.payload_digest,
                recipient_oin=record.counterpart_oin,
                resealed=record.attempts > 1,
                earlier_signature_values=record.sent_signature_values,
                recipient_school=School.parse(record.counterpart_school),
            ),
            config=outbox.config_for(record.our_oin),
            now=record.updated_at,
        )
    except GatewayError as exc:
        return {"verified": False, "error_code": exc.code}
    return {
        "verified": True,
        "request_message_id": receipt.request_message_id,
        "status": receipt.status,
        "received_at": receipt.received_at.isoformat().replace("+00:00", "Z"),
        "receiver_school": f"{receipt.receiver_brin}{receipt.receiver_vestiging}",
        "payload_digest": receipt.payload_digest,
        "payload_bytes": receipt.payload_bytes,
        "signer_fingerprint": fingerprint,
    }
