"""Gateway metrics, as prometheus-client metric families read at scrape time.

``GatewayCollector(services)`` is a prometheus-client collector: every scrape reads the store
(message counts, rejections, latencies, outbox depth, transfer-log head), our certificates, the
directory's certificates and the CRLs. The in-process HTTP request histogram lives in
``oso_gateway.web.metrics`` (a prometheus-client ``Histogram``, multi-process aware).

Labels carry only directions, statuses, error codes, OINs, certificate fingerprints and CRL
issuers: never a school's pupils, never a message's content.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from oso_gateway.security.trust import fingerprint
from oso_gateway.store.message_stats import PENDING, MessageStats, message_stats
from oso_gateway.store.repository import Store

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


# --- what the store knows -----------------------------------------------------------------


def store_families(store: Store, *, now: datetime) -> list[Metric]:
    """Messages by direction and status, events, rejections and send errors by code, latency,
    outbox depth and age, transfer-log size."""
    stats = message_stats(store.engine, buckets=LATENCY_BUCKETS)
    messages = GaugeMetricFamily(
        "oso_gateway_messages",
        "Messages in the store by direction and current status.",
        labels=("direction", "status"),
    )
    for direction, status, count in stats.by_status:
        messages.add_metric((direction, status), count)

    transitions = CounterMetricFamily(
        "oso_gateway_message_events_total",
        "Status changes of messages by direction and status entered.",
        labels=("direction", "status"),
    )
    errors = CounterMetricFamily(
        "oso_gateway_message_errors_total",
        "Status changes that carried an error code, by direction, status and code "
        "(inbound rejections, outbound retries and failures).",
        labels=("direction", "status", "code"),
    )
    entered: dict[tuple[str, str], int] = {}
    for direction, status, code, count in stats.by_event:
        entered[(direction, status)] = entered.get((direction, status), 0) + count
        if code:
            errors.add_metric((direction, status, code), count)
    for labels, count in entered.items():
        transitions.add_metric(labels, count)

    rejections = CounterMetricFamily(
        "oso_gateway_rejections_total",
        "Inbound messages rejected, by error code (also those too broken to have a message id).",
        labels=("code",),
    )
    for code in sorted(stats.rejections_by_code):
        rejections.add_metric((code,), stats.rejections_by_code[code])

    latency = HistogramMetricFamily(
        "oso_gateway_outbound_delivery_seconds",
        "Time from queueing an outbound message to its verified receipt (retries included).",
        buckets=_buckets(LATENCY_BUCKETS, stats.delivered_within, stats.delivered_count),
        sum_value=stats.delivered_seconds,
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


def _buckets(
    bounds: Sequence[float], cumulative: Sequence[int], count: int
) -> list[tuple[str, float]]:
    """(le, cumulative count) pairs ending with ``+Inf`` (prometheus-client's number format)."""
    le: Any = floatToGoString  # untyped in prometheus-client
    pairs = [(str(le(b)), float(n)) for b, n in zip(bounds, cumulative, strict=True)]
    return [*pairs, ("+Inf", float(count))]


def _outbox_families(stats: MessageStats, now: datetime) -> list[Metric]:
    depth = GaugeMetricFamily(
        "oso_gateway_outbox_depth",
        "Outbound messages not yet delivered or failed.",
        labels=("status",),
    )
    for status in PENDING:
        depth.add_metric((status,), stats.pending.get(status, 0))
    oldest = stats.oldest_pending
    age = GaugeMetricFamily(
        "oso_gateway_outbox_oldest_age_seconds",
        "Age of the oldest outbound message still pending (0 when none).",
        value=0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0),
    )
    return [depth, age]


def _log_size_family(stats: MessageStats) -> Metric:
    return GaugeMetricFamily(
        "oso_gateway_transfer_log_events",
        "Events appended to the hash-chained transfer log (its head; pruned ones included).",
        value=stats.log_events,
    )


# --- certificates, CRLs, anchors ----------------------------------------------------------


def certificate_family(
    own: Iterable[tuple[str, x509.Certificate]],
    directory: Iterable[tuple[str, x509.Certificate]],
    *,
    now: datetime,
) -> Metric:
    """Days until each of our identity certificates and each directory certificate expires."""
    family = GaugeMetricFamily(
        "oso_gateway_certificate_expiry_days",
        "Days until the certificate expires (negative: expired), by role, OIN and SHA-256.",
        labels=("role", "oin", "sha256"),
    )
    seen: set[tuple[str, str]] = set()
    for role, entries in (("identity", own), ("directory", directory)):
        for oin, certificate in entries:
            fp = fingerprint(certificate)
            if (role, fp) in seen:
                continue
            seen.add((role, fp))
            days = (certificate.not_valid_after_utc - now).total_seconds() / 86400
            family.add_metric((role, oin, fp[:16]), round(days, 3))
    return family


