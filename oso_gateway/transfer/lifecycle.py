"""Privacy lifecycle services: storage-key rotation and retirement, the retention purge.

Thin orchestration over ``oso_gateway.store.lifecycle`` and the key provider; prints nothing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from oso_gateway.config import RetentionSettings
from oso_gateway.errors import ConfigError, KeyStateError, KeyStillReferenced, UnknownStorageKey
from oso_gateway.store import models as m
from oso_gateway.store.disclosures import HeldDossier
from oso_gateway.store.keyring import ACTIVE, DESTROYED, RETIRED, KeyInfo
from oso_gateway.store.lifecycle import (
    CLOSED_REQUEST_STATUSES,
    RECEIVED,
    REQUEST,
    Cutoffs,
    KeyUse,
    Lifecycle,
    PurgeCandidate,
    PurgeResult,
)
from oso_gateway.store.pull import PullStore, RequestRecord, effective_status

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
) -> RotationResult:
    """Make a new active storage key (unless ``new_key`` is False: resume an interrupted run)
    and re-wrap every data key under its school's active key, batch by batch, online.

    ``after_batch`` runs after each committed batch (tests: a crash).
    """
    provider = lifecycle.cipher.provider
    key_id = provider.create_key(school=school) if new_key else None
    if key_id is not None:
        lifecycle.log_key_event("keys.create", key_id, now=now)
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


def erase_subject(
    lifecycle: Lifecycle,
    held: Sequence[HeldDossier],
    *,
    requests: Sequence[RequestRecord] = (),
    inzage: Sequence[PurgeCandidate] = (),
    now: datetime,
) -> PurgeResult:
    """Erase, on the person's request, the received dossiers ``held`` about a pupil
    (``PrivacyRecords.held_about``) and the closed ``requests`` that name the pupil
    (``requests_naming``), and the free texts of the ``inzage`` records of its pushes
    (``Lifecycle.push_inzage_about``): crypto-shredded and emptied as the retention purge does,
    logged as ``erasure.<kind>`` (no personal data: the ids only). A request still open is left
    alone (``_purge_request`` skips it)."""
    candidates = [
        PurgeCandidate(pk=h.message_pk, message_id=h.message_id, kind=RECEIVED, direction=m.IN)
        for h in held
    ]
    candidates += [
        PurgeCandidate(
            pk=r.pk,
            message_id=r.request_id,
            kind=REQUEST,
            direction=m.OUT if r.side == m.REQUESTER else m.IN,
        )
        for r in requests
        if r.status in CLOSED_REQUEST_STATUSES
    ]
    candidates += inzage
    if not candidates:
        return PurgeResult()
    return lifecycle.purge(candidates, now=now, reason="erasure")


def requests_naming(
    requests: PullStore, pupil_number: str, *, now: datetime
) -> tuple[list[RequestRecord], list[RequestRecord]]:
    """The pull requests (either side) that name the pupil and still hold its facts: (closed,
    still open). A request of ours past its deadline is expired first, as the pull service's
    ``refresh`` would (it waits for nothing more, so it can be erased)."""
    closed: list[RequestRecord] = []
    still_open: list[RequestRecord] = []
    for record in requests.naming(pupil_number):
        if record.status not in CLOSED_REQUEST_STATUSES and effective_status(record, now) in (
            CLOSED_REQUEST_STATUSES
        ):
            record = requests.transition(record.pk, status=effective_status(record, now), now=now)
        (closed if record.status in CLOSED_REQUEST_STATUSES else still_open).append(record)
    return closed, still_open


def purge_periodically(
    lifecycle: Lifecycle,
    policy: RetentionSettings,
    stop: threading.Event,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """The scheduled purge inside ``serve`` (every ``retention.purge_every_minutes``)."""
    interval = policy.purge_every_minutes * 60
    if interval <= 0:
        return
    while not stop.wait(interval):
        try:
            result = purge(lifecycle, policy, now=clock())
        except Exception:  # a failed run is retried at the next interval
            log.exception("scheduled retention purge failed")
            continue
        if result.total:
            log.info("retention purge erased %d item(s)", result.total)


def purge_due(policy: RetentionSettings, held: HeldDossier) -> datetime:
    """When the retention purge will erase a received dossier (subject access)."""
    if held.acknowledged_at is not None:
        return held.acknowledged_at + timedelta(days=policy.received_acknowledged_days)
    return held.received_at + timedelta(days=policy.received_unfetched_days)
