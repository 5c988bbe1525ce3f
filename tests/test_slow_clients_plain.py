"""The school API's and the console's listener (``serve_plain_or_tls``) against slow, silent and
oversized clients, before any credential: the request head has a deadline of its own and a size
limit, and on HTTPS a client that connects and says nothing holds no thread (found by an attack
on the API: one trickled header line every 5 s held a worker for ever; 150 MiB of header grew
the process by that much).

Real sockets on loopback, plain and TLS. No timing is asserted: each wait is bounded, and the
tests assert what happened.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oso_gateway.server import MAX_REQUEST_HEAD_BYTES, RunningServer, serve_plain_or_tls

pytestmark = pytest.mark.integration

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"


def _echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"got " + str(len(body)).encode() + b"\n"]


def _serve(*, tls: bool) -> RunningServer:
    return serve_plain_or_tls(
        _echo_app,
        host="127.0.0.1",
        port=0,
        tls_cert_file=DEV / "tls-localhost.crt.pem" if tls else None,
        tls_key_file=DEV / "tls-localhost.key.pem" if tls else None,
        threads=2,
        server_name="test",
        what="test listener",
        request_deadline=10.0,
        head_deadline=1.0,
        max_connections_per_address=8,
    )


@pytest.fixture(params=["http", "https"])
def listener(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    running = _serve(tls=request.param == "https")
    yield running
    running.stop()


def _connect(running: RunningServer) -> socket.socket:
    port = int(running.url.rsplit(":", 1)[1].split("/")[0])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if running.url.startswith("https"):
        context = ssl.create_default_context(cafile=str(DEV / "ca-bundle.pem"))
        return context.wrap_socket(raw, server_hostname="localhost")
    return raw


def _read_all(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:  # reset by the server
        pass
    return answer


def _get(running: RunningServer) -> bytes:
    with _connect(running) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return _read_all(sock)


class HeaderTrickler(threading.Thread):
    """Sends a request line, then one header line every 0.3 s (as the attack did every 5 s)."""

    def __init__(self, running: RunningServer, lines: int = 20) -> None:
        super().__init__(daemon=True)
        self.running, self.lines = running, lines
        self.cut_off = False
        self.answer = b""

    def run(self) -> None:
        with _connect(self.running) as sock:
            sock.settimeout(0.3)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            for i in range(self.lines):
                try:
                    sock.sendall(b"X-Slow-%d: 1\r\n" % i)
                    self.answer += sock.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    self.cut_off = True
                    return
                if self.answer:
                    self.cut_off = True
                    return


def test_a_client_trickling_its_headers_is_cut_off_at_the_head_deadline(
    listener: RunningServer,
) -> None:
    # two of them hold both threads for as long as the server lets them
    tricklers = [HeaderTrickler(listener) for _ in range(2)]
    for trickler in tricklers:
        trickler.start()
    for trickler in tricklers:
        trickler.join(40)  # 20 lines of at most 0.3 s each (6 s, under the 10 s request deadline)
    assert all(not t.is_alive() for t in tricklers)
    assert all(t.cut_off for t in tricklers), "a trickled request head ran past its deadline"
    assert all(t.answer in (b"",) or t.answer.startswith(b"HTTP/1.1 408") for t in tricklers)
    assert _get(listener).startswith(b"HTTP/1.1 200")


def test_a_slow_body_after_a_prompt_head_has_the_whole_request_deadline(
    listener: RunningServer,
) -> None:
    """The head deadline (1 s here) is not the body's: an upload may take longer."""
    with _connect(listener) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 10\r\n\r\n"
        )
        for _ in range(10):  # ten bytes over about 2 s
            threading.Event().wait(0.2)
            sock.sendall(b"x")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200") and b"got 10\n" in answer


