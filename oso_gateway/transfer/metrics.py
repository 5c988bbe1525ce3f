"""Gateway metrics in the Prometheus text exposition format (version 0.0.4).

``gather(...)`` reads the store (message counts, rejections, latencies, outbox depth, transfer-log
head), our certificates, the directory's certificates and the CRLs, and returns metric families;
``render(families)`` writes the text format. ``RequestTimer`` keeps an in-process histogram of HTTP
request durations (the SOAP endpoint's includes the whole receive: verify, validate, import).

Labels carry only directions, statuses, error codes, OINs, certificate fingerprints and CRL
issuers: never a school's pupils, never a message's content.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from oso_gateway.security.trust import fingerprint
from oso_gateway.store.message_stats import PENDING, MessageStats, message_stats
from oso_gateway.store.repository import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: seconds: from a second to a day (outbound delivery waits for retries; inbound is sub-second)
LATENCY_BUCKETS: tuple[float, ...] = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    21600.0,
    86400.0,
)


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float
    suffix: str = ""


@dataclass
class Family:
    name: str
    kind: str  # gauge, counter, histogram
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append(Sample(labels=labels, value=value, suffix=suffix))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: Iterable[Family]) -> str:
    """The Prometheus text format of ``families``."""
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            name = family.name + sample.suffix
            lines.append(
                f"{name}{{{labels}}} {_number(sample.value)}"
                if labels
                else f"{name} {_number(sample.value)}"
            )
    return "\n".join(lines) + "\n"


def _histogram_samples(
    family: Family,
    labels: Mapping[str, str],
    buckets: Sequence[float],
    cumulative: Sequence[int],
    count: int,
    total: float,
) -> None:
    for bound, running in zip(buckets, cumulative, strict=True):
        family.add(running, "_bucket", **labels, le=_number(bound))
    family.add(count, "_bucket", **labels, le="+Inf")
    family.add(total, "_sum", **labels)
    family.add(count, "_count", **labels)


def histogram(
    name: str,
    help_text: str,
    series: Mapping[tuple[tuple[str, str], ...], Sequence[float]],
    buckets: Sequence[float] = LATENCY_BUCKETS,
) -> Family:
    """A histogram family from raw observations per label set."""
    family = Family(name, "histogram", help_text)
    for label_items, values in series.items():
        ordered = sorted(values)
        cumulative = [bisect.bisect_right(ordered, bound) for bound in buckets]
        _histogram_samples(
            family, dict(label_items), buckets, cumulative, len(ordered), sum(ordered)
        )
    return family


class RequestTimer:
    """In-process histogram of HTTP request durations per (endpoint, method, status).

    Thread-safe; cumulative since the process started (each server process has its own)."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], list[int]] = {}
        self._sums: dict[tuple[str, str, str], float] = {}

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, str(status))
        slot = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            counts[slot] += 1
            self._sums[key] = self._sums.get(key, 0.0) + seconds

    def family(self) -> Family:
        family = Family(
            "oso_gateway_http_request_duration_seconds",
            "histogram",
            "HTTP request handling time by endpoint, method and status (this process).",
        )
        with self._lock:
            snapshot = {k: (list(v), self._sums[k]) for k, v in sorted(self._counts.items())}
        for (endpoint, method, status), (counts, total) in snapshot.items():
            labels = {"endpoint": endpoint, "method": method, "status": status}
            cumulative = list(itertools.accumulate(counts[:-1]))
            _histogram_samples(family, labels, self.buckets, cumulative, sum(counts), total)
        return family


# --- what the store knows -----------------------------------------------------------------


def store_families(store: Store, *, now: datetime) -> list[Family]:
    """Messages by direction and status, events, rejections and send errors by code, latency,
    outbox depth and age, transfer-log size."""
    stats = message_stats(store.engine, buckets=LATENCY_BUCKETS)
    messages = Family(
        "oso_gateway_messages", "gauge", "Messages in the store by direction and current status."
    )
    for direction, status, count in stats.by_status:
        messages.add(count, direction=direction, status=status)

    transitions = Family(
        "oso_gateway_message_events_total",
        "counter",
        "Status changes of messages by direction and status entered.",
    )
    errors = Family(
        "oso_gateway_message_errors_total",
        "counter",
        "Status changes that carried an error code, by direction, status and code "
        "(inbound rejections, outbound retries and failures).",
    )
    for direction, status, code, count in stats.by_event:
        transitions.add(count, direction=direction, status=status)
        if code:
            errors.add(count, direction=direction, status=status, code=code)
    transitions.samples = _summed(transitions.samples)

    rejections = Family(
        "oso_gateway_rejections_total",
        "counter",
        "Inbound messages rejected, by error code (also those too broken to have a message id).",
    )
    for code in sorted(stats.rejections_by_code):
        rejections.add(stats.rejections_by_code[code], code=code)

    latency = Family(
        "oso_gateway_outbound_delivery_seconds",
        "histogram",
        "Time from queueing an outbound message to its verified receipt (retries included).",
    )
    _histogram_samples(
        latency,
        {},
        LATENCY_BUCKETS,
        stats.delivered_within,
        stats.delivered_count,
        stats.delivered_seconds,
    )
    return [
        messages,
        transitions,
        errors,
        rejections,
        latency,
        *_outbox_families(stats, now),
        _log_size_family(stats),
    ]