def crl_family(crls: Iterable[x509.CertificateRevocationList], *, now: datetime) -> Metric:
    family = GaugeMetricFamily(
        "oso_gateway_crl_next_update_seconds",
        "Seconds until the CRL's nextUpdate (negative: stale), by issuer.",
        labels=("issuer",),
    )
    for crl in crls:
        next_update = crl.next_update_utc
        value = float("-inf") if next_update is None else (next_update - now).total_seconds()
        family.add_metric((crl.issuer.rfc4514_string(),), round(value, 3))
    return family


def anchor_family(anchor_file: Path, head_seq: int | None, *, now: datetime) -> list[Metric]:
    """Events appended since the last anchor and its age (alert when these grow); without the
    log's head (``head_seq`` None: the database is unreachable) only the age."""
    from oso_gateway.errors import LogAnchorInvalid
    from oso_gateway.transfer.auditlog import event_time, read_anchors

    try:
        anchors = read_anchors(anchor_file)
    except LogAnchorInvalid:
        anchors = []
    last = anchors[-1] if anchors else None
    found: list[Metric] = []
    if head_seq is not None:
        found.append(
            GaugeMetricFamily(
                "oso_gateway_transfer_log_unanchored_events",
                "Transfer-log events appended since the last anchor.",
                value=max(head_seq - (last.seq if last else 0), 0),
            )
        )
    age = GaugeMetricFamily(
        "oso_gateway_transfer_log_anchor_age_seconds",
        "Seconds since the last transfer-log anchor (absent: no valid anchor file).",
    )
    if last is not None:
        age.add_metric((), round((now - event_time({"at": last.at})).total_seconds(), 3))
    return [*found, age]


def directory_certificates(directory: Any) -> list[tuple[str, x509.Certificate]]:
    """(OIN, encryption certificate) of every gateway in a ``Directory`` (others: none)."""
    gateways = getattr(directory, "gateways", None)
    if not isinstance(gateways, Mapping):
        return []
    return [(oin, gw.encryption_certificate) for oin, gw in sorted(gateways.items())]


def pull_request_family(store: Store, *, now: datetime) -> Metric:
    """Dossier requests by side and status (``expired`` and ``declined`` included); for the old
    school also ``overdue``: open requests past their answer deadline. Counts only."""
    from oso_gateway.store.pull import request_counts

    family = GaugeMetricFamily(
        "oso_gateway_pull_requests",
        "Dossier requests by side (requester: we asked; holder: we were asked) and status.",
        labels=("side", "status"),
    )
    for (side, status), count in sorted(request_counts(store, now=now).items()):
        family.add_metric((side, status), count)
    return family


def gather(services: Any, *, now: datetime) -> list[Metric]:
    """Every family for one gateway (``GatewayServices``: store, identities, directory, trust).
    With the database unreachable, what does not need it is still reported, and
    ``oso_gateway_database_up`` says 0 (a scrape answered 500 and every gauge went with the
    database, certificate expiry and CRL freshness included: an operator's drill)."""
    from oso_gateway.errors import StoreUnavailable

    store: Store = services.store
    up = GaugeMetricFamily(
        "oso_gateway_database_up",
        "1 when this scrape could read the gateway's database, else 0 (then the families read "
        "from it are absent).",
    )
    families: list[Metric] = [up]
    head_seq: int | None = None
    try:
        from_store = store_families(store, now=now)
        log_size = int(from_store[-1].samples[0].value)  # the transfer log's head
        from_store.append(pull_request_family(store, now=now))
    except StoreUnavailable:
        up.add_metric((), 0)
    else:
        up.add_metric((), 1)
        head_seq = log_size
        families += from_store
    families += anchor_family(services.settings.anchor_file, head_seq, now=now)
    families.append(
        certificate_family(
            [(i.oin, i.certificate) for i in services.identities],
            directory_certificates(services.directory),
            now=now,
        )
    )
    families.append(crl_family(services.trust.crls, now=now))
    refused = getattr(services, "trust_reload_refused", None)
    families.append(
        GaugeMetricFamily(
            "oso_gateway_trust_reload_refused",
            "1 when the last reload of the trust material (CRLs, anchors, directory) was "
            "refused and the process answering keeps the material it had, else 0.",
            value=1 if refused else 0,
        )
    )
    return families


class GatewayCollector:
    """A prometheus-client collector of what one gateway's services know, read at each scrape
    (the clock: ``services.clock`` when it has one)."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        clock = getattr(self.services, "clock", None)
        now = clock() if clock is not None else datetime.now(UTC)
        yield from gather(self.services, now=now)
