"""Privacy lifecycle services: storage-key rotation and retirement, the retention purge.

Thin orchestration over ``oso_gateway.store.lifecycle`` and the key provider; prints nothing.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from oso_gateway.config import RetentionSettings
from oso_gateway.errors import (
    ConfigError,
    GatewayError,
    KeyStateError,
    KeyStillReferenced,
    OutputUnwritable,
    UnknownStorageKey,
)
from oso_gateway.store import models as m
from oso_gateway.store.disclosures import (
    DisclosureRecord,
    HeldDossier,
    ObjectionEntry,
    OutgoingMessage,
    PrivacyRecords,
)
from oso_gateway.store.keyring import ACTIVE, DESTROYED, RETIRED, KeyInfo
from oso_gateway.store.lifecycle import (
    CLOSED_REQUEST_STATUSES,
    RECEIVED,
    REJECTED_FAILED,
    REQUEST,
    Cutoffs,
    KeyUse,
    Lifecycle,
    PurgeCandidate,
    PurgeResult,
)
from oso_gateway.store.logchain import Anchor, StoredEvent
from oso_gateway.store.pull import InzageEntry, PullStore, RequestRecord, effective_status
from oso_gateway.store.repository import Store
from oso_gateway.transfer.pull.payloads import ACTION_ANSWER

log = logging.getLogger(__name__)

#: data keys re-wrapped per transaction during rotation
ROTATION_BATCH = 200

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``0s``, ``90m``, ``12h``, ``30d``, ``2w`` (and sums such as ``1d12h``)."""
    stripped = text.strip().lower()
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(stripped):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if not stripped or pos != len(stripped):
        raise ConfigError(f"not a duration: {text!r} (use e.g. 0s, 12h, 30d)")
    return timedelta(seconds=seconds)


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KeyStatus:
    info: KeyInfo
    use: KeyUse


#: the state of a key that stored items name but the keyring does not hold at all
UNKNOWN = "unknown"


def list_keys(lifecycle: Lifecycle) -> list[KeyStatus]:
    """Every key of the keyring, and every key id stored items name that the keyring does not
    hold (state ``unknown``, not available: a keyring not restored, or the wrong one), so that
    the restore check "every key that still wraps items is available" can see them."""
    known = list(lifecycle.cipher.provider.keys())
    held = {info.key_id for info in known}
    missing = sorted(lifecycle.key_ids_in_use() - held)
    infos = [*known, *(KeyInfo(key_id=k, state=UNKNOWN, available=False) for k in missing)]
    return [KeyStatus(info=info, use=lifecycle.key_use(info.key_id)) for info in infos]


def unavailable_key_ids(lifecycle: Lifecycle) -> list[str]:
    """The storage key ids stored items name whose material the keyring does not hold (none,
    after a complete restore): every command that builds the gateway's services refuses them
    (``runtime.build_services``), since new data would be stored under another key."""
    held = {info.key_id for info in lifecycle.cipher.provider.keys() if info.available}
    return sorted(lifecycle.key_ids_in_use() - held)


def require_stored_keys(lifecycle: Lifecycle) -> None:
    """``ConfigError`` (OSO-E501) when stored items name storage keys the configuration does
    not provide: a database restored without its keyring, or with another one. Started so, a
    gateway stored new dossiers under the key file's key and reported ready; with the keyring
    back, what it stored meanwhile could no longer be opened (an operator's walkthrough)."""
    missing = unavailable_key_ids(lifecycle)
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise ConfigError(
            f"the database holds data wrapped under storage key id {shown}, which none of the "
            "configured storage keys provides: restore the keyring (storage.keyring_file) and "
            "key file that go with this database (`oso-gateway keys list` shows the keys)"
        )


@dataclass(frozen=True, kw_only=True)
class RotationResult:
    new_key_id: str | None
    rewrapped: int
    upgraded: int


