"""Receiving a sealed message: the receive service (no HTTP here; ``oso_gateway.web`` adapts it).

Order (cheap and unauthenticated checks first, the dossier only after the sender is known),
each step failing closed with a typed ``GatewayError``:

1. ``open_message``: hardened parse, Security header, Timestamp, key unwrap, decrypt, signature,
   certificate path + revocation (``oso_gateway.security.wss``);
2. ``wsa:Action`` must name a registered message kind (E452): the receive path has one handler
   per kind (``oso_gateway.transfer.handlers``: dossier delivery, receipt, dossier request,
   request answer) and no branch per kind of its own;
3. ``wsa:To`` must be the directory endpoint of one school we serve (E453): that school is the
   receiving school (a gateway serving several schools gives each its own endpoint URL);
4. replay / duplicate by (signing OIN, MessageID): the same MessageID from the same signer with
   the same payload digest gets the ORIGINAL stored receipt back and nothing is stored again;
   a different digest is E454. A MessageID is unique per signer only: another gateway's message
   with the same id neither blocks nor answers this one;
5. the kind's handler checks what is particular to it. A dossier delivery: the sending school
   named in the dossier (``huidigeschool``) must have mandated the signing OIN (E431), the
   dossier is validated (schema + rules) and must hold no category that may not be shared, and a
   delivery for a request must match that request (E47x);
6. the signed receipt is sealed, then the inbound message, its events, the receipt bytes and what
   the handler keeps (the dossier, a request's state) are stored in ONE transaction (the store's
   exactly-once insert);
7. the sealed receipt is the answer.

A rejection is answered with a SOAP Fault carrying only the stable code and the public message;
the precise reason goes to our log (``detail``, which never holds pupil data) and the message log
records the rejection (status ``rejected`` with the code).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from lxml import etree

from oso_gateway.errors import (
    GatewayError,
    InternalError,
    MessageIdReused,
    OinInvalid,
    RecipientUnknown,
    StoreUnavailable,
    UnexpectedAction,
)
from oso_gateway.protocol import shown_id
from oso_gateway.security.trust import TrustConfig
from oso_gateway.security.wss import Identity, OpenPolicy, open_message
from oso_gateway.transfer import wire
from oso_gateway.transfer.handlers.base import Inbound
from oso_gateway.transfer.handlers.receipt import seal_receipt
from oso_gateway.transfer.outage import RECEIVE, DatabaseErrors
from oso_gateway.transfer.schools import (
    DirectoryLike,
    School,
    ServedSchool,
    split_address,
)

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.transfer.handlers.base import Handler, Persist

log = logging.getLogger(__name__)


# --- values and interfaces -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StoredReceipt:
    """What the store kept of an imported message: enough to answer a duplicate."""

    payload_digest: str
    receipt: bytes


@dataclass(kw_only=True)
class InboundImport:
    """Everything stored in the one import transaction."""

    message_id: str
    action: str
    our_oin: str
    our_school: School
    counterpart_oin: str
    counterpart_school: School
    payload_digest: str
    payload_size: int
    message_size: int
    signer_fingerprint: str
    #: the dossier to import (None: a message kind that carries no dossier)
    dossier: bytes | None
    receipt: bytes
    received_at: datetime
    #: the verified dossier element (for the store's searchable fields)
    tree: etree._Element | None = None
    #: the request it relates to (``wsa:RelatesTo``), if any
    relates_to: str | None = None
    #: the message kind's own rows, written in the import transaction
    persist: Persist | None = None
    #: run once the import transaction committed (e.g. flush deleted content from the WAL)
    after_commit: Callable[[], object] | None = None

    def take_tree(self) -> etree._Element | None:
        """The dossier element, handed over once: the store reads the searchable fields from
        it and lets go of it before it writes (the tree is as large as the dossier)."""
        tree, self.tree = self.tree, None
        return tree


class DuplicateMessage(Exception):
    """Raised by an InboundStore when the exactly-once insert finds the MessageID taken."""


class InboundStore(Protocol):
    def find_receipt(self, message_id: str, signer_oin: str) -> StoredReceipt | None: ...
    def import_dossier(self, record: InboundImport) -> None: ...
    def record_rejection(
        self,
        *,
        message_id: str | None,
        error_code: str,
        counterpart_oin: str | None,
        message_size: int,
        at: datetime,
    ) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ReceiverConfig:
    identities: tuple[Identity, ...]
    trust: TrustConfig
    served: tuple[ServedSchool, ...]
    policy: OpenPolicy = field(default_factory=OpenPolicy)
    receipt_ttl: timedelta = wire.RECEIPT_TTL


@dataclass(frozen=True, kw_only=True)
class ReceiveResult:
    """What to answer: HTTP status and body (sealed receipt or SOAP Fault)."""

    http_status: int
    body: bytes
    message_id: str | None = None
    error: GatewayError | None = None
    duplicate: bool = False


@dataclass
class _Seen:
    message_id: str | None = None
    counterpart_oin: str | None = None


#: Validates the verified dossier element (raises a ``DossierError`` when it may not be imported).
Validator = Callable[[etree._Element, datetime], None]


def validate_inbound_dossier(payload: etree._Element, now: datetime) -> None:
    """Schema + business rules, and no category that may not be shared (E1xx on failure).

    ``payload`` is the dossier as ``open_message`` verified it: already parsed by the hardened
    parser, as the root of its own document. It is validated as it is, not serialised and parsed
    again (the stored bytes are that same tree's serialisation).
    """
    from oso_gateway.dossier.minimise import require_no_category_violations
    from oso_gateway.dossier.validate import validate_tree

    tree = payload.getroottree()
    if tree.getroot() is not payload:  # not its document's root: validate a copy that is
        tree = etree.ElementTree(copy.deepcopy(payload))
    report = validate_tree(tree, now=now)
    report.raise_for_errors()
    require_no_category_violations(payload)


class ReceiveService:
    """Handles one incoming message (bytes in, answer out). Thread-safe if the store is."""

    def __init__(
        self,
        *,
        config: ReceiverConfig,
        directory: DirectoryLike,
        store: InboundStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        validator: Validator = validate_inbound_dossier,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        if not config.identities:
            raise ValueError("a receiver needs at least one identity")
        if handlers is None:
            from oso_gateway.transfer.handlers import default_handlers

            handlers = default_handlers()
        #: one handler per message kind, by wsa:Action (``oso_gateway.transfer.handlers``)
        self.handlers = dict(handlers)
        self.directory = directory
        self.store = store
        self.clock = clock
        self.validator = validator
        #: a message refused with E502, or whose rejection could not be recorded (our database
        #: down): counted here, since ``oso_gateway_rejections_total`` is read from the database
        self.database_errors = DatabaseErrors()
        self.reconfigure(config)

    def reconfigure(self, config: ReceiverConfig) -> None:
        """New trust material or served schools (a live reload), for the next message."""
        by_endpoint: dict[str, list[ServedSchool]] = {}
        for served in config.served:
            by_endpoint.setdefault(served.endpoint, []).append(served)
        self.config, self._by_endpoint = config, by_endpoint

    def handle(self, data: bytes | bytearray, *, now: datetime | None = None) -> ReceiveResult:
        """Open, check and import one message; the answer to send back.

        A ``bytearray`` is handed over: it is emptied once the ciphertext has been read from it
        (``open_message``), so that the largest message is not held while its dossier is.
        """
        now = now or self.clock()
        seen = _Seen()
        size = len(data)
        try:
            return self._accept(data, size, now, seen)
        except GatewayError as exc:
            return self.reject(exc, now=now, size=size, seen=seen)
        except Exception as exc:  # last resort: a bug on peer input is still answered and recorded
            log.exception("unexpected %s handling an inbound message", type(exc).__name__)
            error = InternalError(f"unexpected {type(exc).__name__}")
            return self.reject(error, now=now, size=size, seen=seen)

    def reject(
        self,
        exc: GatewayError,
        *,
        now: datetime,
        size: int,
        seen: _Seen | None = None,
    ) -> ReceiveResult:
        """Log, record and answer a rejection with its SOAP Fault."""
        seen = seen or _Seen()
        unrecorded = isinstance(exc, StoreUnavailable)
        log.warning(  # peer values with %r: a line break in a MessageID cannot forge a log line
            "rejected inbound message %r from OIN %r: %s %r",
            seen.message_id,
            seen.counterpart_oin,
            exc.code,
            exc.detail,
        )
        try:
            self.store.record_rejection(
                message_id=seen.message_id,
                error_code=exc.code,
                counterpart_oin=seen.counterpart_oin,
                message_size=size,
                at=now,
            )
        except GatewayError as store_exc:
            unrecorded = unrecorded or isinstance(store_exc, StoreUnavailable)
            log.error("could not record the rejection: %s %r", store_exc.code, store_exc.detail)
        except Exception:
            log.exception("could not record the rejection")
        if unrecorded:
            self.database_errors.count(RECEIVE)
        return ReceiveResult(
            http_status=exc.http_status,
            body=wire.build_fault(exc),
            message_id=seen.message_id,
            error=exc,
        )

    # --- the steps ---------------------------------------------------------------------------

    def _accept(
        self, data: bytes | bytearray, size: int, now: datetime, seen: _Seen
    ) -> ReceiveResult:
        record = self._prepare(data, size, now, seen)
        if isinstance(record, ReceiveResult):
            return record  # a duplicate, answered with its original receipt
        # Only the record holds the dossier's tree now: the store lets go of it once it has read
        # the searchable fields, before it writes (the largest dossier's tree is ~70 MB).
        try:
            self.store.import_dossier(record)
        except DuplicateMessage:
            # A concurrent delivery of the same MessageID won the exactly-once insert.
            existing = self.store.find_receipt(record.message_id, record.counterpart_oin)
            if existing is None:
                raise
            return self._duplicate(existing, record.message_id, record.payload_digest)
        if record.after_commit is not None:
            try:
                record.after_commit()
            except Exception as exc:  # committed and answered for: the receipt still goes
                log.warning("after-commit step of %r failed: %s", record.message_id, type(exc))
        log.info(
            "accepted message %r (%s) from OIN %s (school %s) for school %s, %d bytes, digest %s",
            record.message_id,
            record.action,
            record.counterpart_oin,
            record.counterpart_school,
            record.our_school,
            record.payload_size,
            record.payload_digest,
        )
        return ReceiveResult(http_status=200, body=record.receipt, message_id=record.message_id)

    def _prepare(
        self, data: bytes | bytearray, size: int, now: datetime, seen: _Seen
    ) -> InboundImport | ReceiveResult:
        """Open and check the message and let its kind's handler accept it: what to store (or
        the answer to a duplicate)."""
        opened = open_message(
            data,
            identities=self.config.identities,
            trust=self.config.trust,
            policy=self.config.policy,
            now=now,
        )
        # logged and kept with a rejection only in a message id's form: the peer chose it
        if shown_id(opened.message_id) == opened.message_id:
            seen.message_id = opened.message_id
        signer_oin = opened.signer.oin
        if signer_oin is None:
            raise OinInvalid(
                f"signing certificate carries no OIN ({opened.signer.fingerprint_sha256})"
            )
        seen.counterpart_oin = signer_oin
        handler = self.handlers.get(opened.action)
        if handler is None:
            raise UnexpectedAction(f"action {opened.action[:200]!r}")
        served = self._recipient(opened.to)

        existing = self.store.find_receipt(opened.message_id, signer_oin)
        if existing is not None:
            return self._duplicate(existing, opened.message_id, opened.payload_digest)

        accepted = handler.accept(
            Inbound(
                opened=opened,
                served=served,
                signer_oin=signer_oin,
                directory=self.directory,
                validator=self.validator,
                now=now,
            )
        )
        receipt = seal_receipt(
            opened,
            served=served,
            counterpart=accepted.counterpart_school,
            signer_oin=signer_oin,
            # the bytes the digest covers (the sender's payload size), not the stored document
            payload_size=len(opened.payload_c14n),
            directory=self.directory,
            sender=_identity_for(self.config.identities, opened.recipient_oin),
            ttl=self.config.receipt_ttl,
            now=now,
        )
        return InboundImport(
            message_id=opened.message_id,
            action=opened.action,
            our_oin=opened.recipient_oin,
            our_school=served.school,
            counterpart_oin=signer_oin,
            counterpart_school=accepted.counterpart_school,
            payload_digest=opened.payload_digest,
            # the size of the bytes the digest covers, as the sender and the receipt count it
            payload_size=len(opened.payload_c14n),
            message_size=size,
            signer_fingerprint=opened.signer.fingerprint_sha256,
            dossier=accepted.payload if accepted.dossier is not None else None,
            receipt=receipt,
            received_at=now,
            tree=accepted.dossier,
            relates_to=accepted.relates_to,
            persist=accepted.persist,
            after_commit=accepted.after_commit,
        )

    def _recipient(self, to: str) -> ServedSchool:
        endpoint, code = split_address(to)
        candidates = self._by_endpoint.get(endpoint, [])
        if code is not None:
            candidates = [c for c in candidates if c.school.code == code]
        if len(candidates) != 1:
            what = "no school we serve" if not candidates else "several schools"
            raise RecipientUnknown(f"wsa:To {to[:200]!r} names {what}")
        return candidates[0]

    def _duplicate(
        self, existing: StoredReceipt, message_id: str, payload_digest: str
    ) -> ReceiveResult:
        if existing.payload_digest != payload_digest:
            raise MessageIdReused(
                f"MessageID {message_id} was imported with digest "
                f"{existing.payload_digest}, now {payload_digest}"
            )
        log.info("duplicate of imported message %r: original receipt resent", message_id)
        return ReceiveResult(
            http_status=200, body=existing.receipt, message_id=message_id, duplicate=True
        )


def _identity_for(identities: Sequence[Identity], oin: str) -> Identity:
    for identity in identities:
        if identity.oin == oin:
            return identity
    return identities[0]
