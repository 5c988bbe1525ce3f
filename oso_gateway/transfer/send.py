"""Sending a dossier: prepare (validate, minimise, look up), seal an attempt, post, verify receipt.

The outbox (``oso_gateway.transfer.outbox``) drives attempts and retries; this module holds the
steps, each testable without HTTP (the transport is an interface: ``RequestsTransport`` for mutual
TLS, or an in-memory one wired straight to a receive service).

Retries and the Timestamp. A sealed envelope carries a Timestamp valid for ``ttl`` (5 minutes).
The outbox keeps the minimised payload (its canonical form, encrypted at rest) and the latest
sealed envelope (the first one made by ``prepare_dossier``). An
attempt re-sends the latest envelope unchanged while it is valid for at least ``RESEAL_MARGIN``
more; otherwise it is sealed afresh with the SAME MessageID and a fresh Timestamp (and so a new
SignatureValue, recorded before it goes out). The receiver detects the retry as a duplicate by
MessageID + payload digest and answers with its original receipt.

Receipt verification: the reply must open (signed by a trusted certificate, encrypted to us),
have action receipt, ``RelatesTo`` = our MessageID, a receipt payload naming our MessageID and the
digest of the payload we sent, be signed by the OIN the directory names for the school, and
confirm our SignatureValue. A receipt that confirms an EARLIER attempt's SignatureValue (the
original receipt of a delivery whose answer we lost, after we re-sealed) is accepted when
everything else matches and that value is one we sent (the store keeps every attempt's), and
logged as such; a confirmation of any other value is refused (it would confirm an envelope we
never sent).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

import requests
from lxml import etree

from oso_gateway.errors import (
    DossierParseError,
    DossierTooLarge,
    GatewayError,
    NotMandated,
    OinMismatch,
    PeerFault,
    PeerHttpError,
    PeerUnreachable,
    ReceiptInvalid,
    ReceiptMismatch,
    RecipientCertificateUntrusted,
    RecipientIsSender,
)
from oso_gateway.limits import MAX_DOSSIER_BYTES, MAX_MESSAGE_BYTES
from oso_gateway.protocol import SOAP_CONTENT_TYPE
from oso_gateway.security.c14n import Canonical, canonical
from oso_gateway.security.namespaces import WSU
from oso_gateway.security.trust import TrustConfig, check_oin, verify_certificate
from oso_gateway.security.wss import Identity, OpenPolicy, SealedMessage, open_message, seal
from oso_gateway.security.xmlparse import ParseLimits, parse_xml
from oso_gateway.transfer import wire
from oso_gateway.transfer.schools import (
    DirectoryEntryLike,
    DirectoryLike,
    School,
    address_for,
    sending_school,
)

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.dossier.disclosure import DisclosureFacts

#: (sending school code, pupil number) -> category keys the parents objected to
ObjectionLookup = Callable[[str, str], Sequence[str]]

log = logging.getLogger(__name__)

REQUEST_TTL = timedelta(minutes=5)
RESEAL_MARGIN = timedelta(seconds=60)
#: a receipt or fault is small; a bigger reply is not read to the end
MAX_REPLY_BYTES = 4 * 1024 * 1024
_DOSSIER_LIMITS = ParseLimits(max_bytes=MAX_DOSSIER_BYTES)


# --- configuration, values --------------------------------------------------------------------


#: OpenSSL's reason in an SSL error's text, e.g. ``[SSL: SSLV3_ALERT_CERTIFICATE_REVOKED]``
_TLS_REASON = re.compile(r"\[SSL: ([A-Z0-9_]{1,80})\]")


def _tls_reason(exc: BaseException) -> str:
    """The TLS reason of a failed post (the peer's alert: our certificate revoked, unknown CA,
    expired), so that the sender's operator learns from the code what the receiver's knew."""
    found = _TLS_REASON.search(str(exc))
    if not found:
        return ""
    reason = found.group(1)
    # OpenSSL answers a CRL past its nextUpdate at the receiver with the same alert as an
    # expired client certificate: an operator whose certificate is valid looked at the wrong
    # end (an operator's drill)
    hint = _ALERT_HINTS.get(reason.removeprefix("SSLV3_ALERT_").removeprefix("TLSV1_ALERT_"))
    return f" (TLS: {reason}{'; ' + hint if hint else ''})"


#: what a peer's TLS alert can mean besides its name
_ALERT_HINTS = {
    "CERTIFICATE_EXPIRED": "the receiving gateway refused our certificate as expired, or its "
    "own CRL of our CA is past its nextUpdate (then it refuses every client)",
    "CERTIFICATE_REVOKED": "the receiving gateway's CRL revokes our certificate",
}


@dataclass(frozen=True, kw_only=True)
class SenderConfig:
    identity: Identity
    trust: TrustConfig
    ttl: timedelta = REQUEST_TTL
    receipt_policy: OpenPolicy = field(
        default_factory=lambda: OpenPolicy(max_ttl=wire.RECEIPT_TTL + timedelta(minutes=1))
    )


@dataclass(frozen=True, kw_only=True)
class PreparedDossier:
    """A dossier ready for the outbox: validated, minimised, recipient looked up."""

    message_id: str
    payload: bytes
    payload_digest: str
    sending_school: School
    recipient: School
    recipient_oin: str
    endpoint: str
    #: per category removed by minimisation: how many elements (counts only, never content)
    removed: dict[str, int]
    #: categories sent and withheld (with the reason) and the inzage record: the disclosure
    disclosure: DisclosureFacts | None = None
    #: BSN / onderwijsnummer, only to find the disclosure by pupil (stored as a keyed hash)
    pupil_number: str | None = field(default=None, repr=False)
    #: the first sealing (attempt 1 may use it while its Timestamp is valid)
    sealed: SealedMessage
    #: the message kind (``wsa:Action``): any registered kind travels through the outbox
    action: str = wire.ACTION_DELIVER
    #: the request this message answers or delivers for (``wsa:RelatesTo``, signed)
    relates_to: str | None = None
    #: the categorie_uitlevering keys the minimised payload holds
    categories: tuple[str, ...] = ()
    #: our identity (OIN) that signed it: the one serving the sending school
    sender_oin: str | None = None


#: Any message kind the outbox sends (a dossier is one kind of payload among several).
PreparedMessage = PreparedDossier


def new_message_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _require_mandate(directory: DirectoryLike, config: SenderConfig, sending: School) -> None:
    """``NotMandated`` (E463) unless ``sending`` has mandated our OIN (checked before queueing)."""
    try:
        directory.check_mandate(config.identity.oin, sending.brin, sending.vestiging)
    except GatewayError as exc:
        raise NotMandated(
            f"school {sending} has not mandated OIN {config.identity.oin} ({exc.code})"
        ) from None


def prepare_dossier(
    data: bytes,
    *,
    to: School,
    directory: DirectoryLike,
    config: SenderConfig,
    now: datetime,
    relates_to: str | None = None,
    choose_config: Callable[[School], SenderConfig] | None = None,
    objections: ObjectionLookup | None = None,
) -> PreparedDossier:
    """Validate, minimise and address a dossier (no I/O besides the directory lookup).

    ``choose_config``: picks the sender config (our identity) that serves the dossier's
    sending school; without it ``config`` signs.
    ``objections(school, pupil_number)``: the categories the parents objected to at the sending
    school; each is withheld (marked OPT-UIT and removed) like the parents' opt-out.
    Raises the dossier's E1xx errors, ``UnknownSchool`` (E430) or ``NotMandated`` (E463).
    """
    from oso_gateway.dossier.categories import present_keys
    from oso_gateway.dossier.disclosure import disclosure_facts, pupil_number
    from oso_gateway.dossier.minimise import minimise, require_no_category_violations
    from oso_gateway.dossier.validate import validate_tree

    # Minimise first (a LAS export may carry data of a VERBODEN or opted-out category), then
    # validate exactly what will be sent. Memory: the largest dossier is tens of MB, so each
    # tree and copy is dropped as soon as the next step no longer needs it (docs/performance.md).
    parsed = _parse_dossier(data)
    number = pupil_number(parsed)
    objected = objections_of(parsed, objections) if objections is not None else ()
    minimised = minimise(parsed, opt_out=objected)
    del parsed  # minimise worked on a copy
    removed = {r.key: r.elements for r in minimised.removed}
    root = minimised.root
    validate_tree(root.getroottree(), now=now).raise_for_errors()
    require_no_category_violations(root)
    sending = sending_school(root)
    if sending.code == to.code:
        raise RecipientIsSender(f"dossier of school {sending.code} addressed to itself")
    categories = present_keys(root)
    disclosure = disclosure_facts(minimised)
    # The payload is the dossier's canonical form: what the Body carries and its digest covers
    # (the tree is used up making it: its attachments' text moves into the form).
    payload = canonical(root, consume=True)
    del root, minimised
    if choose_config is not None:
        config = choose_config(sending)
    prepared = _address_and_seal(
        payload,
        action=wire.ACTION_DELIVER,
        sending=sending,
        to=to,
        directory=directory,
        config=config,
        now=now,
        relates_to=relates_to,
        removed=removed,
        categories=categories,
        sender_oin=config.identity.oin,
    )
    return dataclasses.replace(prepared, disclosure=disclosure, pupil_number=number)


#: hex digits of a dossier's version (``dossier_version``): enough to tell two dossiers of a
#: pupil apart, short enough to type from a printed preview
VERSION_DIGITS = 16


_VERSION_FORM = re.compile(f"[0-9a-f]{{{VERSION_DIGITS}}}")


def typed_version(text: str) -> str | None:
    """A version as someone typed it (any case, spaces around), in the form versions are
    compared in; None when it has no version's form."""
    version = text.strip().lower()
    return version if _VERSION_FORM.fullmatch(version) else None