def rotate(
    lifecycle: Lifecycle,
    *,
    now: datetime,
    school: str | None = None,
    new_key: bool = True,
    batch: int = ROTATION_BATCH,
    after_batch: Callable[[int], None] | None = None,
    all_schools: bool = False,
) -> RotationResult:
    """Make a new active storage key (unless ``new_key`` is False: resume an interrupted run)
    and re-wrap every data key under its school's active key, batch by batch, online.

    ``all_schools``: a new key for the default scope and for every school with an active key
    of its own, then one re-wrapping pass for all (a rotation loop over 300 schools took
    about 3 s a school, and the plain rotation left the schools' keys as they were).
    ``after_batch`` runs after each committed batch (tests: a crash).
    """
    provider = lifecycle.cipher.provider
    key_id = provider.create_key(school=school) if new_key else None
    if key_id is not None:
        lifecycle.log_key_event("keys.create", key_id, now=now)
    if all_schools and new_key:
        own = {k.school for k in provider.keys() if k.state == ACTIVE and k.school is not None}
        for other in sorted(own - {school}):
            lifecycle.log_key_event("keys.create", provider.create_key(school=other), now=now)
    rewrapped = upgraded = 0
    while True:
        n = lifecycle.upgrade_legacy_batch(batch=batch, now=now)
        n += lifecycle.reencrypt_pull_batch(batch=batch) if school is None else 0
        upgraded += n
        if n == 0:
            n = lifecycle.rewrap_batch(batch=batch)
            rewrapped += n
        if n == 0:
            break
        if after_batch is not None:
            after_batch(n)
    active = key_id or provider.active_key_id(school)
    lifecycle.log_key_event("keys.rotate", active, now=now, count=rewrapped + upgraded)
    return RotationResult(new_key_id=key_id, rewrapped=rewrapped, upgraded=upgraded)


def _known(lifecycle: Lifecycle, key_id: str) -> KeyInfo:
    for info in lifecycle.cipher.provider.keys():
        if info.key_id == key_id:
            return info
    raise UnknownStorageKey(f"storage key {key_id} is not in the keyring")


def retire(lifecycle: Lifecycle, key_id: str, *, now: datetime) -> None:
    """Mark a key retired (never the active one); it still unwraps until deleted."""
    info = _known(lifecycle, key_id)
    if info.state == ACTIVE:
        raise KeyStateError(f"storage key {key_id} is active: rotate to a new key first")
    if info.state == DESTROYED:
        raise KeyStateError(f"storage key {key_id} was already deleted")
    lifecycle.cipher.provider.set_state(key_id, RETIRED)
    lifecycle.log_key_event("keys.retire", key_id, now=now)


def delete_key(lifecycle: Lifecycle, key_id: str, *, now: datetime) -> None:
    """Destroy a retired key's material; refused while anything is still wrapped under it."""
    info = _known(lifecycle, key_id)
    if info.state != RETIRED:
        raise KeyStateError(f"storage key {key_id} is {info.state}: retire it before deleting")
    use = lifecycle.key_use(key_id)
    if use.total:
        raise KeyStillReferenced(
            f"storage key {key_id} still wraps {use.data_keys} data key(s) and "
            f"{use.legacy_rows} older row(s): run `oso-gateway keys rotate --resume` first"
        )
    lifecycle.cipher.provider.destroy(key_id)
    lifecycle.log_key_event("keys.delete", key_id, now=now)


# --- retention --------------------------------------------------------------------------------


def cutoffs(
    policy: RetentionSettings, now: datetime, older_than: timedelta | None = None
) -> Cutoffs:
    """Per kind, the instant before which content is purged; ``older_than`` overrides every
    content period (``retention purge --older-than``)."""

    def before(days: float) -> datetime:
        age = older_than if older_than is not None else timedelta(days=days)
        return now - age

    return Cutoffs(
        received_acknowledged=before(policy.received_acknowledged_days),
        received_unfetched=before(policy.received_unfetched_days),
        outbound_undelivered=before(policy.outbound_undelivered_days),
        rejected_failed=before(policy.rejected_failed_days),
        requests=before(policy.requests_days),
        # not content: --older-than does not shorten it (a client retrying its call right after
        # `--older-than 0s` would make a second request)
        idempotency_keys=now - timedelta(days=policy.idempotency_key_days),
    )


