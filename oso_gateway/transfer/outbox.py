"""The outbox: durable queue of outgoing dossiers, attempts, retries with back-off, receipts.

``Outbox.enqueue`` stores a prepared dossier (payload encrypted at rest, and its first sealing,
status ``queued``).
``Outbox.run_once`` drains due messages: each is claimed exclusively (the store's claim: row
lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so several workers
(threads or processes) can run at once. One attempt:

``sending`` → (reuse the latest envelope, read once from the store, while valid, else seal
afresh, same MessageID) →
record it (``awaiting_receipt``) → POST → verified receipt → ``delivered``; a network error,
timeout, 5xx or transient fault → ``retrying`` at ``now + backoff`` (exponential, capped, with
jitter) until ``retry.max_attempts`` is reached (then ``failed`` with the last code); a permanent
fault → ``failed`` at once. Every status change is an event with the error code, which the store
also appends to the hash-chained transfer log in the same transaction; our log gets the code and
its detail (never pupil data).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from oso_gateway.config import RetrySettings
from oso_gateway.errors import (
    GatewayError,
    LocalError,
    ObjectionNotApplied,
    PeerFault,
    SendingSchoolNotServed,
    StoreUnavailable,
    sender_reading,
)
from oso_gateway.store import models as m
from oso_gateway.store.disclosures import DisclosureWriter, PrivacyRecords
from oso_gateway.store.repository import AfterInsert, Duplicate, MessageRecord, Store
from oso_gateway.transfer.outage import OUTBOX, DatabaseErrors
from oso_gateway.transfer.schools import DirectoryLike, School
from oso_gateway.transfer.send import (
    RESEAL_MARGIN,
    AttemptResult,
    Expected,
    Outcome,
    PreparedDossier,
    SenderConfig,
    Transport,
    post_and_verify,
    seal_attempt,
    sealed_expires,
)

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.store.pull import InzageEntry
    from oso_gateway.store.records import OnInsert, TransactionSession

log = logging.getLogger(__name__)

#: How long a claimed message stays claimed without a heartbeat (``retry.lease_seconds``): a
#: worker that dies mid-send frees its message after at most this long.
DEFAULT_LEASE = timedelta(seconds=15)


def backoff_delay(attempt: int, retry: RetrySettings, rng: random.Random) -> timedelta:
    """Delay before attempt ``attempt + 1``: ``base * 2**(attempt-1)``, capped, ± jitter."""
    delay = min(retry.base_delay * (2 ** max(attempt - 1, 0)), retry.max_delay)
    delay *= 1.0 + retry.jitter * (2.0 * rng.random() - 1.0)
    return timedelta(seconds=max(delay, 0.0))


@dataclass
class RunStats:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def attempts(self) -> int:
        return self.delivered + self.retrying + self.failed


#: the longest pause between two runs that failed (seconds)
MAX_FAILURE_PAUSE = 30.0


def _log_failure(exc: Exception, failures: int) -> None:
    again = f" ({failures} failed runs in a row; still trying)" if failures > 1 else ""
    if isinstance(exc, StoreUnavailable):
        log.error("outbox run failed: %s %r: this gateway's database; nothing is lost, the "
                  "queued messages wait for it%s", exc.code, exc.detail, again)  # fmt: skip
    elif isinstance(exc, GatewayError):
        log.error("outbox run failed: %s %r%s", exc.code, exc.detail, again)
    else:
        log.exception("outbox run failed unexpectedly%s", again)


class Outbox:
    """Sender side of a gateway: queue and deliver. Thread-safe (state lives in the store)."""

    def __init__(
        self,
        *,
        store: Store,
        directory: DirectoryLike,
        config: SenderConfig,
        transport: Transport,
        retry: RetrySettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: timedelta = DEFAULT_LEASE,
        rng: random.Random | None = None,
        configs: Mapping[str, SenderConfig] | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.config = config
        #: every local identity's sender config by OIN: a message is sealed, and its receipt
        #: opened, with the identity that serves its sending school (``our_oin``)
        self.configs: Mapping[str, SenderConfig] = configs or {config.identity.oin: config}
        self.transport = transport
        #: per local identity (OIN): the mutual-TLS client certificate of that identity
        self.transports: Mapping[str, Transport] = transports or {}
        self.retry = retry
        self.clock = clock
        self.lease = lease
        self._rng = rng or random.Random()  # jitter, not security
        self._rng_lock = threading.Lock()
        #: what met an outage of our database (``transfer.outage``): failed runs, counted
        self.database_errors = DatabaseErrors()
        #: checked before anything is queued (the pull workflow's inzage gate for pushes)
        self.gate: Callable[[PreparedDossier], None] | None = None
        #: what of ``gate`` must hold once more inside the queueing transaction (session,
        #: prepared, message id): "one inzage, one push" against pushes queued at once; it
        #: answers the inzage record a push goes under, which its disclosure record names
        self.gate_again: Callable[[TransactionSession, PreparedDossier, str], int | None] | None = (
            None
        )

    # --- queueing ----------------------------------------------------------------------------

    def transport_for(self, oin: str | None) -> Transport:
        """The transport of our identity ``oin`` (its TLS client certificate), else the default."""
        return self.transports.get(oin or "", self.transport)

    def config_for(self, oin: str | None) -> SenderConfig:
        """The sender config of our identity ``oin`` (the first identity's when unknown)."""
        return self.configs.get(oin or "", self.config)

    def enqueue(
        self,
        prepared: PreparedDossier,
        *,
        client_id: str | None = None,
        after_insert: AfterInsert | None = None,
        inzage: InzageEntry | None = None,
    ) -> MessageRecord:
        """Store a prepared message of any kind in the outbox (status ``queued``, due now); a
        dossier with its disclosure record. ``ObjectionNotApplied`` (E542) when it still holds a
        category the parents objected to (prepare it with ``objections=outbox.objections``).

        Raises what ``gate`` raises (E471: a push without the inzage its school's policy asks).
        ``after_insert`` runs in the queueing transaction (the school API's Idempotency-Key).
        ``inzage``: the inzage that ``after_insert`` records in that transaction (a request's,
        released by it), for the disclosure record: it is not in the store yet when the record
        is made (a review found a request's inzage missing from the parents' report).
        """
        if self.gate is not None:
            self.gate(prepared)
        now = self.clock()
        result = self.store.enqueue_outbound(
            message_id=prepared.message_id,
            action=prepared.action,
            relates_to=prepared.relates_to,
            payload=prepared.payload,
            payload_digest=prepared.payload_digest,
            sealed=prepared.sealed.data,
            signature_value=prepared.sealed.signature_value,
            now=now,
            our_oin=prepared.sender_oin or self.config.identity.oin,
            our_school=prepared.sending_school.code,
            counterpart_oin=prepared.recipient_oin,
            counterpart_school=prepared.recipient.code,
            endpoint=prepared.endpoint,
            client_id=client_id,
            categories=",".join(prepared.categories) or None,
            after_insert=after_insert,
            on_insert=self._on_insert(prepared, now, inzage),
        )
        if isinstance(result, Duplicate):  # a fresh UUID: cannot happen unless re-enqueued
            return result.message
        log.info(
            "queued %s for school %s (OIN %s), %d bytes",
            prepared.message_id,
            prepared.recipient,
            prepared.recipient_oin,
            len(prepared.payload),
        )
        return result

    def _on_insert(
        self, prepared: PreparedDossier, now: datetime, inzage: InzageEntry | None
    ) -> OnInsert | None:
        """What runs in the queueing transaction: ``gate_again``, then the disclosure record
        (naming the inzage record ``gate_again`` found a push to go under)."""
        again, write = self.gate_again, self._disclosure_hook(prepared, now, inzage)
        if again is None:
            return write

        def on_insert(
            session: TransactionSession, message_id: str, columns: dict[str, object]
        ) -> None:
            assert again is not None
            used = again(session, prepared, message_id)
            if write is not None:
                write(session, message_id, columns, inzage_pk=used)

        return on_insert

    def _disclosure_hook(
        self, prepared: PreparedDossier, now: datetime, inzage: InzageEntry | None = None
    ) -> DisclosureWriter | None:
        """The disclosure record's writer for a dossier (None for other kinds); refuses a
        dossier that still holds a category the parents objected to."""
        facts = prepared.disclosure
        if facts is None:
            return None
        if prepared.pupil_number is not None:
            objected = set(self.objections(prepared.sending_school.code, prepared.pupil_number))
            leaked = sorted(objected.intersection(facts.sent))
            if leaked:
                raise ObjectionNotApplied(
                    f"{prepared.message_id}: categories {', '.join(leaked)} were objected to"
                )
        try:
            entry = self.directory.lookup(prepared.recipient.brin, prepared.recipient.vestiging)
        except GatewayError:
            entry = None
        name = getattr(entry, "name", None)
        return self.privacy_records.disclosure_writer(
            pupil_number=prepared.pupil_number,
            sent=facts.sent,
            withheld=[(w.category, w.reason) for w in facts.withheld],
            inzage=self._inzage(prepared, facts.inzage, inzage),
            recipient_name=name if isinstance(name, str) else None,
            now=now,
        )

    def _inzage(
        self,
        prepared: PreparedDossier,
        from_dossier: dict[str, str] | None,
        recording: InzageEntry | None = None,
    ) -> dict[str, str] | None:
        """The dossier's own inzage facts plus the inzage the school recorded at the gateway
        (pull workflow): date, how, waived, whether the parents gave a view. No free text."""
        from oso_gateway.store.pull import PullStore

        pull = PullStore(self.store)
        request_pk = None
        if prepared.relates_to:
            request = pull.find(
                side=m.HOLDER,
                request_id=prepared.relates_to,
                schools=(prepared.sending_school.code,),
            )
            request_pk = request.pk if request is not None else None
        found = recording or pull.find_inzage(
            school=prepared.sending_school.code,
            request_pk=request_pk,
            pupil_identifier=None if request_pk is not None else prepared.pupil_number,
        )
        if found is None:
            return from_dossier
        merged = dict(from_dossier or {})
        merged["recorded"] = found.recorded_at.date().isoformat()
        if found.inzage_date:
            merged["recorded_date"] = found.inzage_date
        if found.how:
            merged["how"] = found.how
        merged["waived"] = "true" if found.waived else "false"
        merged["zienswijze"] = "true" if found.zienswijze else "false"
        if found.previewed:  # the version the parents were shown (the report compares it)
            merged["previewed"] = found.previewed
        return merged

    @property
    def privacy_records(self) -> PrivacyRecords:
        return PrivacyRecords(self.store.engine, self.store.cipher)

    def objections(self, school: str, pupil_number: str) -> list[str]:
        """The categories the parents objected to (``prepare_dossier(objections=...)``)."""
        return self.privacy_records.objections_for(school, pupil_number)

    # --- draining ----------------------------------------------------------------------------

    def run_once(self, *, limit: int | None = None) -> RunStats:
        """Attempt every message due now (up to ``limit``); returns what happened."""
        stats = RunStats()
        while limit is None or stats.attempts < limit:
            record = self.store.claim_next_outbound(now=self.clock(), lease=self.lease)
            if record is None:
                break
            outcome = self.attempt(record)
            setattr(stats, outcome, getattr(stats, outcome) + 1)
        if stats.delivered:
            # A delivery drops the payload and its data key: once per batch, no earlier image of
            # them stays in the database's files (a reader holding the WAL: at the next one).
            self.store.checkpoint_after_delete()
        return stats

    def run_forever(self, stop: threading.Event, *, poll_interval: float = 1.0) -> None:
        """Drain due messages until ``stop`` is set (for ``outbox run`` without ``--once``).

        A run that keeps failing (the database down) is tried again after a growing pause (up
        to ``MAX_FAILURE_PAUSE`` seconds) and logged at its first failure, then once a minute
        with the count, and once more when it works again: every worker logged every second
        through an outage (an operator's drill)."""
        failures, said = 0, 0.0
        while not stop.is_set():
            try:
                stats = self.run_once()
            except Exception as exc:  # a bug must not end the worker; a claimed lease expires
                failures += 1
                if isinstance(exc, StoreUnavailable):
                    self.database_errors.count(OUTBOX)
                if time.monotonic() - said >= 60 or failures == 1:
                    said = time.monotonic()
                    _log_failure(exc, failures)
                stop.wait(min(poll_interval * 2 ** min(failures, 8), MAX_FAILURE_PAUSE))
                continue
            if failures:
                log.warning("outbox run works again after %d failed run(s)", failures)
                failures = 0
            if stats.attempts == 0:
                stop.wait(poll_interval)

    def wait_for(
        self, message_id: str, *, timeout: float | None = None, poll_interval: float = 0.2
    ) -> MessageRecord:
        """Drain until ``message_id`` is delivered or failed (or ``timeout`` seconds pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.run_once()
            record = self.store.find_message(m.OUT, message_id)
            if record is None:
                raise LookupError(f"no outbound message {message_id}")
            if record.status in (m.DELIVERED, m.FAILED):
                return record
            if deadline is not None and time.monotonic() >= deadline:
                return record
            pause = poll_interval
            if record.next_attempt_at is not None:
                pause = max(poll_interval, (record.next_attempt_at - self.clock()).total_seconds())
            if deadline is not None:
                pause = min(pause, max(deadline - time.monotonic(), 0.0))
            time.sleep(min(pause, 5.0))

    # --- one attempt -------------------------------------------------------------------------

    def attempt(self, record: MessageRecord) -> str:
        """One delivery attempt of a claimed record; returns delivered / retrying / failed.

        The directory is asked again for the school's endpoint and gateway (an operator's retry
        after a directory fix goes to the new address), and the first attempt after a retry of a
        failed message is sealed afresh (to the encryption certificate the directory gives now);
        the claim's lease is kept alive while the attempt runs (``heartbeat``).
        """
        with self._heartbeat(record):
            return self._attempt(record)

    def _attempt(self, record: MessageRecord) -> str:
        now = self.clock()
        assert record.endpoint and record.counterpart_oin and record.counterpart_school
        assert record.payload_digest is not None
        school = School.parse(record.counterpart_school)
        try:
            self._require_our_school(record)
            entry = self.directory.lookup(school.brin, school.vestiging)
            moved = (entry.endpoint, entry.oin) != (record.endpoint, record.counterpart_oin)
            # the first attempt after an operator's retry of a failed message is sealed afresh:
            # to the encryption certificate the directory gives now (a retry after a directory
            # fix re-sent the envelope sealed to the old one); the worker's own retries send the
            # same envelope again while it is valid
            sealed, signature_value, fresh = self._envelope(
                record, now, reseal=moved or _retried_after_a_failure(record)
            )
        except GatewayError as exc:
            return self._finish(record, AttemptResult(outcome=_kind(exc), error=exc))
        except Exception as exc:
            log.exception("sealing %s raised %s", record.message_id, type(exc).__name__)
            error = LocalError(f"sealing raised {type(exc).__name__}")
            return self._finish(record, AttemptResult(outcome="failed", error=error))
        if moved:
            log.info(
                "%s: the directory now gives %s (OIN %s)",
                record.message_id,
                entry.endpoint[:200],
                entry.oin,
            )
        sent = self.store.mark_sent(
            record.pk,
            sealed=sealed if fresh else None,
            signature_value=signature_value,
            now=now,
            endpoint=entry.endpoint if moved else None,
            counterpart_oin=entry.oin if moved else None,
        )
        result = post_and_verify(
            sealed,
            endpoint=entry.endpoint,
            expected=Expected(
                message_id=record.message_id,
                signature_value=signature_value,
                payload_digest=record.payload_digest,
                recipient_oin=entry.oin,
                resealed=record.attempts > 1,
                earlier_signature_values=sent.sent_signature_values,
                recipient_school=school,
            ),
            transport=self.transport_for(record.our_oin),
            config=self.config_for(record.our_oin),
            clock=self.clock,
            action=record.action,
        )
        return self._finish(record, result)

    def _require_our_school(self, record: MessageRecord) -> None:
        """``SendingSchoolNotServed`` (E464) unless the directory, as it is now, still lets the
        identity that would sign send for the message's school (it serves it, or the school
        mandated it): a message queued before its school left this gateway was posted and
        refused by the peer (OSO-E431) after a round trip; now it fails here, before sealing."""
        if not record.our_school:
            return
        ours = School.parse(record.our_school)
        oin = self.config_for(record.our_oin).identity.oin
        try:
            self.directory.check_mandate(oin, ours.brin, ours.vestiging)
        except GatewayError as exc:
            raise SendingSchoolNotServed(
                f"{record.message_id}: sending school {ours} is no longer served by this "
                f"gateway (OIN {oin}) in the directory ({exc.code}): not sent; `outbox retry` "
                "once the directory lists it for this gateway again"
            ) from None

    @contextlib.contextmanager
    def _heartbeat(self, record: MessageRecord) -> Iterator[None]:
        """Extend the claim's lease every third of ``lease`` until the attempt ends, so that a
        long send keeps its claim while a crashed worker's claim runs out within ``lease``."""
        done = threading.Event()

        def beat() -> None:
            interval = max(self.lease.total_seconds() / 3.0, 0.05)
            while not done.wait(interval):
                try:
                    ours = self.store.extend_lease(
                        record.pk, attempt=record.attempts, until=self.clock() + self.lease
                    )
                except GatewayError as exc:  # the database is away: the lease may run out
                    log.warning("lease heartbeat of %s failed: %s", record.message_id, exc.code)
                    continue
                if not ours:
                    if not done.is_set():  # not just the attempt ending as we renewed
                        log.warning("%s: our claim was taken over", record.message_id)
                    return

        thread = threading.Thread(target=beat, name=f"lease-{record.pk}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _envelope(
        self, record: MessageRecord, now: datetime, *, reseal: bool = False
    ) -> tuple[bytes, bytes, bool]:
        """The envelope to send, its SignatureValue, and whether it is a fresh sealing: the
        latest one (read once from the store) while still valid, unless ``reseal`` (the
        directory gives another address, or an operator retried a failed message), else a
        fresh sealing."""
        if not reseal:
            latest = self.store.outbound_envelope(record.pk)
            if latest is not None and _valid(latest[0], now):
                return latest[0], latest[1], False
            del latest
        assert record.counterpart_school is not None
        fresh = seal_attempt(
            self.store.outbound_payload(record),
            message_id=record.message_id,
            to=School.parse(record.counterpart_school),
            directory=self.directory,
            config=self.config_for(record.our_oin),
            now=now,
            action=record.action,
            relates_to=record.relates_to,
        )
        if fresh.payload_digest != record.payload_digest:  # pragma: no cover - defensive
            raise RuntimeError("payload digest changed between sealings")
        return fresh.data, fresh.signature_value, True

    def _finish(self, record: MessageRecord, result: AttemptResult) -> str:
        now = self.clock()
        if result.outcome == "delivered":
            assert result.receipt is not None
            self.store.mark_delivered(
                record.pk,
                receipt=result.receipt,
                now=now,
                signer_fingerprint=result.receipt_signer_fingerprint,
            )
            log.info(
                "delivered %s to school %s (attempt %d), receipt verified",
                record.message_id,
                record.counterpart_school,
                record.attempts,
            )
            return m.DELIVERED
        error = result.error
        assert error is not None
        code = _wire_code(error)
        if result.outcome == "retry" and record.attempts < self.retry.max_attempts:
            with self._rng_lock:
                delay = backoff_delay(record.attempts, self.retry, self._rng)
            self.store.mark_retry(record.pk, error_code=code, next_attempt_at=now + delay, now=now)
            log.warning(
                "retrying %s (attempt %d failed: %s %r); next in %.1fs",
                record.message_id,
                record.attempts,
                code,
                error.detail,
                delay.total_seconds(),
            )
            return m.RETRYING
        self.store.mark_failed(record.pk, error_code=code, now=now)
        log.error(
            "failed %s after attempt %d: %s %r%s%s",  # %r: detail may quote the peer
            record.message_id,
            record.attempts,
            code,
            error.detail,
            " (retries exhausted)" if result.outcome == "retry" else "",
            _peer_reading(error),
        )
        return m.FAILED


def _wire_code(error: GatewayError) -> str:
    """The code to record: the peer's own code for a fault, else ours."""
    if isinstance(error, PeerFault):
        return error.remote_code
    return error.code


def _peer_reading(error: GatewayError) -> str:
    """For a fault of the receiving gateway whose description would read backwards to us."""
    if isinstance(error, PeerFault):
        reading = sender_reading(error.remote_code)
        return f": {reading}" if reading else ""
    return ""


def _kind(exc: GatewayError) -> Outcome:
    return "retry" if exc.transient else "failed"


def _retried_after_a_failure(record: MessageRecord) -> bool:
    """The first attempt of a fresh attempt budget (``outbox retry``, the console's Retry) of a
    message whose last attempt failed."""
    return record.attempts == 1 and record.last_error_code is not None


def _valid(sealed: bytes, now: datetime) -> bool:
    expires = sealed_expires(sealed)
    return expires is not None and expires - now >= RESEAL_MARGIN
