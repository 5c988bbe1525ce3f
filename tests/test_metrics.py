"""``GET /metrics``: Prometheus text format with the gateway's real numbers after real transfers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _gateway_apps import World, two_gateways
from click.testing import CliRunner
from conftest import postgres_schema_engine
from metrics_support import exposition, parse, value

from oso_gateway.cli import main
from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.store import AtRestCipher, Duplicate, Store, create_store_engine, upgrade
from oso_gateway.store.logchain import make_event
from oso_gateway.transfer import metrics


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
    assert value(sent, "oso_gateway_outbound_delivery_seconds_bucket", le="10.0") == 0
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


def test_metrics_without_the_database_keep_what_does_not_need_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database down: /metrics answered 500 (Flask's HTML page) and every gauge went with
    it, certificate expiry and CRL freshness included (an operator's drill)."""
    from oso_gateway.errors import StoreUnavailable

    samples = parse(world.metrics(world.sender_app))
    assert value(samples, "oso_gateway_database_up") == 1
    assert any(name == "oso_gateway_transfer_log_unanchored_events" for name, _l in samples)

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise StoreUnavailable("database unavailable: OperationalError: connection refused")

    monkeypatch.setattr(metrics, "message_stats", unreachable)
    samples = parse(world.metrics(world.sender_app))
    assert value(samples, "oso_gateway_database_up") == 0
    names = {name for name, _labels in samples}
    assert "oso_gateway_certificate_expiry_days" in names
    assert "oso_gateway_crl_next_update_seconds" in names
    assert "oso_gateway_transfer_log_unanchored_events" not in names


def test_the_plain_metrics_listener_answers_the_probes_with_the_reasons(world: World) -> None:
    """Over mutual TLS a stale CRL of ours fails every handshake: /readyz could never say why,
    and a prober read "certificate expired" (an operator's drill). The plain listener on this
    machine answers it."""
    from oso_gateway.web.metrics import metrics_only_app
    from oso_gateway.web.soap import READINESS_KEY

    app = world.sender_app
    ready = metrics_only_app(app).test_client()
    assert ready.get("/readyz").get_json() == {"status": "ready"}
    assert ready.get("/healthz").status_code == 200
    app.extensions[READINESS_KEY] = lambda _now: ["CRL of CN=Issuing CA is stale"]
    page = metrics_only_app(app).test_client().get("/readyz")
    assert page.status_code == 503
    assert page.get_json()["reasons"] == ["CRL of CN=Issuing CA is stale"]
    assert metrics_only_app(app).test_client().get("/oso/v1/messages").status_code == 404


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
        return parse(exposition(metrics.store_families(store, now=t0)))

    first = scrape()
    name = "oso_gateway_outbound_delivery_seconds"
    assert value(first, f"{name}_bucket", le="0.25") == 1
    assert value(first, f"{name}_bucket", le="60.0") == 2
    assert value(first, f"{name}_bucket", le="3600.0") == 2
    assert value(first, f"{name}_bucket", le="21600.0") == 3
    assert value(first, f"{name}_count") == 3
    assert value(first, f"{name}_sum") == pytest.approx(7245.2, abs=0.01)
    assert value(first, "oso_gateway_rejections_total", code="OSO-E431") == 1
    _rejected(store, "OSO-E431", t0)
    _rejected(store, "OSO-E202", t0)
    again = scrape()  # counts only what was appended since, and keeps the earlier count
    assert value(again, "oso_gateway_rejections_total", code="OSO-E431") == 2
    assert value(again, "oso_gateway_rejections_total", code="OSO-E202") == 1
    assert value(again, "oso_gateway_messages", direction="out", status="delivered") == 3


def test_each_app_times_its_own_requests_in_its_own_registry(world: World) -> None:
    client = world.receiver_app.test_client()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    received = parse(world.metrics(world.receiver_app))
    name = "oso_gateway_http_request_duration_seconds"
    healthz = {"endpoint": "/healthz", "method": "GET", "status": "200"}
    assert value(received, f"{name}_count", **healthz) == 3
    assert value(received, f"{name}_bucket", **healthz, le="+Inf") == 3
    assert value(received, f"{name}_bucket", **healthz, le="86400.0") == 3
    assert 0 < value(received, f"{name}_sum", **healthz) < 60
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert value(received, f"{name}_count", **unmatched) == 1
    assert not [n for n, _labels in received if n.endswith("_created")]  # none, as before
    # The other gateway's app (same process) has a registry of its own: none of these.
    sent = parse(world.metrics(world.sender_app))
    assert (f"{name}_count", frozenset(healthz.items())) not in sent