def payload_version(payload_digest: str) -> str:
    """The version of a prepared dossier: the first ``VERSION_DIGITS`` of its payload digest."""
    return payload_digest[:VERSION_DIGITS]


def _parse_dossier(data: bytes) -> etree._Element:
    """A LAS export's root (E105 too large, E101 not parsed), as every way out reads it."""
    if len(data) > MAX_DOSSIER_BYTES:
        raise DossierTooLarge(f"dossier of {len(data)} bytes; the limit is {MAX_DOSSIER_BYTES}")
    try:
        return parse_xml(data, limits=_DOSSIER_LIMITS).getroot()
    except GatewayError as exc:
        raise DossierParseError(f"the dossier cannot be parsed ({exc.code})") from None


def dossier_version(data: bytes, *, objections: ObjectionLookup | None = None) -> str:
    """The version of a dossier about to leave (pushed, or held for a request), as a preview
    shows it and an inzage names it: ``payload_version`` of the payload ``prepare_dossier``
    makes of ``data`` (minimised, the parents' objections withheld). Another file, or another
    objection since, gives another version; the same export and objections give the same one."""
    from oso_gateway.dossier.minimise import minimise
    from oso_gateway.security import primitives

    parsed = _parse_dossier(data)
    objected = objections_of(parsed, objections) if objections is not None else ()
    root = minimise(parsed, opt_out=objected).root
    del parsed
    return payload_version(primitives.sha256_hex(canonical(root, consume=True).data))


