"""CRLs fetched from the distribution points (issue 14, point 4), from a loopback HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.runtime import build_services, load_trust
from oso_gateway.security.keys import load_certificate, load_private_key
from oso_gateway.security.pki import Authority, crl_pem, make_crl
from oso_gateway.transfer.crlfetch import CrlFetcher, cached_crl_files, distribution_points
from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, dev_certs_dir, setup_dev_gateways
from oso_gateway.transfer.reload import TrustReloader
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import prepare_dossier

CERTS = dev_certs_dir()


def _issuing_ca() -> Authority:
    key = load_private_key((CERTS / "issuing-ca.key.pem").read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey)
    return Authority(
        certificate=load_certificate((CERTS / "issuing-ca.crt.pem").read_bytes()), key=key
    )


class CrlServer:
    """Serves ``self.body`` at every path over plain HTTP on loopback."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/issuing-ca.crl"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    server = CrlServer()
    yield server
    server.close()


def _cert_with_cdp(url: str) -> x509.Certificate:
    """An end-entity certificate of the dev issuing CA that names ``url`` as its CRL DP."""
    ca = _issuing_ca()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cdp test")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
            ),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )


def _crl(revoked: list[int], *, number: int, key: rsa.RSAPrivateKey | None = None) -> bytes:
    ca = _issuing_ca()
    if key is not None:
        ca = Authority(certificate=ca.certificate, key=key)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    crl = make_crl(
        issuer=ca,
        this_update=now,
        next_update=now + timedelta(days=7),
        revoked=[(serial, now) for serial in revoked],
        number=number,
    )
    return crl_pem(crl)


def test_distribution_points_are_the_http_urls_of_the_certificates() -> None:
    cert = _cert_with_cdp("http://crl.example/issuing.crl")
    assert distribution_points([cert, cert]) == ["http://crl.example/issuing.crl"]
    assert distribution_points([_issuing_ca().certificate]) == []


def test_a_fetched_crl_revoking_a_peer_is_enforced_after_the_reload(
    tmp_path: Path, crl_server: CrlServer
) -> None:
    gateways = setup_dev_gateways(tmp_path)
    receiver = build_services(gateways[SECONDARY_OIN].settings)
    sender = build_services(gateways[PRIMARY_OIN].settings)
    try:
        cache = tmp_path / "crls"
        fetcher = CrlFetcher(
            cache_dir=cache,
            trust=lambda: receiver.trust,
            certificates=lambda: [_cert_with_cdp(crl_server.url)],
        )
        reloader = TrustReloader(
            receiver, load_trust=load_trust, extra_crl_files=lambda: cached_crl_files(cache)
        )
        serial = sender.identities[0].certificate.serial_number
        crl_server.body = _crl([serial], number=500)
        report = fetcher.fetch_all()
        assert report.updated == [crl_server.url] and not report.failed
        assert cached_crl_files(cache) == [fetcher.path_for(crl_server.url)]
        assert fetcher.fetch_all().unchanged == [crl_server.url]  # same CRL: nothing rewritten
        assert reloader.check() is True
        now = datetime.now(UTC)
        sealed = prepare_dossier(
            generate_dossier(overstap="POVO", seed=1, now=now),
            to=School("01AB", "00"),
            directory=sender.directory,
            config=sender.sender_config,
            now=now,
        ).sealed
        answer = receiver.receiver.handle(sealed.data)
        assert answer.http_status == 403 and b"OSO-E221" in answer.body
    finally:
        sender.close()
        receiver.close()


def test_a_crl_not_signed_by_a_known_ca_or_an_http_error_changes_nothing(
    tmp_path: Path, crl_server: CrlServer
) -> None:
    trust_holder = setup_dev_gateways(tmp_path)[SECONDARY_OIN]
    services = build_services(trust_holder.settings)
    try:
        cache = tmp_path / "crls"
        fetcher = CrlFetcher(
            cache_dir=cache,
            trust=lambda: services.trust,
            certificates=lambda: [_cert_with_cdp(crl_server.url)],
        )
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        crl_server.body = _crl([1], number=7, key=stranger)
        report = fetcher.fetch_all()
        assert "not signed by a CA we know" in report.failed[crl_server.url]
        crl_server.status, crl_server.body = 404, b"no"
        assert "404" in fetcher.fetch_all().failed[crl_server.url]
        assert cached_crl_files(cache) == []
    finally:
        services.close()