def plan_purge(
    lifecycle: Lifecycle, policy: RetentionSettings, *, now: datetime, older_than: timedelta | None
) -> list[PurgeCandidate]:
    # an item counted from "now" is not older than 0s; "older than 0s" means everything so far
    at = now + timedelta(microseconds=1) if older_than == timedelta(0) else now
    return lifecycle.purge_candidates(cutoffs(policy, at, older_than))


def purge(
    lifecycle: Lifecycle,
    policy: RetentionSettings,
    *,
    now: datetime,
    older_than: timedelta | None = None,
) -> PurgeResult:
    """Erase everything the policy (or ``older_than``) says is due, in batches."""
    total = PurgeResult()
    while True:
        candidates = plan_purge(lifecycle, policy, now=now, older_than=older_than)
        if not candidates:
            return total
        done = lifecycle.purge(candidates, now=now)
        for kind, ids in done.purged.items():
            total.purged[kind].extend(ids)
        if not done.total:
            return total


#: events pruned from the transfer log per transaction (each holds the log's append lock, so
#: transfers wait for it: ~0.1 s on SQLite)
LOG_PRUNE_BATCH = 5000


@dataclass(kw_only=True)
class LogPrune:
    """What pruning the transfer log did: events removed, the log's base after it (the last
    event ever pruned; 0: none ever was), and the archive file written (None: none)."""

    pruned: int = 0
    base_seq: int = 0
    archive: Path | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "pruned": self.pruned,
            "base_seq": self.base_seq,
            "archive": str(self.archive) if self.archive is not None else None,
        }


class BaseKeeper(Protocol):
    """What a pruning step needs besides the database (``auditlog.BaseSigner``: the gateway's
    identity and anchor file)."""

    def anchors(self) -> Sequence[Anchor]:
        """The anchor file as it is now (read again for every batch)."""

    def sign(self, seq: int, base_hash: str, now: datetime) -> object:
        """Sign ``(seq, base_hash)`` as the log's new base."""