def objections_of(root: etree._Element, objections: ObjectionLookup) -> Sequence[str]:
    """The categories the parents of the dossier's pupil objected to at its sending school
    (none when the dossier names no pupil number): what every way out withholds, a push, a
    pull's delivery and the previews of both."""
    from oso_gateway.dossier.disclosure import pupil_number

    number = pupil_number(root)
    return () if number is None else objections(sending_school(root).code, number)


def _address_and_seal(
    payload: Canonical,
    *,
    action: str,
    sending: School,
    to: School,
    directory: DirectoryLike,
    config: SenderConfig,
    now: datetime,
    relates_to: str | None,
    removed: dict[str, int],
    message_id: str | None = None,
    categories: tuple[str, ...] = (),
    sender_oin: str | None = None,
) -> PreparedDossier:
    """Check our mandate for ``sending``, look ``to`` up, and seal the first attempt: a recipient
    certificate or key-transport problem surfaces before queueing, and it yields the payload
    digest exactly as the receiver will compute it."""
    _require_mandate(directory, config, sending)
    entry = directory.lookup(to.brin, to.vestiging)
    message_id = message_id or new_message_id()
    sealed = seal_attempt(
        payload,
        message_id=message_id,
        to=to,
        directory=directory,
        config=config,
        now=now,
        action=action,
        relates_to=relates_to,
    )
    return PreparedDossier(
        message_id=message_id,
        payload=payload.data,
        payload_digest=sealed.payload_digest,
        sending_school=sending,
        recipient=to,
        recipient_oin=entry.oin,
        endpoint=entry.endpoint,
        removed=removed,
        sealed=sealed,
        action=action,
        relates_to=relates_to,
        categories=categories,
        sender_oin=sender_oin,
    )


