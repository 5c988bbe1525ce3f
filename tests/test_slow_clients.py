"""Slow and many clients over real TLS on loopback: a request has a deadline as a whole (not only
per read), a peer address may hold only so many connections, and the server as a whole only so
many; other peers are still served meanwhile.

Loopback has a whole /8, so the clients bind 127.0.0.x source addresses to be different peers.
No timing is asserted: each loop is bounded, and the test asserts what happened.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oso_gateway.server import RunningServer, server_ssl_context, start_in_thread

pytestmark = pytest.mark.integration

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
OIN1 = "00000001000000000001"
SLOW, OTHER = "127.0.0.2", "127.0.0.3"


def _hello_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + str(len(body)).encode() + b"\n"]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    options = getattr(request, "param", {})
    cert, key = DEV / "tls-localhost.crt.pem", DEV / "tls-localhost.key.pem"
    context = server_ssl_context(
        cert_file=cert, key_file=key, client_ca_files=[DEV / "ca-bundle.pem"]
    )
    running = start_in_thread(
        _hello_app,
        context=context,
        cert_file=cert,
        key_file=key,
        threads=4,
        timeout=30.0,
        request_deadline=options.get("deadline", 2.0),
        max_connections=options.get("total", 64),
        max_connections_per_address=options.get("per_address", 2),
    )
    yield running
    running.stop()


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(DEV / "ca-bundle.pem"))
    context.load_cert_chain(
        str(DEV / f"gateway-{OIN1}.crt.pem"), str(DEV / f"gateway-{OIN1}.key.pem")
    )
    return context


def _connect(running: RunningServer, source: str) -> ssl.SSLSocket:
    port = int(running.url.rsplit(":", 1)[1])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return _client_context().wrap_socket(raw, server_hostname="localhost")


def _get(running: RunningServer, source: str) -> bytes:
    with _connect(running, source) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


class SlowClient(threading.Thread):
    """Connects over TLS and sends a POST a byte at a time, up to ``rounds`` bytes."""

    def __init__(
        self, running: RunningServer, source: str, rounds: int = 400, path: str = "/"
    ) -> None:
        super().__init__(daemon=True)
        self.running, self.source, self.rounds, self.path = running, source, rounds, path
        self.refused = False
        self.cut_off = False
        self.answer = b""
        self.connected = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        request = b"POST %s HTTP/1.1\r\nHost: localhost\r\n" % self.path.encode()
        request += b"Content-Type: text/xml\r\nContent-Length: 100000\r\n\r\n"
        request += b"x" * 100_000
        try:
            sock = _connect(self.running, self.source)
        except OSError:
            self.refused = True
            self.connected.set()
            return
        self.connected.set()
        try:
            sock.settimeout(0.2)
            for i in range(self.rounds):
                if self.stop.is_set():
                    return
                try:
                    sock.send(request[i : i + 1])
                    self.answer += sock.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    self.cut_off = True
                    return
                if self.answer:
                    self.cut_off = True
                    return
        finally:
            sock.close()


def _slow_clients(running: RunningServer, sources: list[str]) -> list[SlowClient]:
    clients = [SlowClient(running, source) for source in sources]
    for client in clients:
        client.start()
        client.connected.wait(10)
    return clients


def test_five_slow_clients_do_not_stop_a_sixth_peer(server: RunningServer) -> None:
    clients = _slow_clients(server, [SLOW] * 5)
    try:
        answer = _get(server, OTHER)
        assert answer.startswith(b"HTTP/1.1 200") and b"hello 0\n" in answer
        # the per-address cap (2) admitted two of the five; their TLS connection was cut for the
        # other three as soon as they connected
        assert sum(not c.refused for c in clients) >= 2
        assert all(c.is_alive() or c.refused or c.cut_off for c in clients)
    finally:
        for client in clients:
            client.stop.set()
            client.join(15)


def test_a_slow_client_is_cut_off_at_the_request_deadline(server: RunningServer) -> None:
    (client,) = _slow_clients(server, [SLOW])
    client.join(60)  # 400 rounds of at most 0.2 s: bounded
    assert not client.is_alive()
    assert client.cut_off, "the server let a byte-a-time request run past its deadline"
    assert client.answer == b"" or client.answer.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("server", [{"per_address": 2, "deadline": 30.0}], indirect=True)
def test_a_peer_address_holds_at_most_its_cap_of_connections(server: RunningServer) -> None:
    clients = _slow_clients(server, [SLOW] * 4)
    try:
        for client in clients:
            client.join(0.5)
        # refused: the TLS handshake fails or the connection is closed straight away
        held = [c for c in clients if c.is_alive()]
        assert len(held) == 2
        assert _get(server, OTHER).startswith(b"HTTP/1.1 200")
    finally:
        for client in clients:
            client.stop.set()
            client.join(15)


@pytest.mark.parametrize(
    "server", [{"total": 3, "per_address": 3, "deadline": 30.0}], indirect=True
)
def test_the_server_holds_at_most_its_total_cap_of_connections(server: RunningServer) -> None:
    clients = _slow_clients(server, ["127.0.0.4", "127.0.0.5", "127.0.0.6"])
    try:
        with pytest.raises(OSError):
            _get(server, OTHER)  # the fourth connection is closed at once
    finally:
        for client in clients:
            client.stop.set()
            client.join(15)
    for _ in range(50):  # the slots are released when the slow clients go
        try:
            if _get(server, OTHER).startswith(b"HTTP/1.1 200"):
                break
        except OSError:
            threading.Event().wait(0.1)
    else:
        pytest.fail("the server did not serve again after the connections closed")
