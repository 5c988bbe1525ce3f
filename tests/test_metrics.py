"""``GET /metrics``: Prometheus text format with the gateway's real numbers after real transfers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _gateway_apps import World, two_gateways
from click.testing import CliRunner
from conftest import postgres_schema_engine

from oso_gateway.cli import main
from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.store import AtRestCipher, Duplicate, Store, create_store_engine, upgrade
from oso_gateway.store.logchain import make_event
from oso_gateway.transfer import metrics

_LINE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(\{(?P<labels>([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\n]|\\[\\\"n])*\",?)*)\})?"
    r" (?P<value>[-+]?(\d+(\.\d+)?([eE][-+]?\d+)?|Inf|NaN))"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, checking the format line by line."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split(" ")
            assert kind in {"gauge", "counter", "histogram"}
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        match = _LINE.fullmatch(line)
        assert match, f"not exposition format: {line!r}"
        name = match["name"]
        assert re.sub(r"_(bucket|sum|count)$", "", name) in typed or name in typed
        labels = frozenset(_LABEL.findall(match["labels"] or ""))
        samples[(name, labels)] = float(match["value"])
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with two_gateways(tmp_path) as world:
        yield world


def test_metrics_count_messages_rejections_latency_and_outbox_after_real_transfers(
    world: World,
) -> None:
    for seed in (1, 2):
        world.queue(generate_dossier(overstap="POVO", seed=seed, now=world.clock()))
    world.transport.down = True
    world.sender.outbox.run_once()
    world.transport.down = False
    world.clock.now += timedelta(seconds=30)
    world.sender.outbox.run_once()
    from gateway_pair import with_sending_school

    data = generate_dossier(overstap="POVO", seed=3, now=world.clock())
    world.post_sealed(with_sending_school(data, "03EF"))  # not mandated: E431
    world.queue(generate_dossier(overstap="POVO", seed=4, now=world.clock()))  # stays queued
    world.clock.now += timedelta(seconds=5)

    sent = parse(world.metrics(world.sender_app))
    assert value(sent, "oso_gateway_messages", direction="out", status="delivered") == 2
    assert value(sent, "oso_gateway_messages", direction="out", status="queued") == 1
    assert value(sent, "oso_gateway_outbox_depth", status="queued") == 1
    assert value(sent, "oso_gateway_outbox_depth", status="retrying") == 0
    assert value(sent, "oso_gateway_outbox_oldest_age_seconds") == pytest.approx(5, abs=1)
    retried = value(
        sent,
        "oso_gateway_message_errors_total",
        direction="out",
        status="retrying",
        code="OSO-E461",
    )
    assert retried == 2
    assert value(sent, "oso_gateway_outbound_delivery_seconds_count") == 2
    assert value(sent, "oso_gateway_outbound_delivery_seconds_sum") == pytest.approx(60, abs=1)
    assert value(sent, "oso_gateway_outbound_delivery_seconds_bucket", le="10") == 0
    assert value(sent, "oso_gateway_outbound_delivery_seconds_bucket", le="+Inf") == 2

    received = parse(world.metrics(world.receiver_app))
    assert value(received, "oso_gateway_messages", direction="in", status="imported") == 2
    assert value(received, "oso_gateway_messages", direction="in", status="rejected") == 1
    assert value(received, "oso_gateway_rejections_total", code="OSO-E431") == 1
    soap = {"endpoint": "/oso/v1/messages", "method": "POST"}
    duration = "oso_gateway_http_request_duration_seconds_count"
    assert value(received, duration, **soap, status="200") == 2
    assert value(received, duration, **soap, status="403") == 1


def test_metrics_give_days_to_expiry_of_our_and_the_directorys_certificates_and_crl_freshness(
    world: World,
) -> None:
    samples = parse(world.metrics(world.sender_app))
    expiry = {
        (dict(labels)["role"], dict(labels)["oin"]): v
        for (name, labels), v in samples.items()
        if name == "oso_gateway_certificate_expiry_days"
    }
    own = world.sender.identities[0]
    expected = (own.certificate.not_valid_after_utc - world.clock()).total_seconds() / 86400
    assert expiry[("identity", own.oin)] == pytest.approx(expected, abs=0.1)
    assert {oin for role, oin in expiry if role == "directory"} == set(
        world.sender.directory.gateways  # type: ignore[attr-defined]
    )
    crls = [v for (name, _l), v in samples.items() if name == "oso_gateway_crl_next_update_seconds"]
    assert len(crls) == len(world.sender.trust.crls) and all(v > 0 for v in crls)


def test_metrics_show_how_far_the_transfer_log_is_ahead_of_its_last_anchor(world: World) -> None:
    world.queue(generate_dossier(overstap="POVO", seed=9, now=world.clock()))
    before = parse(world.metrics(world.sender_app))
    events = value(before, "oso_gateway_transfer_log_events")
    assert events >= 1
    assert value(before, "oso_gateway_transfer_log_unanchored_events") == events
    assert not any(n == "oso_gateway_transfer_log_anchor_age_seconds" for n, _l in before)
    config = world.configs[0]
    assert CliRunner().invoke(main, ["log", "anchor", "--config", str(config)]).exit_code == 0
    after = parse(world.metrics(world.sender_app))
    assert value(after, "oso_gateway_transfer_log_unanchored_events") == 0
    age = value(after, "oso_gateway_transfer_log_anchor_age_seconds")
    assert abs(age) < 60  # anchored just now (by the real clock; the test's clock is set apart)


def test_render_escapes_label_values_and_writes_help_and_type() -> None:
    family = metrics.Family("oso_test_total", "counter", "A test.")
    family.add(3, issuer='CN=A "quoted"\\back\nslash')
    text = metrics.render([family])
    assert text.splitlines() == [
        "# HELP oso_test_total A test.",
        "# TYPE oso_test_total counter",
        'oso_test_total{issuer="CN=A \\"quoted\\"\\\\back\\nslash"} 3',
    ]
    assert value(parse(text), "oso_test_total", issuer='CN=A \\"quoted\\"\\\\back\\nslash') == 3


def test_histogram_buckets_are_cumulative_and_end_with_the_count() -> None:
    family = metrics.histogram("oso_h_seconds", "H.", {(): [0.2, 3.0, 3.0, 99999.0]})
    samples = parse(metrics.render([family]))
    assert value(samples, "oso_h_seconds_bucket", le="0.1") == 0
    assert value(samples, "oso_h_seconds_bucket", le="0.25") == 1
    assert value(samples, "oso_h_seconds_bucket", le="5") == 3
    assert value(samples, "oso_h_seconds_bucket", le="86400") == 3
    assert value(samples, "oso_h_seconds_bucket", le="+Inf") == 4
    assert value(samples, "oso_h_seconds_count") == 4
    assert value(samples, "oso_h_seconds_sum") == pytest.approx(100005.2)


def test_request_timer_counts_each_request_in_its_bucket() -> None:
    timer = metrics.RequestTimer(buckets=(0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 7.0):
        timer.observe("/x", "GET", 200, seconds)
    samples = parse(metrics.render([timer.family()]))
    labels = {"endpoint": "/x", "method": "GET", "status": "200"}
    name = "oso_gateway_http_request_duration_seconds"
    assert value(samples, f"{name}_bucket", **labels, le="0.1") == 2
    assert value(samples, f"{name}_bucket", **labels, le="1") == 3
    assert value(samples, f"{name}_bucket", **labels, le="+Inf") == 4
    assert value(samples, f"{name}_sum", **labels) == pytest.approx(7.65)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on SQLite or on PostgreSQL (own schema per test)."""
    if request.param == "sqlite":
        engine = create_store_engine(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
        upgrade(engine)
        yield Store(engine, AtRestCipher(bytes(range(32))))
        engine.dispose()
        return
    with postgres_schema_engine(request.getfixturevalue("postgres_url"), "m") as engine:
        upgrade(engine)
        yield Store(engine, AtRestCipher(bytes(range(32))))


def _rejected(store: Store, code: str, at: datetime) -> None:
    store.append_log(
        [make_event(at=at, kind="message", direction="in", status="rejected", error_code=code)],
        now=at,
    )


def test_store_metrics_on_each_database_latency_buckets_and_incremental_rejection_counts(
    store: Store,
) -> None:
    t0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    for seconds in (0.2, 45.0, 7200.0):
        record = store.enqueue_outbound(
            message_id=f"urn:uuid:{uuid.uuid4()}",
            action="urn:oso-gateway:action:dossier:deliver:1",
            payload=b"<dossier/>",
            payload_digest="ab" * 32,
            now=t0,
            counterpart_school="01AB00",
        )
        assert not isinstance(record, Duplicate)
        store.mark_delivered(record.pk, receipt=b"<r/>", now=t0 + timedelta(seconds=seconds))
    _rejected(store, "OSO-E431", t0)

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse(metrics.render(metrics.store_families(store, now=t0)))

    first = scrape()
    name = "oso_gateway_outbound_delivery_seconds"
    assert value(first, f"{name}_bucket", le="0.25") == 1
    assert value(first, f"{name}_bucket", le="60") == 2
    assert value(first, f"{name}_bucket", le="3600") == 2
    assert value(first, f"{name}_bucket", le="21600") == 3
    assert value(first, f"{name}_count") == 3
    assert value(first, f"{name}_sum") == pytest.approx(7245.2, abs=0.01)
    assert value(first, "oso_gateway_rejections_total", code="OSO-E431") == 1
    _rejected(store, "OSO-E431", t0)
    _rejected(store, "OSO-E202", t0)
    again = scrape()  # counts only what was appended since, and keeps the earlier count
    assert value(again, "oso_gateway_rejections_total", code="OSO-E431") == 2
    assert value(again, "oso_gateway_rejections_total", code="OSO-E202") == 1
    assert value(again, "oso_gateway_messages", direction="out", status="delivered") == 3