def seal_attempt(
    payload: bytes | Canonical,
    *,
    message_id: str,
    to: School,
    directory: DirectoryLike,
    config: SenderConfig,
    now: datetime,
    action: str = wire.ACTION_DELIVER,
    relates_to: str | None = None,
) -> SealedMessage:
    """Seal ``payload`` (any message kind: ``action``) for the school's gateway (directory:
    endpoint, certificate, pin); ``relates_to`` becomes the signed ``wsa:RelatesTo``.

    ``payload``: the stored payload (parsed and canonicalised here; the tree is dropped before
    sealing) or its canonical form."""
    entry = directory.lookup(to.brin, to.vestiging)
    check_recipient_certificate(entry, trust=config.trust, now=now)
    if not isinstance(payload, Canonical):
        payload = canonical(parse_xml(payload, limits=_DOSSIER_LIMITS).getroot())
    sealed = seal(
        payload,
        sender=config.identity,
        recipient_certificate=entry.encryption_certificate,
        to=address_for(entry.endpoint, to),
        action=action,
        message_id=message_id,
        now=now,
        relates_to=relates_to,
        key_transport=entry.key_transport,
        ttl=config.ttl,
    )
    del payload
    if len(sealed.data) > MAX_MESSAGE_BYTES:  # canonicalisation can grow a dossier a little
        raise DossierTooLarge(
            f"sealed message of {len(sealed.data)} bytes; the limit is {MAX_MESSAGE_BYTES}"
        )
    return sealed


def prepare_message(
    payload: etree._Element,
    *,
    action: str,
    sending: School,
    to: School,
    directory: DirectoryLike,
    config: SenderConfig,
    now: datetime,
    relates_to: str | None = None,
    message_id: str | None = None,
) -> PreparedMessage:
    """Address and seal a message of another kind than a dossier (a request, an answer).

    The caller built and validated ``payload`` against its kind's schema. Raises
    ``NotMandated`` (E463) when ``sending`` has not mandated our OIN, ``UnknownSchool`` (E430).
    """
    return _address_and_seal(
        canonical(payload),
        action=action,
        sending=sending,
        to=to,
        directory=directory,
        config=config,
        now=now,
        relates_to=relates_to,
        removed={},
        message_id=message_id,
    )