def test_refused_tls_handshakes_are_counted_by_openssls_reason(tmp_path: Path) -> None:
    """A refused handshake never reaches the app: a revoked peer or a stale CRL of ours showed
    in no metric, only in the process log (an operator's drill)."""
    import socket
    import ssl
    import time

    from oso_gateway.runtime import start_gateway_in_thread
    from oso_gateway.transfer.demo import SECONDARY_OIN, dev_certs_dir, setup_dev_gateways
    from oso_gateway.web.metrics import metrics_only_app

    certs = dev_certs_dir()
    settings = setup_dev_gateways(tmp_path)[SECONDARY_OIN].settings
    running = start_gateway_in_thread(settings, port=0, threads=2)
    try:
        host, port = running.server.bind_addr[:2]

        def handshake(cert: str | None) -> None:
            context = ssl.create_default_context(cafile=str(certs / "ca-bundle.pem"))
            if cert is not None:
                context.load_cert_chain(certs / f"{cert}.crt.pem", certs / f"{cert}.key.pem")
            with socket.create_connection((host, port), timeout=10) as raw:
                try:
                    with context.wrap_socket(raw, server_hostname="localhost") as tls:
                        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        tls.recv(100)
                except (ssl.SSLError, OSError):
                    pass  # refused: what the server counted is what matters

        handshake(None)  # no client certificate
        handshake("gateway-00000001000000000009")  # the dev PKI's revoked one

        def counts() -> dict[tuple[str, str], float]:
            page = metrics_only_app(running.server.wsgi_app).test_client().get("/metrics")
            return {
                (dict(labels)["reason"], dict(labels)["verify"]): v
                for (name, labels), v in parse(page.get_data(as_text=True)).items()
                if name == "oso_gateway_tls_handshake_failures_total"
            }

        deadline = time.monotonic() + 10
        while sum(counts().values()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = counts()
        assert found.get(("CERTIFICATE_VERIFY_FAILED", "certificate revoked")) == 1, found
        assert sum(found.values()) == 2, found
    finally:
        running.stop()


def test_messages_refused_while_our_database_is_down_are_counted_without_it(
    world: World,
) -> None:
    """Our database down, the endpoint refused messages with OSO-E502 and no metric counted
    them: ``oso_gateway_rejections_total`` is read from the transfer log, in that database (an
    operator's drill). ``oso_gateway_database_errors_total`` counts them in memory."""
    errors = "oso_gateway_database_errors_total"
    before = parse(world.metrics(world.receiver_app))
    assert {
        where: value(before, errors, where=where) for where in ("receive", "api", "outbox")
    } == {
        "receive": 0,
        "api": 0,
        "outbox": 0,
    }
    dead = Store(create_store_engine("postgresql://nobody:x@127.0.0.1:9/none"))
    real, world.receiver.store = world.receiver.store, dead
    world.receiver.inbound.store = dead
    world.queue(generate_dossier(overstap="POVO", seed=11, now=world.clock()))
    assert world.sender.outbox.run_once().retrying == 1  # refused: 503, OSO-E502
    world.clock.now += timedelta(seconds=30)
    assert world.sender.outbox.run_once().retrying == 1

    down = parse(world.metrics(world.receiver_app))
    assert value(down, "oso_gateway_database_up") == 0
    assert value(down, errors, where="receive") == 2
    assert not any(name == "oso_gateway_rejections_total" for name, _labels in down)
    sent = parse(world.metrics(world.sender_app))  # the peer's outage is not the sender's
    assert value(sent, errors, where="receive") == 0 and value(sent, errors, where="outbox") == 0

    # the same gateway's school API answering E502, and its outbox worker failing a run
    from oso_gateway.web.api import create_api_app

    api = create_api_app(world.receiver.settings, services=world.receiver).test_client()
    answer = api.get("/api/v1/inbox", headers={"Authorization": "Bearer abc.def"})
    assert answer.status_code == 503 and answer.get_json()["code"] == "OSO-E502"
    real_outbox_store, world.receiver.outbox.store = world.receiver.outbox.store, dead
    stop = threading.Event()
    worker = threading.Thread(target=world.receiver.outbox.run_forever, args=(stop,))
    worker.start()
    deadline = time.monotonic() + 10
    while world.receiver.database_errors.counts()["outbox"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stop.set()
    worker.join(10)
    world.receiver.outbox.store = real_outbox_store
    down = parse(world.metrics(world.receiver_app))
    assert value(down, errors, where="api") == 1 and value(down, errors, where="outbox") == 1

    world.receiver.store = world.receiver.inbound.store = real  # back: it counts on, from memory
    up = parse(world.metrics(world.receiver_app))
    assert value(up, "oso_gateway_database_up") == 1
    assert value(up, errors, where="receive") == 2
