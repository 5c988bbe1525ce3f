"""The transfer log for operators: filter, one message's timeline, export, verify, anchor.

The chain itself (event fields, hashing, anchor signatures) is ``oso_gateway.store.logchain``;
storage is ``oso_gateway.store.translog``. Everything here reads the chained log only, so nothing
it returns can hold pupil personal data: an event has whitelisted, strictly formatted fields.

Anchors: ``write_anchor`` signs the log head (seq, hash) with the gateway key and appends it as a
JSON line to the anchor file (``Settings.anchor_file``). ``verify_log`` checks the chain, every
anchor's signature against our certificates, and that every anchored head is still in the log:
so a truncated tail is caught as long as the anchor file (or a copy kept elsewhere) survives.
``maybe_anchor`` is the periodic hook for a long-running worker.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cryptography import x509

from oso_gateway.config import Settings
from oso_gateway.errors import (
    LogAnchorInvalid,
    OutputUnwritable,
    StoreUnavailable,
)
from oso_gateway.protocol import SCHOOL_PATTERN
from oso_gateway.security.trust import fingerprint
from oso_gateway.security.wss import Identity
from oso_gateway.store.logchain import (
    BASE,
    FIELD_FORMATS,
    GENESIS,
    HEAD,
    Anchor,
    StoredEvent,
    VerifyResult,
    anchors_before,
    base_signed,
    check_against_anchors,
    make_anchor,
    verify_anchor,
)
from oso_gateway.store.logchain import event_time as logchain_event_time
from oso_gateway.store.repository import Store
from oso_gateway.store.translog import PRUNE_OPERATION

log = logging.getLogger(__name__)

_RELATIVE = re.compile(r"(\d{1,6})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SCHOOL = re.compile(SCHOOL_PATTERN)


# --- reading and filtering -------------------------------------------------------------------


def parse_when(text: str, *, now: datetime) -> datetime:
    """An ISO 8601 date or time (no zone: UTC), or a span back from ``now``: ``90m``, ``24h``,
    ``7d``, ``2w``. ``ValueError`` otherwise."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def event_time(event: Mapping[str, str]) -> datetime:
    """``logchain.event_time`` of one of our events (or anchors); ``ValueError`` without one."""
    at = logchain_event_time(event)
    if at is None:
        raise ValueError("the event has no time of the transfer log's form")
    return at


def normalise_school(text: str) -> str:
    """``00yy`` → ``00YY``; BRIN (4) or BRIN + vestiging (6). ``ValueError`` otherwise."""
    school = text.strip().upper()
    if not _SCHOOL.fullmatch(school):
        raise ValueError("a school is a BRIN (e.g. 00YY) or BRIN + vestiging (e.g. 00YY00)")
    return school


@dataclass(frozen=True, kw_only=True)
class LogFilter:
    status: str | None = None
    #: a school on either side, ours or the counterpart: BRIN (any vestiging) or BRIN +
    #: vestiging (the counterpart alone hid a vendor's own school's transfers: a walkthrough)
    school: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    direction: str | None = None
    message_id: str | None = None
    #: only events of this kind (message, api, operator, system)
    kind: str | None = None

    def matches(self, event: Mapping[str, str]) -> bool:
        if self.status is not None and event.get("status") != self.status:
            return False
        if self.kind is not None and event.get("kind") != self.kind:
            return False
        if self.direction is not None and event.get("direction") != self.direction:
            return False
        if self.message_id is not None and event.get("message_id") != self.message_id:
            return False
        if self.school is not None:
            theirs = event.get("counterpart_brin", "") + event.get("counterpart_vestiging", "")
            ours = event.get("school_brin", "") + event.get("school_vestiging", "")
            if not any(s and s.startswith(self.school) for s in (theirs, ours)):
                return False
        if self.since is not None or self.until is not None:
            at = event_time(event)
            if self.since is not None and at < self.since:
                return False
            if self.until is not None and at > self.until:
                return False
        return True