def check_recipient_certificate(
    entry: DirectoryEntryLike, *, trust: TrustConfig, now: datetime
) -> None:
    """The directory's encryption certificate for the school's gateway must be trusted for
    encryption now (chain, revocation, validity) and carry that gateway's OIN; else
    ``RecipientCertificateUntrusted`` (E321) and nothing is sealed for it."""
    cert = entry.encryption_certificate
    try:
        verified = verify_certificate(cert, trust=trust, now=now, purpose="encryption")
        check_oin(verified, entry.oin)
    except GatewayError as exc:
        raise RecipientCertificateUntrusted(
            f"encryption certificate of gateway {entry.oin} in the directory: "
            f"{exc.code} {exc.detail}"
        ) from None


def sealed_expires(sealed: bytes) -> datetime | None:
    """The ``wsu:Expires`` of one of OUR sealed envelopes (None when it cannot be read).

    Only the header is parsed (incrementally, up to the Expires element): the Body of a large
    dossier's envelope is never read into a tree for this. Our own bytes, so no parse limits
    beyond the parser's defaults (no entities, no network).
    """
    parser = etree.XMLPullParser(
        events=("end",), tag=f"{{{WSU}}}Expires", resolve_entities=False, no_network=True
    )
    step = 16 * 1024
    try:
        for start in range(0, len(sealed), step):
            parser.feed(sealed[start : start + step])
            for _event, element in parser.read_events():
                if isinstance(element, etree._Element):
                    text = (element.text or "").strip().replace("Z", "+00:00")
                    return datetime.fromisoformat(text)
    except (etree.XMLSyntaxError, ValueError):
        return None
    return None


# --- transport --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TransportResponse:
    status: int
    body: bytes


class Transport(Protocol):
    def post(self, url: str, data: bytes, *, action: str) -> TransportResponse:
        """POST a SOAP message; raise ``PeerUnreachable`` when no HTTP answer came back."""
        ...


class RequestsTransport:
    """Mutual-TLS POST with ``requests``: our client certificate, the server verified against
    the trust anchors (CA bundle), keep-alive per thread."""

    def __init__(
        self,
        *,
        cert_file: str,
        key_file: str,
        ca_bundle: str,
        timeout: float = 60.0,
    ) -> None:
        self.cert = (cert_file, key_file)
        self.verify = ca_bundle
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.cert = self.cert
            session.verify = self.verify
            session.trust_env = False
            self._local.session = session
        return session

    def post(self, url: str, data: bytes, *, action: str) -> TransportResponse:
        if not url.startswith("https://"):
            raise PeerUnreachable(f"refusing a non-TLS endpoint {url[:200]!r}")
        headers = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{action}"'}
        try:
            with self._session().post(
                url,
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            ) as response:
                body = b""
                for chunk in response.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > MAX_REPLY_BYTES:
                        raise PeerHttpError(response.status_code, "reply over the size limit")
                return TransportResponse(status=response.status_code, body=body)
        except requests.RequestException as exc:
            self._local.session = None
            raise PeerUnreachable(
                f"{type(exc).__name__} posting to {url[:200]}{_tls_reason(exc)}"
            ) from None

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


# --- one attempt ------------------------------------------------------------------------------


Outcome = Literal["delivered", "retry", "failed"]


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    outcome: Outcome
    error: GatewayError | None = None
    receipt: bytes | None = None
    receipt_info: wire.Receipt | None = None
    receipt_signer_fingerprint: str | None = None


@dataclass(frozen=True, kw_only=True)
class Expected:
    """What a receipt must confirm."""

    message_id: str
    signature_value: bytes
    payload_digest: str
    recipient_oin: str
    #: the message was sealed more than once (a receipt may confirm an earlier attempt) ...
    resealed: bool = False
    #: ... namely one of these: the SignatureValue of every envelope sent for the message
    earlier_signature_values: frozenset[bytes] = frozenset()
    #: the school we addressed: the receipt's Receiver must name it (None: not checked)
    recipient_school: School | None = None