def test_an_oversized_request_head_is_refused(listener: RunningServer) -> None:
    with _connect(listener) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
        try:
            for _ in range(4 * MAX_REQUEST_HEAD_BYTES // 16384):
                sock.sendall(b"a" * 16384)
        except OSError:
            pass  # the server stopped reading and closed
        answer = _read_all(sock)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413")
    assert _get(listener).startswith(b"HTTP/1.1 200")


def test_on_https_a_silent_connection_holds_no_thread() -> None:
    listener = _serve(tls=True)
    port = int(listener.url.rsplit(":", 1)[1].split("/")[0])
    silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    try:
        # four connections that never send their ClientHello, two worker threads: still served
        assert _get(listener).startswith(b"HTTP/1.1 200")
    finally:
        for sock in silent:
            sock.close()
        listener.stop()


def test_the_http_servers_own_errors_go_to_our_log_without_their_text(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """cheroot wrote a peer's broken request as a raw traceback with the exception's text on
    standard error (found by a helper's walkthrough: a sender killed mid-send)."""
    import logging

    listener = _serve(tls=False)
    try:
        with caplog.at_level(logging.INFO, logger="oso_gateway.server"):
            try:
                raise ValueError("Jansen 2014-05-06")  # an exception made of its input
            except ValueError as exc:
                listener.server.error_log(repr(exc), level=logging.ERROR, traceback=True)
            listener.server.error_log("socket.error 8", level=logging.WARNING)
    finally:
        listener.stop()
    assert "Jansen" not in caplog.text and "Jansen" not in capsys.readouterr().err
    assert "request failed in the HTTP server: ValueError" in caplog.text
    assert "socket.error 8" in caplog.text


def test_an_exceptions_text_inside_cheroots_message_is_replaced_by_its_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    listener = _serve(tls=False)
    try:
        with caplog.at_level(logging.INFO, logger="oso_gateway.server"):
            try:
                raise ValueError("Jansen 2014-05-06")
            except ValueError as exc:
                listener.server.error_log(
                    f"Unhandled error while processing an incoming connection {exc!r}",
                    level=logging.ERROR,
                    traceback=True,
                )
    finally:
        listener.stop()
    assert "Jansen" not in caplog.text
    assert "Unhandled error while processing an incoming connection ValueError" in caplog.text


def test_the_api_and_console_have_more_workers_than_one_address_may_hold(
    tmp_path: Path,
) -> None:
    """One address may hold ``max_connections_per_address`` connections: with 8 API workers
    against a cap of 16, one source's slow clients could take them all (found by a review)."""
    import dataclasses

    from oso_gateway.config import LimitSettings
    from oso_gateway.runtime import build_services
    from oso_gateway.transfer.demo import VENDOR_OIN, setup_dev_gateways
    from oso_gateway.web.api import start_api_in_thread

    settings = setup_dev_gateways(tmp_path)[VENDOR_OIN].settings
    settings = dataclasses.replace(settings, limits=LimitSettings(max_connections_per_address=12))
    services = build_services(settings)
    try:
        running = start_api_in_thread(settings, services=services, port=0)
        try:
            assert running.server.requests.min >= 12 + 4
        finally:
            running.stop()
    finally:
        services.close()


def test_a_plain_listener_caps_its_open_connections() -> None:
    """A plain listener (the API or console behind a front end) had no cap on open connections:
    a client could hold thousands of idle sockets. Over ``max_connections`` the acceptor closes
    a new one before any worker reads it; one that closes makes room again. No cap per address
    (behind a front end every connection comes from its one address)."""
    listener = serve_plain_or_tls(
        _echo_app,
        host="127.0.0.1",
        port=0,
        tls_cert_file=None,
        tls_key_file=None,
        threads=2,
        server_name="test",
        what="test listener",
        max_connections=3,
        max_connections_per_address=1,
    )
    held = [_connect(listener) for _ in range(3)]  # silent, from one address: more than 1
    try:
        for sock in held:  # each of them is served, which shows it was admitted
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        with _connect(listener) as fourth:
            fourth.settimeout(10)
            fourth.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert _read_all(fourth) == b"", "a connection over the cap was served"
        held.pop().close()
        deadline = threading.Event()
        for _ in range(50):  # the closed one is released when the server notices it
            answer = _get(listener)
            if answer:
                break
            deadline.wait(0.1)
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
        listener.stop()