def _entries(store: Store, *, containing: str | None = None) -> list[StoredEvent]:
    return store.log_entries(containing=containing)


def select_events(
    store: Store, where: LogFilter = LogFilter(), *, limit: int | None = None
) -> list[StoredEvent]:
    """Events matching ``where`` in log order; with ``limit``, the newest ``limit`` of them."""
    containing = None
    if where.message_id is not None:
        containing = json.dumps({"message_id": where.message_id}, separators=(",", ":"))[1:-1]
    found = [row for row in _entries(store, containing=containing) if where.matches(row.event)]
    return found[-limit:] if limit is not None and limit > 0 else found


def resolve_message_id(store: Store, text: str) -> list[str]:
    """The logged message ids that ``text`` names: a full id, with or without ``urn:uuid:``, or
    a unique prefix of its UUID. Several means ambiguous; none means unknown."""
    wanted = text.strip().lower().removeprefix("urn:uuid:")
    if not re.fullmatch(r"[0-9a-f-]{1,36}", wanted):
        return []
    ids: dict[str, None] = {}
    for row in _entries(store, containing=f'"message_id":"urn:uuid:{wanted}'):
        message_id = row.event.get("message_id", "")
        if message_id.removeprefix("urn:uuid:").startswith(wanted):
            ids.setdefault(message_id, None)
    exact = f"urn:uuid:{wanted}"
    return [exact] if exact in ids else list(ids)


def timeline(store: Store, message_id: str) -> list[StoredEvent]:
    """Every logged event of one message (both directions, operator actions), in order."""
    return select_events(store, LogFilter(message_id=message_id))


def event_dict(row: StoredEvent) -> dict[str, Any]:
    """One event as plain JSON data: ``seq``, ``hash``, ``prev_hash`` and the event fields."""
    return {"seq": row.seq, "prev_hash": row.prev_hash, "hash": row.hash, **row.event}


# --- export ----------------------------------------------------------------------------------

EXPORT_FORMATS = ("csv", "jsonl")
CSV_COLUMNS: tuple[str, ...] = ("seq", *FIELD_FORMATS, "prev_hash", "hash")


