"""The transfer log's hash chain: canonical events, chaining, verification, anchors.

Pure: no storage here. The store keeps events in order; this module says what an event may hold,
how it is hashed, and whether a sequence of stored events is the untouched chain.

Privacy by construction: an event holds only whitelisted fields, each with a strict format
(identifiers, codes, numbers, digests). There is no free-text field, so no pupil name, BSN, birth
date or address can reach the log even by mistake.

Chain: ``hash_n = SHA-256(prev_hash_n || canonical_json(event_n))`` with ``prev_hash_1`` = 64 zeros
and ``seq`` consecutive from 1. Editing, deleting, inserting or reordering events breaks a link.
Truncating the tail is caught by an *anchor*: the head (seq, hash) signed with the gateway key and
kept apart from the log (a file, another system).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from oso_gateway.errors import LogAnchorInvalid, LogEventInvalid
from oso_gateway.protocol import BRIN_PATTERN, OIN_PATTERN, VESTIGING_PATTERN
from oso_gateway.security.trust import fingerprint

GENESIS = "0" * 64

_ID = r"[A-Za-z0-9:._@/#?=\-]{1,200}"
FIELD_FORMATS: Mapping[str, str] = {
    "at": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z",
    "direction": r"in|out|local",
    "kind": r"message|operator|system|api",
    "message_id": r"urn:uuid:[0-9a-f-]{36}",
    "action": _ID,
    "status": r"[a-z_]{1,32}",
    "error_code": r"OSO-E\d{3}",
    "counterpart_brin": BRIN_PATTERN,
    "counterpart_vestiging": VESTIGING_PATTERN,
    "counterpart_oin": OIN_PATTERN,
    "school_brin": BRIN_PATTERN,
    "school_vestiging": VESTIGING_PATTERN,
    "size_bytes": r"\d{1,12}",
    "attempt": r"\d{1,6}",
    "payload_digest": r"[0-9a-f]{64}",
    "signer_fingerprint": r"[0-9a-f]{64}",
    "peer_fingerprint": r"[0-9a-f]{64}",
    "operator": r"[a-z0-9._-]{1,64}",
    "operation": r"[a-z_.]{1,64}",
    # a school-API call: the client id (never its secret), HTTP method and answer status
    "api_client": r"c-[0-9a-f]{16}",
    "http_method": r"GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS",
    "http_status": r"[1-5][0-9]{2}",
    "count": r"\d{1,9}",
    "key_id": r"[0-9a-f]{16}",
    # a pruning step of the log itself: the last pruned event, which the kept chain links to
    "log_seq": r"\d{1,18}",
    "log_hash": r"[0-9a-f]{64}",
}
_COMPILED = {name: re.compile(pattern, re.ASCII) for name, pattern in FIELD_FORMATS.items()}
_REQUIRED = ("at", "kind", "status")


def make_event(**fields: object) -> dict[str, str]:
    """A checked event: whitelisted fields only, each in its strict format; None is dropped."""
    event: dict[str, str] = {}
    for name, value in fields.items():
        if value is None:
            continue
        pattern = _COMPILED.get(name)
        if pattern is None:
            raise LogEventInvalid(f"unknown transfer-log field {name!r}")
        text = _format_value(value)
        if not pattern.fullmatch(text):
            raise LogEventInvalid(f"transfer-log field {name!r} does not have the required form")
        event[name] = text
    missing = [name for name in _REQUIRED if name not in event]
    if missing:
        raise LogEventInvalid(f"transfer-log event lacks {', '.join(missing)}")
    return event


#: the forms ``make_event`` accepts an event's time in (``FIELD_FORMATS["at"]``)
_AT_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")


def event_time(event: Mapping[str, object]) -> datetime | None:
    """When an event (or an anchor, as ``{"at": anchor.at}``) says it happened: its ``at``
    field in UTC, which its hash (or signature) covers; None when it has none of its forms."""
    at = event.get("at")
    if isinstance(at, str):
        for form in _AT_FORMATS:
            try:
                return datetime.strptime(at, form).replace(tzinfo=UTC)
            except ValueError:
                continue
    return None


def _format_value(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise LogEventInvalid("transfer-log time must be timezone-aware")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, bool):
        raise LogEventInvalid("booleans are not transfer-log values")
    if isinstance(value, int | str):
        return str(value)
    raise LogEventInvalid(f"unsupported transfer-log value type {type(value).__name__}")


def canonical(seq: int, event: Mapping[str, str]) -> bytes:
    """The bytes that are hashed: sorted-key compact JSON of the event plus its sequence number."""
    body = dict(event)
    body["seq"] = str(seq)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def link_hash(prev_hash: str, seq: int, event: Mapping[str, str]) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(seq, event)).hexdigest()


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """One row as the store holds it."""

    seq: int
    prev_hash: str
    hash: str
    event: Mapping[str, str]


def chain(
    events: Iterable[Mapping[str, str]], *, after: tuple[int, str] = (0, GENESIS)
) -> list[StoredEvent]:
    """Chain new events after the head ``(seq, hash)``; returns the rows to append."""
    seq, prev = after
    rows = []
    for event in events:
        seq += 1
        digest = link_hash(prev, seq, event)
        rows.append(StoredEvent(seq=seq, prev_hash=prev, hash=digest, event=dict(event)))
        prev = digest
    return rows


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""


def verify_chain(
    rows: Iterable[StoredEvent], *, start: tuple[int, str] = (0, GENESIS)
) -> VerifyResult:
    """Walk the stored rows in order; name the first broken link. ``start``: the (seq, hash)
    the first row follows (a pruned log's base; the genesis otherwise)."""
    expected_seq, prev = start[0] + 1, start[1]
    checked = 0
    for row in rows:
        problem = ""
        if row.seq != expected_seq:
            kind = "missing" if row.seq > expected_seq else "duplicate or reordered"
            problem = f"sequence {kind}: expected {expected_seq}, found {row.seq}"
        elif row.prev_hash != prev:
            problem = "previous-hash link does not match the event before it"
        elif link_hash(prev, row.seq, row.event) != row.hash:
            problem = "event content does not match its hash (edited)"
        if problem:
            return _broken(checked, expected_seq - 1, prev, expected_seq, problem)
        prev = row.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(ok=True, checked=checked, head_seq=expected_seq - 1, head_hash=prev)


def base_signed(anchors: Iterable[Anchor], start: tuple[int, str]) -> bool:
    """Whether a base anchor names exactly ``start`` (signatures are checked separately)."""
    return any(a.kind == BASE and (a.seq, a.hash) == start for a in anchors)


def anchors_before(anchors: Iterable[Anchor], start: tuple[int, str]) -> int:
    """How many anchors name an event before ``start`` (pruned: checkable only in an archive)."""
    return sum(1 for anchor in anchors if 0 < anchor.seq < start[0])


def _broken(checked: int, head_seq: int, head_hash: str, seq: int, reason: str) -> VerifyResult:
    return VerifyResult(
        ok=False,
        checked=checked,
        head_seq=head_seq,
        head_hash=head_hash,
        broken_seq=seq,
        reason=reason,
    )


# --- anchors -------------------------------------------------------------------------------


#: an anchor of the log's head (``log anchor``, and periodically)
HEAD = "head"
#: an anchor of the log's new base, signed by each pruning step before it deletes anything: a
#: pruned log is accepted only from a base such an anchor names
BASE = "base"
_STATEMENTS = {
    HEAD: "oso-gateway transfer-log anchor v1",
    BASE: "oso-gateway transfer-log base v1",
}


@dataclass(frozen=True, kw_only=True)
class Anchor:
    seq: int
    hash: str
    at: str
    signer_fingerprint: str
    signature: str  # hex RSA-PSS-SHA256 over the anchor statement
    #: what is signed: the head then (``HEAD``), or where the log starts after pruning (``BASE``)
    kind: str = HEAD

    def statement(self) -> bytes:
        return f"{_STATEMENTS[self.kind]}|{self.seq}|{self.hash}|{self.at}".encode()

    def to_json(self) -> str:
        fields = dict(self.__dict__)
        if self.kind == HEAD:  # as anchors were written before there were bases
            del fields["kind"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Anchor:
        try:
            data = json.loads(line)
            anchor = cls(
                seq=int(data["seq"]),
                hash=str(data["hash"]),
                at=str(data["at"]),
                signer_fingerprint=str(data["signer_fingerprint"]),
                signature=str(data["signature"]),
                kind=str(data.get("kind", HEAD)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise LogAnchorInvalid("anchor entry is not valid JSON of the expected shape") from None
        if not re.fullmatch(r"[0-9a-f]{64}", anchor.hash) or anchor.seq < 0:
            raise LogAnchorInvalid("anchor entry has a malformed head")
        if anchor.kind not in _STATEMENTS:
            raise LogAnchorInvalid("anchor entry is of an unknown kind")
        return anchor


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def make_anchor(
    *,
    seq: int,
    head_hash: str,
    now: datetime,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    kind: str = HEAD,
) -> Anchor:
    at = _format_value(now)
    unsigned = Anchor(
        seq=seq,
        hash=head_hash,
        at=at,
        signer_fingerprint=_fp(certificate),
        signature="",
        kind=kind,
    )
    signature = key.sign(unsigned.statement(), _PSS, hashes.SHA256()).hex()
    return replace(unsigned, signature=signature)


def verify_anchor(anchor: Anchor, certificate: x509.Certificate) -> None:
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or anchor.signer_fingerprint != _fp(
        certificate
    ):
        raise LogAnchorInvalid("anchor was not signed by this gateway certificate")
    try:
        public_key.verify(
            bytes.fromhex(anchor.signature), anchor.statement(), _PSS, hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        raise LogAnchorInvalid("anchor signature does not verify") from None


def check_against_anchors(
    rows: list[StoredEvent], anchors: Iterable[Anchor], *, start: tuple[int, str] = (0, GENESIS)
) -> VerifyResult:
    """Verify the chain from ``start``, then that every anchored head is still in it (catches
    truncation). An anchor at the start itself must name its hash; one before it (a pruned
    event) is not checked here (``anchors_before``)."""
    result = verify_chain(rows, start=start)
    if not result.ok:
        return result
    by_seq = {row.seq: row.hash for row in rows}
    by_seq[start[0]] = start[1]
    for anchor in anchors:
        if anchor.seq < start[0] or anchor.seq == 0:
            continue
        if anchor.seq not in by_seq:
            return _broken(
                result.checked,
                result.head_seq,
                result.head_hash,
                result.head_seq + 1,
                f"log ends at {result.head_seq}; anchored event {anchor.seq} is gone (truncated)",
            )
        if by_seq[anchor.seq] != anchor.hash:
            return _broken(
                result.checked,
                result.head_seq,
                result.head_hash,
                anchor.seq,
                f"event {anchor.seq} differs from the anchored head (rewritten)",
            )
    return result


def _fp(certificate: x509.Certificate) -> str:
    return fingerprint(certificate)
