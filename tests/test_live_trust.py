"""Live trust material (issue 14, point 4): a replaced CRL, directory or anchor file takes effect
without a restart. Real gateways on loopback (mutual TLS), the dev PKI's issuing CA signs the
new CRL."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _gateway_apps import queue_generated
from cryptography.hazmat.primitives.asymmetric import rsa

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.runtime import build_services, start_gateway_in_thread, trust_reloader
from oso_gateway.security.keys import load_certificate, load_private_key
from oso_gateway.security.pki import Authority, crl_pem, make_crl
from oso_gateway.store import models as m
from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, dev_certs_dir, setup_dev_gateways
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import prepare_dossier
from oso_gateway.transfer.services import GatewayServices

pytestmark = pytest.mark.integration

CERTS = dev_certs_dir()
RECEIVER_SCHOOL = School("01AB", "00")


def _issuing_ca() -> Authority:
    key = load_private_key((CERTS / "issuing-ca.key.pem").read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey)
    return Authority(
        certificate=load_certificate((CERTS / "issuing-ca.crt.pem").read_bytes()), key=key
    )


def _write_crl_revoking(path: Path, serial: int | None, *, number: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    revoked = [] if serial is None else [(serial, now)]
    crl = make_crl(
        issuer=_issuing_ca(),
        this_update=now,
        next_update=now + timedelta(days=7),
        revoked=revoked,
        number=number,
    )
    fresh = path.with_suffix(".new")
    fresh.write_bytes(crl_pem(crl))
    os.replace(fresh, path)  # as a CRL job replaces it: atomically


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[GatewayServices, GatewayServices, Path]]:
    gateways = setup_dev_gateways(tmp_path)
    crl_dir = tmp_path / "crls"
    crl_dir.mkdir()
    shutil.copy(CERTS / "root-ca.crl.pem", crl_dir / "root-ca.crl.pem")
    _write_crl_revoking(crl_dir / "issuing-ca.crl.pem", None, number=100)
    settings = gateways[SECONDARY_OIN].settings
    settings = replace(
        settings,
        trust=replace(
            settings.trust,
            crl_files=(crl_dir / "root-ca.crl.pem", crl_dir / "issuing-ca.crl.pem"),
        ),
    )
    receiver = build_services(settings)
    sender = build_services(gateways[PRIMARY_OIN].settings)
    yield receiver, sender, crl_dir / "issuing-ca.crl.pem"
    sender.close()
    receiver.close()


def test_a_replaced_crl_revoking_the_peer_is_enforced_without_a_restart(
    pair: tuple[GatewayServices, GatewayServices, Path],
) -> None:
    receiver, sender, crl_file = pair
    running = start_gateway_in_thread(receiver.settings, services=receiver, threads=4)
    reloader = trust_reloader(receiver, running)
    stop, wake = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=reloader.run, args=(stop,), kwargs={"wake": wake, "interval": 0.2}, daemon=True
    )
    watcher.start()
    try:
        first = queue_generated(sender, 1)
        assert sender.outbox.wait_for(first, timeout=60).status == m.DELIVERED
        # the CRL job replaces the file: the sender's certificate is now revoked
        serial = sender.identities[0].certificate.serial_number
        _write_crl_revoking(crl_file, serial, number=101)
        deadline = time.monotonic() + 20
        while reloader.reloads < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reloader.reloads == 1, "the replaced CRL file was not picked up"
        # WS-Security: a message signed with the revoked certificate is refused (E221: the
        # signer is untrusted; our log records the cause, E304 revoked) ...
        sealed = prepare_dossier(
            generate_dossier(overstap="POVO", seed=2, now=datetime.now(UTC)),
            to=RECEIVER_SCHOOL,
            directory=sender.directory,
            config=sender.sender_config,
            now=datetime.now(UTC),
        ).sealed
        answer = receiver.receiver.handle(sealed.data)
        assert answer.http_status == 403 and b"OSO-E221" in answer.body
        # ... and over the wire the new TLS context refuses the revoked client certificate
        second = queue_generated(sender, 3)
        record = sender.outbox.wait_for(second, timeout=15)
        assert record.status != m.DELIVERED
        with receiver.store.engine.connect() as connection:
            from sqlalchemy import func, select

            imported = connection.execute(select(func.count()).select_from(m.Dossier)).scalar_one()
        assert imported == 1
    finally:
        stop.set()
        watcher.join(5)
        running.stop()


def test_a_fetched_crl_revoking_the_peer_is_enforced_in_the_handshake_too(
    pair: tuple[GatewayServices, GatewayServices, Path],
) -> None:
    """The TLS listener read only the configured CRL files, not those fetched from the
    distribution points: a peer revoked by a fetched CRL completed the handshake (a review; the
    WS-Security check refused it later)."""
    import socket
    import ssl

    receiver, sender, _crl = pair
    cache = receiver.settings.crl_cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    serial = sender.identities[0].certificate.serial_number
    fetched = make_crl(
        issuer=_issuing_ca(),
        this_update=now,
        next_update=now + timedelta(days=7),
        revoked=[(serial, now)],
        number=200,
    )
    (cache / "issuing.crl.pem").write_bytes(crl_pem(fetched))
    running = start_gateway_in_thread(receiver.settings, services=receiver, threads=2, port=0)
    try:
        host, port = running.server.bind_addr[:2]
        context = ssl.create_default_context(cafile=str(CERTS / "ca-bundle.pem"))
        oin = sender.identities[0].oin
        context.load_cert_chain(CERTS / f"gateway-{oin}.crt.pem", CERTS / f"gateway-{oin}.key.pem")
        with socket.create_connection((host, port), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    if not tls.recv(100):  # TLS 1.3: the refusal comes with the first read
                        raise ConnectionError("closed")
    finally:
        running.stop()


def test_a_broken_replacement_is_refused_and_the_current_material_stays(
    pair: tuple[GatewayServices, GatewayServices, Path], caplog: pytest.LogCaptureFixture
) -> None:
    receiver, _sender, crl_file = pair
    reloader = trust_reloader(receiver)
    before = receiver.trust
    crl_file.write_bytes(b"-----BEGIN X509 CRL-----\nbroken\n-----END X509 CRL-----\n")
    assert reloader.changed()
    with caplog.at_level("WARNING"):
        assert reloader.check() is False
    assert "OSO-E320" in caplog.text and str(crl_file) in caplog.text  # which file it was
    assert receiver.trust is before and receiver.receiver.config.trust is before
    assert not reloader.changed()  # not retried until the file changes again
    # the metrics say so (it was only in the process log: an operator's drill) ...
    from oso_gateway.transfer.metrics import gather

    def refused() -> float:
        [family] = [
            f
            for f in gather(receiver, now=datetime.now(UTC))
            if f.name == "oso_gateway_trust_reload_refused"
        ]
        return family.samples[0].value

    assert receiver.trust_reload_refused == "OSO-E320" and refused() == 1
    _write_crl_revoking(crl_file, None, number=103)  # ... until a good one is applied
    assert reloader.check() is True and refused() == 0


def test_a_changed_directory_file_is_reloaded(
    pair: tuple[GatewayServices, GatewayServices, Path],
) -> None:
    _receiver, sender, _crl = pair
    path = sender.settings.require_directory_file()
    reloader = trust_reloader(sender)
    old = sender.directory.lookup("01AB", "00").endpoint
    text = path.read_text(encoding="utf-8").replace(old, "https://moved.example/oso/v1/messages")
    time.sleep(0.01)
    path.write_text(text, encoding="utf-8")
    assert reloader.check() is True
    assert sender.directory.lookup("01AB", "00").endpoint == "https://moved.example/oso/v1/messages"
    assert sender.outbox.directory.lookup("01AB", "00").endpoint.startswith("https://moved")


def test_a_reloaded_directory_that_breaks_our_own_identity_is_said(
    pair: tuple[GatewayServices, GatewayServices, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A directory giving our own OIN another gateway's certificate was taken with only
    "trust material reloaded" (an operator's drill): what `directory check` finds is logged."""
    _receiver, sender, _crl = pair
    path = sender.settings.require_directory_file()
    reloader = trust_reloader(sender)
    ours = f"gateway-{sender.identities[0].oin}.crt.pem"
    text = path.read_text(encoding="utf-8")
    assert ours in text
    time.sleep(0.01)
    path.write_text(text.replace(ours, "gateway-00000001000000000002.crt.pem"), encoding="utf-8")
    with caplog.at_level("WARNING"):
        assert reloader.check() is True
    said = [r.getMessage() for r in caplog.records if "the directory as reloaded" in r.getMessage()]
    assert any(
        f"gateway {sender.identities[0].oin}" in m and "holds another key" in m for m in said
    ), said