def _csv_safe(value: str) -> str:
    """Keep spreadsheets from reading a value as a formula (an action can start with ``-``)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def export_events(rows: Iterable[StoredEvent], fmt: str, out: IO[str]) -> int:
    """Write ``rows`` as CSV (one column per event field) or JSON lines (``seq``, ``prev_hash``,
    ``hash``, ``event``: enough to re-verify the chain elsewhere). Returns the row count."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose {', '.join(EXPORT_FORMATS)}")
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            fields = {k: _csv_safe(v) for k, v in row.event.items()}
            writer.writerow(
                {**fields, "seq": row.seq, "prev_hash": row.prev_hash, "hash": row.hash}
            )
            count += 1
        return count
    for row in rows:
        line = {"seq": row.seq, "prev_hash": row.prev_hash, "hash": row.hash, "event": row.event}
        out.write(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")
        count += 1
    return count


def read_export(path: Path) -> list[StoredEvent]:
    """The events of a JSON-lines export (``export_events(..., "jsonl", ...)``), to verify it
    apart from the database. ``ValueError`` naming the line when one is malformed."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                event = data["event"]
                if not isinstance(event, dict) or not all(
                    isinstance(v, str) for v in event.values()
                ):
                    raise TypeError
                rows.append(
                    StoredEvent(
                        seq=int(data["seq"]),
                        prev_hash=str(data["prev_hash"]),
                        hash=str(data["hash"]),
                        event=event,
                    )
                )
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path} line {number} is not an exported event") from None
    return rows


# --- anchors ---------------------------------------------------------------------------------


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor in the file, in order; no file: none. A malformed line: ``LogAnchorInvalid``
    naming its line number."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise LogAnchorInvalid(f"cannot read anchor file {path} ({type(exc).__name__})") from None
    anchors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            anchors.append(Anchor.from_json(line))
        except LogAnchorInvalid as exc:
            raise LogAnchorInvalid(f"{path} line {number}: {exc.detail}") from None
    return anchors


def head(store: Store) -> tuple[int, str]:
    """(seq, hash) of the newest log entry ((0, 64 zeros) for an empty log)."""
    return store.log_head()


def write_anchor(store: Store, identity: Identity, path: Path, *, now: datetime) -> Anchor:
    """Sign the current head with ``identity`` and append it to the anchor file (created 0644,
    its directory as needed); the line is flushed to disk before this returns."""
    seq, head_hash = head(store)
    anchor = _sign_into(path, identity, seq=seq, anchored_hash=head_hash, now=now, kind=HEAD)
    log.info("transfer log anchored at event %d (%s)", seq, head_hash[:16])
    return anchor


def write_base_anchor(
    identity: Identity, path: Path, *, seq: int, base_hash: str, now: datetime
) -> Anchor:
    """Sign ``(seq, base_hash)`` as the log's new base (a pruning step, before it commits) and
    append it to the anchor file, on disk before this returns: without the gateway key nobody
    can make a base that ``verify_log`` accepts."""
    try:
        return _sign_into(path, identity, seq=seq, anchored_hash=base_hash, now=now, kind=BASE)
    except OSError as exc:
        raise OutputUnwritable(
            f"cannot write the anchor file {path}: {exc.strerror or type(exc).__name__}"
        ) from None


def _sign_into(
    path: Path, identity: Identity, *, seq: int, anchored_hash: str, now: datetime, kind: str
) -> Anchor:
    """Sign an anchor of ``kind`` and append it to the anchor file, synced to disk."""
    anchor = make_anchor(
        seq=seq,
        head_hash=anchored_hash,
        now=now,
        key=identity.private_key,
        certificate=identity.certificate,
        kind=kind,
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)  # no personal data
    try:
        os.write(fd, (anchor.to_json() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return anchor


class BaseSigner:
    """``prune_log``'s keeper: the anchor file, read afresh for every batch (pruning goes only as
    far as its anchors vouch for the stored events), and the new base signed into it with
    ``identity()`` (called when a batch is pruned: the key is read only then)."""

    def __init__(self, path: Path, identity: Callable[[], Identity]) -> None:
        self.path = path
        self.identity = identity

    def anchors(self) -> list[Anchor]:
        return read_anchors(self.path)

    def sign(self, seq: int, base_hash: str, now: datetime) -> Anchor:
        return write_base_anchor(self.identity(), self.path, seq=seq, base_hash=base_hash, now=now)


def anchor_due(
    last: Anchor | None, head_seq: int, *, now: datetime, every_events: int, every: timedelta
) -> bool:
    """True when events were appended since ``last`` and either ``every_events`` of them or
    ``every`` time has passed since it."""
    if last is None:
        return head_seq > 0
    if head_seq <= last.seq:
        return False
    return head_seq - last.seq >= every_events or now - event_time({"at": last.at}) >= every


def maybe_anchor(
    store: Store, settings: Settings, now: datetime, *, identity: Identity
) -> Anchor | None:
    """Anchor when ``log.anchor_every_events`` events or ``log.anchor_every_minutes`` passed since
    the last anchor (the hook for the outbox worker / ``serve``). ``identity``: the signing key
    (``runtime.first_identity``)."""
    path = settings.anchor_file
    anchors = read_anchors(path)
    seq, _hash = head(store)
    due = anchor_due(
        max(anchors, key=lambda a: a.seq, default=None),  # a base anchor may come last
        seq,
        now=now,
        every_events=settings.log.anchor_every_events,
        every=timedelta(minutes=settings.log.anchor_every_minutes),
    )
    if not due:
        return None
    return write_anchor(store, identity, path, now=now)


def anchor_periodically(
    stop: threading.Event,
    store: Store,
    settings: Settings,
    *,
    identity: Identity,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    poll_seconds: float = 30.0,
) -> None:
    """Run ``maybe_anchor`` every ``poll_seconds`` until ``stop`` is set, and once more at the
    end (for a daemon thread beside the outbox worker). Failures are logged, never raised."""
    while True:
        try:
            maybe_anchor(store, settings, clock(), identity=identity)
        except Exception as exc:  # a worker thread must not die of a full disk or a DB outage
            code = getattr(exc, "code", type(exc).__name__)
            log.error("transfer-log anchoring failed: %s", code)
        if stop.wait(poll_seconds):
            try:
                maybe_anchor(store, settings, clock(), identity=identity)
            except Exception as exc:
                log.error("transfer-log anchoring failed: %s", getattr(exc, "code", "error"))
            return


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LogReport:
    """Outcome of ``verify_log``. ``broken_seq``: the first broken link (event sequence number);
    ``broken_anchor``: the anchor file line at fault, when the anchor itself is bad."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    anchors: int
    last_anchor_seq: int | None
    unanchored: int
    broken_seq: int | None = None
    broken_anchor: int | None = None
    reason: str = ""
    #: the last pruned event the checked chain starts after (0: the log starts at event 1)
    base_seq: int = 0
    #: anchors that name a pruned event: not checked against this log (they are in an archive)
    anchors_before_base: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Signers:
    """Whose anchor signatures ``verify_log`` accepts: our identities' certificates, and
    earlier ones (a renewal) only for an anchor dated within the certificate's validity, so
    that an old key, which may have been let go less carefully than a current one, cannot sign
    a new head (a security review)."""

    current: tuple[x509.Certificate, ...]
    earlier: tuple[x509.Certificate, ...] = ()