def post_and_verify(
    data: bytes,
    *,
    endpoint: str,
    expected: Expected,
    transport: Transport,
    config: SenderConfig,
    clock: Callable[[], datetime],
    action: str = wire.ACTION_DELIVER,
) -> AttemptResult:
    """Post one sealed envelope and classify the answer (never raises).

    An unexpected exception while posting counts as the peer being unreachable (retried); one
    while reading the reply means the receipt could not be processed (``ReceiptInvalid``, failed:
    the peer would answer a retry with the same receipt). Both are logged with their traceback.
    """
    try:
        response = transport.post(endpoint, data, action=action)
    except GatewayError as exc:
        return _classify(exc)
    except Exception as exc:  # a transport bug must not kill the outbox worker
        log.exception("posting %s raised %s", expected.message_id, type(exc).__name__)
        return _classify(PeerUnreachable(f"posting raised {type(exc).__name__}"))
    if response.status != 200:
        fault = wire.parse_fault(response.body)
        if fault is not None:
            return AttemptResult(
                outcome="retry" if fault.remote_transient else "failed", error=fault
            )
        http_error = PeerHttpError(response.status)
        return AttemptResult(
            outcome="retry" if http_error.is_transient else "failed", error=http_error
        )
    try:
        receipt, fingerprint = verify_receipt(
            response.body, expected=expected, config=config, now=clock()
        )
    except GatewayError as exc:
        return _classify(exc)
    except Exception as exc:  # e.g. an odd value in the peer's reply our parsers choke on
        log.exception("the reply to %s raised %s", expected.message_id, type(exc).__name__)
        return _classify(ReceiptInvalid(f"the reply raised {type(exc).__name__}"))
    return AttemptResult(
        outcome="delivered",
        receipt=response.body,
        receipt_info=receipt,
        receipt_signer_fingerprint=fingerprint,
    )


def _classify(exc: GatewayError) -> AttemptResult:
    transient = exc.transient or (isinstance(exc, PeerFault) and exc.remote_transient)
    return AttemptResult(outcome="retry" if transient else "failed", error=exc)


def verify_receipt(
    data: bytes, *, expected: Expected, config: SenderConfig, now: datetime
) -> tuple[wire.Receipt, str]:
    """Open and check a receipt; returns it and its signer's certificate fingerprint."""
    opened = open_message(
        data,
        identities=(config.identity,),
        trust=config.trust,
        policy=config.receipt_policy,
        now=now,
    )
    if opened.action != wire.ACTION_RECEIPT:
        raise ReceiptMismatch(f"reply action is {opened.action[:200]!r}, not a receipt")
    if opened.relates_to != expected.message_id:
        raise ReceiptMismatch(f"receipt relates to {str(opened.relates_to)[:100]!r}")
    if opened.signer.oin != expected.recipient_oin:
        raise OinMismatch(
            f"receipt signed by OIN {opened.signer.oin}, directory says {expected.recipient_oin}"
        )
    receipt = wire.parse_receipt(opened.payload)
    if receipt.request_message_id != expected.message_id:
        raise ReceiptMismatch("receipt names another request MessageID")
    if receipt.payload_digest != expected.payload_digest:
        raise ReceiptMismatch(
            f"receipt digest {receipt.payload_digest} is not ours {expected.payload_digest}"
        )
    if expected.recipient_school is not None and (
        School(receipt.receiver_brin, receipt.receiver_vestiging) != expected.recipient_school
    ):
        raise ReceiptMismatch(
            f"receipt names receiver school {receipt.receiver_brin}{receipt.receiver_vestiging}"
            f", we addressed {expected.recipient_school}"
        )
    if opened.signature_confirmation != expected.signature_value:
        earlier = expected.resealed and (
            opened.signature_confirmation in expected.earlier_signature_values
        )
        if not earlier:
            raise ReceiptMismatch("receipt does not confirm a SignatureValue of ours")
        log.info(
            "receipt for %s confirms an earlier attempt's signature (original receipt)",
            expected.message_id,
        )
    return receipt, opened.signer.fingerprint_sha256