class LogArchive:
    """The file that pruned events go to before they leave the database: JSON lines as ``log
    export --format jsonl`` writes them, created (owner-only, never overwritten) at the first
    batch and on disk, with its directory entry, before that batch is deleted. A batch that
    cannot be written whole is cut off again, so the file holds whole batches only."""

    def __init__(self, directory: Path, now: datetime) -> None:
        self.directory = directory
        self.stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.path: Path | None = None
        self._fd: int | None = None
        self._size = 0

    def write(self, rows: Sequence[StoredEvent]) -> None:
        from oso_gateway.transfer.auditlog import export_events

        out = io.StringIO()
        export_events(rows, "jsonl", out)
        data = out.getvalue().encode("utf-8")
        try:
            if self._fd is None:
                self._create(rows[0].seq)
            assert self._fd is not None
            while data:
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)
            self._size = os.lseek(self._fd, 0, os.SEEK_CUR)
        except OSError as exc:
            self._cut_back()
            raise OutputUnwritable(
                f"cannot write the transfer-log archive {self.path or self.directory}: "
                f"{exc.strerror or type(exc).__name__}"
            ) from None

    def _create(self, first_seq: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.directory / f"transfer-log-{self.stamp}-from-{first_seq}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new name survives a crash along with the events
        finally:
            os.close(directory)

    def _cut_back(self) -> None:
        """Drop a partly written batch (its events stay in the database)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
            os.lseek(self._fd, self._size, os.SEEK_SET)
        except OSError:
            log.error("transfer-log archive %s may end in a partial batch", self.path)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def log_cutoff(policy: RetentionSettings, now: datetime) -> datetime:
    """Transfer-log events that happened before this are pruned (``transfer_log_days``)."""
    return now - timedelta(days=policy.transfer_log_days)


def prune_log(
    lifecycle: Lifecycle,
    policy: RetentionSettings,
    *,
    now: datetime,
    archive_dir: Path | None,
    keeper: BaseKeeper,
    batch: int = LOG_PRUNE_BATCH,
) -> LogPrune:
    """Remove the transfer-log events that happened more than ``retention.transfer_log_days``
    ago (a prefix of the chain, in batches: ``translog.prune_log_batch``), as far as the anchor
    file vouches for them untouched. Each batch goes to an archive file in ``archive_dir`` (when
    given), is deleted, and ``keeper`` signs the new base into the anchor file. A failure stops
    the pruning where it is: the error says how far it got."""
    before = log_cutoff(policy, now)
    archive = LogArchive(archive_dir, now) if archive_dir is not None else None
    result = LogPrune()

    def before_delete(rows: Sequence[StoredEvent]) -> None:
        if archive is not None:
            archive.write(rows)

    def sign_base(last: StoredEvent) -> None:
        keeper.sign(last.seq, last.hash, now)

    try:
        while True:
            rows = lifecycle.prune_log_batch(
                before=before,
                batch=batch,
                now=now,
                read_anchors=keeper.anchors,
                before_delete=before_delete,
                sign_base=sign_base,
            )
            if not rows:
                break
            result.pruned += len(rows)
            log.info("transfer log pruned through event %d", rows[-1].seq)
    except GatewayError as exc:
        so_far = f"{result.pruned} event(s) pruned before it"
        if archive is not None and archive.path is not None and result.pruned:
            so_far += f", archived in {archive.path}"
        exc.detail = f"{exc.detail}; {so_far}"
        exc.args = (f"{exc.code}: {exc.detail}",)
        raise
    finally:
        if archive is not None:
            archive.close()
            result.archive = archive.path
    result.base_seq = lifecycle.log_base()[0]
    return result


#: an outgoing message in one of these is on its way: an erasure leaves it (to be cancelled
#: with ``outbox cancel`` first, or delivered: its payload is erased at delivery)
IN_TRANSIT = (m.QUEUED, m.SENDING, m.AWAITING_RECEIPT, m.RETRYING)


@dataclass(frozen=True, kw_only=True)
class SubjectData:
    """What this gateway holds about one pupil (subject access), as of ``now``."""

    now: datetime
    #: dossiers received about the pupil, not yet purged
    received: list[HeldDossier]
    #: messages about the pupil we send or sent whose content we still hold: dossiers, and the
    #: messages of the requests below (a request with its facts, an answer with its text)
    outgoing: list[OutgoingMessage]
    #: pull requests, either side, whose (encrypted) facts name the pupil
    requests: list[RequestRecord]
    #: inzage records of pushes of the pupil (the record stays; its free text may be erased)
    push_inzage: list[InzageEntry]
    #: those of them that still hold the parents' view or a waiver's reason
    push_inzage_texts: list[PurgeCandidate]
    #: the records of what was shared about the pupil, with whom, when (the parents' report)
    disclosures: list[DisclosureRecord] = field(default_factory=list)
    #: the parents' objections recorded for the pupil, at any of our schools
    objections: list[ObjectionEntry] = field(default_factory=list)
    #: the inzage records of the requests above that we received (date, how, view given)
    request_inzage: list[tuple[str, InzageEntry]] = field(default_factory=list)

    def status(self, request: RequestRecord) -> str:
        """A request's status now (one of ours past its deadline is expired)."""
        return effective_status(request, self.now)

    @property
    def closed_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if self.status(r) in CLOSED_REQUEST_STATUSES]

    @property
    def open_requests(self) -> list[RequestRecord]:
        """Kept by an erasure: an answer or a delivery still needs the pupil's facts."""
        return [r for r in self.requests if self.status(r) not in CLOSED_REQUEST_STATUSES]

    @property
    def outgoing_failed(self) -> list[OutgoingMessage]:
        return [o for o in self.outgoing if o.status not in IN_TRANSIT]

    @property
    def in_transit(self) -> list[OutgoingMessage]:
        """Kept by an erasure: on its way to the other school. An answer on its way is not
        listed: it tells the other school what became of the request (cancelling a withdrawal
        would leave the request open there), and its content goes at delivery."""
        return [o for o in self.outgoing if o.status in IN_TRANSIT and o.action != ACTION_ANSWER]