def _outside_validity(anchor: Anchor, certificate: x509.Certificate) -> bool:
    try:
        at = datetime.fromisoformat(anchor.at.replace("Z", "+00:00"))
    except ValueError:
        return True
    if at.tzinfo is None:
        return True
    return not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc


def _anchor_problem(
    number: int,
    anchor: Anchor,
    current: dict[str, x509.Certificate],
    earlier: dict[str, x509.Certificate],
) -> str:
    """What is wrong with one anchor's signer or signature ("" when nothing)."""
    fp = anchor.signer_fingerprint
    certificate = current.get(fp) or earlier.get(fp)
    if certificate is None:
        return (
            f"anchor {number} was signed by a certificate that is not ours ({fp}); after a "
            "renewal, list the old certificate in log.earlier_cert_files (or pass it with --cert)"
        )
    if fp not in current and _outside_validity(anchor, certificate):
        return (
            f"anchor {number} was signed by an earlier certificate of ours, dated "
            f"{anchor.at[:40]!r}, outside that certificate's validity"
        )
    try:
        verify_anchor(anchor, certificate)
    except LogAnchorInvalid as exc:
        return f"anchor {number}: {exc.detail}"
    return ""


def verify_log(
    rows: Sequence[StoredEvent],
    anchors: Sequence[Anchor],
    certificates: Sequence[x509.Certificate] | Signers,
    *,
    base: tuple[int, str] = (0, GENESIS),
) -> LogReport:
    """Check every anchor's signature (by one of ``certificates``), the chain from ``base`` (the
    last pruned event, when the log was pruned), and that every anchored head is still in the
    log; name the first problem.

    A chain that starts after event 1 is accepted only from a base that a signed base anchor
    names (each pruning step signs one before it deletes) and whose pruning the chain records
    (``translog.PRUNE_OPERATION``): a prefix deleted any other way is refused.
    """
    signers = certificates if isinstance(certificates, Signers) else Signers(tuple(certificates))
    current = {fingerprint(c): c for c in signers.current}
    earlier = {fingerprint(c): c for c in signers.earlier}
    last_seq = anchors[-1].seq if anchors else None
    for number, anchor in enumerate(anchors, start=1):
        problem = _anchor_problem(number, anchor, current, earlier)
        if problem:
            return LogReport(
                ok=False,
                checked=0,
                head_seq=0,
                head_hash="",
                anchors=len(anchors),
                last_anchor_seq=last_seq,
                unanchored=0,
                broken_anchor=number,
                broken_seq=anchor.seq,
                reason=problem,
            )
    result = check_against_anchors(list(rows), anchors, start=base)
    problem = ""
    if result.ok and base[0] > 0:
        if not base_signed(anchors, base):
            problem = "no signed base anchor names it"
        elif not _prune_recorded(rows, base):
            problem = "records no pruning through it"
    if problem:
        result = VerifyResult(
            ok=False,
            checked=result.checked,
            head_seq=result.head_seq,
            head_hash=result.head_hash,
            broken_seq=base[0] + 1,
            reason=(
                f"the log starts after event {base[0]} but {problem} (events 1-{base[0]} were "
                "removed outside the retention purge, or the anchor file is not the one it "
                "signed into)"
            ),
        )
    unanchored = result.head_seq - max((a.seq for a in anchors), default=0)
    return LogReport(
        ok=result.ok,
        checked=result.checked,
        head_seq=result.head_seq,
        head_hash=result.head_hash,
        anchors=len(anchors),
        last_anchor_seq=last_seq,
        unanchored=max(unanchored, 0),
        broken_seq=result.broken_seq,
        reason=result.reason,
        base_seq=base[0],
        anchors_before_base=anchors_before(anchors, base),
    )