def test_a_changed_configuration_file_is_said_to_need_a_restart(
    pair: tuple[GatewayServices, GatewayServices, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Only the trust material is live: a `[pull]` policy set while serving held for the
    command line at once and for the server not at all, silently (a walkthrough)."""
    _receiver, sender, _crl = pair
    config = sender.settings.config_file
    assert config is not None
    reloader = trust_reloader(sender)
    with caplog.at_level("WARNING"):
        assert reloader.check() is False
        assert "restart" not in caplog.text  # nothing changed: nothing said
        config.write_text(config.read_text() + "\n[pull]\npush_requires_inzage = true\n")
        reloader.check()
        reloader.check()
    warnings = [r for r in caplog.records if "configuration file" in r.getMessage()]
    assert len(warnings) == 1 and str(config) in warnings[0].getMessage()  # once per change
    assert "restart serve and outbox run" in warnings[0].getMessage()
    assert "does not load" not in warnings[0].getMessage()
    assert sender.pull.settings.policy_for("00YY00").push_requires_inzage is False  # not applied
    caplog.clear()
    with caplog.at_level("WARNING"):  # a mistake is said now, not found at the restart
        config.write_text(config.read_text().replace("= true", '= "bogus"'))
        reloader.check()
    [broken] = [r for r in caplog.records if "configuration file" in r.getMessage()]
    assert "does not load as it is: OSO-E501" in broken.getMessage(), broken.getMessage()
    assert "push_requires_inzage: must be true or false" in broken.getMessage()


def test_a_configuration_the_loader_chokes_on_does_not_end_the_reloading(
    pair: tuple[GatewayServices, GatewayServices, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A database URL with a port that is no number raised a ValueError in the reload thread:
    the thread died, and a CRL that revoked a peer afterwards was never applied, SIGHUP
    included, while the gateway looked healthy (a security review)."""
    receiver, sender, crl_file = pair
    config = receiver.settings.config_file
    assert config is not None
    reloader = trust_reloader(receiver)
    stop, wake = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=reloader.run, args=(stop,), kwargs={"wake": wake, "interval": 0.1}, daemon=True
    )
    with caplog.at_level("WARNING"):
        watcher.start()
        try:
            config.write_text(
                'database_url = "postgresql+psycopg://oso:pw@db:5432:99/oso"\n' + config.read_text()
            )
            deadline = time.monotonic() + 20
            while "does not load" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "does not load as it is: OSO-E501" in caplog.text, caplog.text
            assert "pw@" not in caplog.text  # the URL's password is not repeated
            serial = sender.identities[0].certificate.serial_number
            _write_crl_revoking(crl_file, serial, number=102)
            while reloader.reloads < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert watcher.is_alive() and reloader.reloads == 1
            from oso_gateway.errors import TrustError
            from oso_gateway.security.trust import verify_certificate

            with pytest.raises(TrustError) as revoked:
                verify_certificate(
                    sender.identities[0].certificate,
                    trust=receiver.trust,
                    now=datetime.now(UTC),
                    purpose="signing",
                )
            assert revoked.value.code == "OSO-E304"
        finally:
            stop.set()
            watcher.join(5)


def test_a_failing_reload_hook_shows_in_the_metric(
    pair: tuple[GatewayServices, GatewayServices, Path],
) -> None:
    """The TLS listener's reload failed (a CRL its loader takes but OpenSSL's does not), the
    listener kept its old CRLs, and the metric said all was well (a review)."""
    receiver, _sender, crl_file = pair

    def tls_refuses() -> None:
        raise ValueError("the TLS context did not load")

    reloader = trust_reloader(receiver)
    reloader.on_reload.append(tls_refuses)
    _write_crl_revoking(crl_file, None, number=104)
    assert reloader.check() is True  # the trust material is reloaded ...
    assert receiver.trust_reload_refused == "ValueError"  # ... the listener's part is not


def test_the_reload_loop_outlives_a_failing_check(
    pair: tuple[GatewayServices, GatewayServices, Path], caplog: pytest.LogCaptureFixture
) -> None:
    receiver, _sender, _crl = pair
    reloader = trust_reloader(receiver)
    calls = []

    def failing() -> bool:
        calls.append(1)
        raise RuntimeError("a bug")

    reloader.check = failing  # type: ignore[method-assign]
    stop, wake = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=reloader.run, args=(stop,), kwargs={"wake": wake, "interval": 0.05}, daemon=True
    )
    with caplog.at_level("ERROR"):
        watcher.start()
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        wake.set()  # SIGHUP still reloads
        while reloader.reloads < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        watcher.join(5)
    assert len(calls) >= 3 and reloader.reloads == 1
    assert "the trust reload check failed" in caplog.text


def test_an_outbox_worker_of_its_own_watches_its_files_too(tmp_path: Path) -> None:
    """`outbox run` reloaded no trust material and said nothing of a changed configuration,
    while the docs said every process does (an operator's walkthrough)."""
    import signal
    import subprocess
    import sys
    import time

    config = setup_dev_gateways(tmp_path / "w")[PRIMARY_OIN].config_file
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "oso_gateway.cli", "outbox", "run", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(2.0)  # started, its files' versions taken
            config.write_text(config.read_text() + "\n[pull]\nexpire_days = 30\n")
            deadline = time.monotonic() + 30
            while "configuration file" not in log.read_text() and time.monotonic() < deadline:
                assert worker.poll() is None, log.read_text()
                time.sleep(0.5)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    text = log.read_text()
    assert "restart serve and outbox run" in text, text