def subject_data(store: Store, pupil_number: str, *, now: datetime) -> SubjectData:
    """Everything this gateway holds about the pupil (BSN or onderwijsnummer), on either side:
    found by keyed hashes, and the pull requests by decrypting each one's facts in turn. Reads
    only."""
    records = PrivacyRecords(store.engine, store.cipher)
    requests = PullStore(store)
    naming = requests.naming(pupil_number)
    request_inzage = []
    for record in naming:
        if record.side == m.HOLDER:
            entry = requests.find_inzage(school=record.our_school, request_pk=record.pk)
            if entry is not None:
                request_inzage.append((record.request_id, entry))
    return SubjectData(
        now=now,
        received=records.held_about(pupil_number),
        outgoing=records.outgoing_about(pupil_number, requests=naming),
        requests=naming,
        push_inzage=requests.push_inzage_of(pupil_number),
        push_inzage_texts=Lifecycle(store.engine, store.cipher).push_inzage_about(pupil_number),
        disclosures=records.disclosures(pupil_number=pupil_number),
        objections=records.objections_about(pupil_number),
        request_inzage=request_inzage,
    )


def erase_subject(lifecycle: Lifecycle, data: SubjectData, *, now: datetime) -> PurgeResult:
    """Erase, on the person's request, what ``data`` found that may go now, in one transaction:
    the dossiers received (crypto-shredded as the retention purge does), the content a failed
    outgoing dossier still holds, the closed requests' facts, decline texts and parents' views
    (one of ours past its deadline is expired first, under its row lock), and the free texts of
    the push inzage records. Logged as ``erasure.<kind>``, ids only. Left alone: open requests
    and dossiers in transit (``SubjectData.open_requests``, ``in_transit``); and whatever changed
    state meanwhile (each purge re-checks the row)."""
    candidates = [
        PurgeCandidate(pk=h.message_pk, message_id=h.message_id, kind=RECEIVED, direction=m.IN)
        for h in data.received
    ]
    candidates += [
        PurgeCandidate(
            pk=o.message_pk, message_id=o.message_id, kind=REJECTED_FAILED, direction=m.OUT
        )
        for o in data.outgoing_failed
    ]
    candidates += [
        PurgeCandidate(
            pk=r.pk,
            message_id=r.request_id,
            kind=REQUEST,
            direction=m.OUT if r.side == m.REQUESTER else m.IN,
        )
        for r in data.closed_requests
    ]
    candidates += data.push_inzage_texts
    if not candidates:
        return PurgeResult()
    return lifecycle.purge(candidates, now=now, reason="erasure")


def purge_periodically(
    lifecycle: Lifecycle,
    policy: RetentionSettings,
    stop: threading.Event,
    *,
    keeper: BaseKeeper,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    log_archive: Path | None = None,
) -> None:
    """The scheduled purge inside ``serve`` (every ``retention.purge_every_minutes``): content
    past its period, then the transfer log's events past ``transfer_log_days`` (archived in
    ``log_archive`` when given)."""
    interval = policy.purge_every_minutes * 60
    if interval <= 0:
        return
    while not stop.wait(interval):
        try:
            now = clock()
            result = purge(lifecycle, policy, now=now)
            pruned = prune_log(lifecycle, policy, now=now, archive_dir=log_archive, keeper=keeper)
        except Exception:  # a failed run is retried at the next interval
            log.exception("scheduled retention purge failed")
            continue
        if result.total:
            log.info("retention purge erased %d item(s)", result.total)
        if pruned.pruned:
            log.info("retention purge pruned %d transfer-log event(s)", pruned.pruned)


def purge_due(policy: RetentionSettings, held: HeldDossier) -> datetime:
    """When the retention purge will erase a received dossier (subject access)."""
    if held.acknowledged_at is not None:
        return held.acknowledged_at + timedelta(days=policy.received_acknowledged_days)
    return held.received_at + timedelta(days=policy.received_unfetched_days)