def _outbox_families(stats: MessageStats, now: datetime) -> list[Family]:
    depth = Family(
        "oso_gateway_outbox_depth", "gauge", "Outbound messages not yet delivered or failed."
    )
    for status in PENDING:
        depth.add(stats.pending.get(status, 0), status=status)
    age = Family(
        "oso_gateway_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest outbound message still pending (0 when none).",
    )
    oldest = stats.oldest_pending
    age.add(0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0))
    return [depth, age]


def _log_size_family(stats: MessageStats) -> Family:
    log_size = Family(
        "oso_gateway_transfer_log_events", "gauge", "Events in the hash-chained transfer log."
    )
    log_size.add(stats.log_events)
    return log_size


def _summed(samples: list[Sample]) -> list[Sample]:
    totals: dict[tuple[tuple[str, str], ...], float] = {}
    for sample in samples:
        key = tuple(sample.labels.items())
        totals[key] = totals.get(key, 0.0) + sample.value
    return [Sample(labels=dict(k), value=v) for k, v in totals.items()]


# --- certificates, CRLs, anchors ----------------------------------------------------------


def certificate_family(
    own: Iterable[tuple[str, x509.Certificate]],
    directory: Iterable[tuple[str, x509.Certificate]],
    *,
    now: datetime,
) -> Family:
    """Days until each of our identity certificates and each directory certificate expires."""
    family = Family(
        "oso_gateway_certificate_expiry_days",
        "gauge",
        "Days until the certificate expires (negative: expired), by role, OIN and SHA-256.",
    )
    seen: set[tuple[str, str]] = set()
    for role, entries in (("identity", own), ("directory", directory)):
        for oin, certificate in entries:
            fp = fingerprint(certificate)
            if (role, fp) in seen:
                continue
            seen.add((role, fp))
            days = (certificate.not_valid_after_utc - now).total_seconds() / 86400
            family.add(round(days, 3), role=role, oin=oin, sha256=fp[:16])
    return family


def crl_family(crls: Iterable[x509.CertificateRevocationList], *, now: datetime) -> Family:
    family = Family(
        "oso_gateway_crl_next_update_seconds",
        "gauge",
        "Seconds until the CRL's nextUpdate (negative: stale), by issuer.",
    )
    for crl in crls:
        next_update = crl.next_update_utc
        value = float("-inf") if next_update is None else (next_update - now).total_seconds()
        family.add(round(value, 3), issuer=crl.issuer.rfc4514_string())
    return family


def anchor_family(anchor_file: Path, head_seq: int, *, now: datetime) -> list[Family]:
    """Events appended since the last anchor and its age (alert when these grow)."""
    from oso_gateway.errors import LogAnchorInvalid
    from oso_gateway.transfer.auditlog import event_time, read_anchors

    lag = Family(
        "oso_gateway_transfer_log_unanchored_events",
        "gauge",
        "Transfer-log events appended since the last anchor.",
    )
    age = Family(
        "oso_gateway_transfer_log_anchor_age_seconds",
        "gauge",
        "Seconds since the last transfer-log anchor (absent: no valid anchor file).",
    )
    try:
        anchors = read_anchors(anchor_file)
    except LogAnchorInvalid:
        anchors = []
    last = anchors[-1] if anchors else None
    lag.add(max(head_seq - (last.seq if last else 0), 0))
    if last is not None:
        age.add(round((now - event_time({"at": last.at})).total_seconds(), 3))
    return [lag, age]


def directory_certificates(directory: Any) -> list[tuple[str, x509.Certificate]]:
    """(OIN, encryption certificate) of every gateway in a ``Directory`` (others: none)."""
    gateways = getattr(directory, "gateways", None)
    if not isinstance(gateways, Mapping):
        return []
    return [(oin, gw.encryption_certificate) for oin, gw in sorted(gateways.items())]


def pull_request_family(store: Store, *, now: datetime) -> Family:
    """Dossier requests by side and status (``expired`` and ``declined`` included); for the old
    school also ``overdue``: open requests past their answer deadline. Counts only."""
    from oso_gateway.store.pull import request_counts

    family = Family(
        "oso_gateway_pull_requests",
        "gauge",
        "Dossier requests by side (requester: we asked; holder: we were asked) and status.",
    )
    for (side, status), count in sorted(request_counts(store, now=now).items()):
        family.add(count, side=side, status=status)
    return family


def gather(services: Any, *, now: datetime, timer: RequestTimer | None = None) -> list[Family]:
    """Every family for one gateway (``GatewayServices``: store, identities, directory, trust)."""
    store: Store = services.store
    families = store_families(store, now=now)
    head_seq = int(families[-1].samples[0].value)
    families += anchor_family(services.settings.anchor_file, head_seq, now=now)
    families.append(
        certificate_family(
            [(i.oin, i.certificate) for i in services.identities],
            directory_certificates(services.directory),
            now=now,
        )
    )
    families.append(crl_family(services.trust.crls, now=now))
    families.append(pull_request_family(store, now=now))
    if timer is not None:
        families.append(timer.family())
    return families