def _prune_recorded(rows: Sequence[StoredEvent], base: tuple[int, str]) -> bool:
    """Whether an event of the chain records the pruning through ``base``."""
    seq, digest = str(base[0]), base[1]
    return any(
        row.event.get("operation") == PRUNE_OPERATION
        and row.event.get("log_seq") == seq
        and row.event.get("log_hash") == digest
        for row in rows
    )


def chain_start(rows: Sequence[StoredEvent]) -> tuple[int, str]:
    """Where a stretch of exported or archived events starts: the (seq, hash) its first event
    links to ((0, GENESIS) for none)."""
    if not rows or rows[0].seq == 1:
        return (0, GENESIS)  # event 1 must link to the genesis, whatever it says
    return (rows[0].seq - 1, rows[0].prev_hash)


def merge_segments(segments: Sequence[Sequence[StoredEvent]]) -> list[StoredEvent]:
    """Events of several stretches of one log (archives and the stored log) in order, one row
    per sequence number; ``ValueError`` when two stretches hold different events under one
    number (an event archived twice, by a pruning step that was retried, is the same in every
    field, its content included)."""
    by_seq: dict[int, StoredEvent] = {}
    for segment in segments:
        for row in segment:
            other = by_seq.setdefault(row.seq, row)
            if other != row:
                raise ValueError(f"two different events are numbered {row.seq}")
    return [by_seq[seq] for seq in sorted(by_seq)]


def verify_store_log(
    store: Store, settings: Settings, certificates: Sequence[x509.Certificate]
) -> LogReport:
    """``verify_log`` over the store's log, the configured anchor file and our certificates
    (``runtime.load_identity_certificates``)."""
    base, rows = read_log(store)
    return verify_log(rows, read_anchors(settings.anchor_file), certificates, base=base)


def read_log(store: Store, *, attempts: int = 5) -> tuple[tuple[int, str], list[StoredEvent]]:
    """The log's base and its stored events, as of one moment: read again when a pruning step
    moved the base in between (the two reads are separate statements)."""
    for _ in range(attempts):
        base = store.log_base()
        rows = store.log_entries()
        if store.log_base() == base:
            return base, rows
    raise StoreUnavailable("the transfer log kept being pruned while it was read: try again")
