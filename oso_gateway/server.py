"""Production WSGI server: cheroot (pure Python, threaded) with mutual TLS.

TLS 1.2 at least (1.3 preferred by OpenSSL), a client certificate REQUIRED and verified against
the trust anchors (and, when CRL files are configured, checked against them by OpenSSL too; the
WS-Security layer then verifies the signing certificate in full). ``start_in_thread`` runs a
server on an ephemeral port in the background (integration tests, the demo).

The TLS handshake never runs in cheroot's single acceptor thread (a peer that connects and
sends nothing would otherwise stall every other client's accept): an accepted socket
is wrapped without handshaking and parked in the connection selector; once the client has sent
something (its ClientHello) a worker thread performs the handshake, bounded by
``HANDSHAKE_TIMEOUT``. An idle or slow TCP peer therefore never delays other clients' accepts.

Slow and many clients (issue 13): every read of a request checks a deadline for the whole request
(headers and body: ``limits.request_deadline``), not only a timeout per read, so a client that
sends a byte at a time holds a worker for at most that long; the request line and headers must
arrive within ``HEAD_DEADLINE`` of the request's start, and be at most ``MAX_REQUEST_HEAD_BYTES``
long (cheroot's default is no limit); and the acceptor closes a new connection at once when the
server already holds ``max_connections`` in all or ``max_connections_per_address`` from that
peer's address. The school API's and the console's listeners (``serve_plain_or_tls``) get the
same deadlines, limits and cap on open connections (on plain HTTP counted as the acceptor
hands a connection on), and on HTTPS the same cap per address and deferred handshake.
``docs/security.md`` §2 describes the production set-up that keeps slow clients away from the
workers altogether (nginx in front).
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot import wsgi
from cheroot.server import HTTPConnection, HTTPRequest
from cheroot.ssl.builtin import BuiltinSSLAdapter

from oso_gateway.errors import ConfigError, ListenFailed

log = logging.getLogger(__name__)

WSGIApp = Callable[..., Any]

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a worker waits for a client to complete the TLS handshake once it has started it."""

HEAD_DEADLINE = 20.0
"""Seconds from a request's first read until its request line and headers must have arrived
(the body then has the rest of ``limits.request_deadline``): a client that trickles its headers
frees its worker after this long."""

MAX_REQUEST_HEAD_BYTES = 64 * 1024
"""The longest request line plus headers a listener reads (longer: 413, the connection closed)."""


class ConnectionCaps:
    """Open connections in all and per peer address; ``admit`` refuses over either cap."""

    def __init__(self, *, total: int, per_address: int) -> None:
        self.total, self.per_address = total, per_address
        self._open: dict[str, int] = {}
        self._count = 0
        self._lock = threading.Lock()

    def admit(self, address: str) -> bool:
        with self._lock:
            if self._count >= self.total or self._open.get(address, 0) >= self.per_address:
                return False
            self._open[address] = self._open.get(address, 0) + 1
            self._count += 1
            return True

    def release(self, address: str) -> None:
        with self._lock:
            left = self._open.get(address, 0) - 1
            if left < 0:
                return
            self._count -= 1
            if left:
                self._open[address] = left
            else:
                del self._open[address]


def _peer_address(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return ""


class _DeferredHandshakeAdapter(BuiltinSSLAdapter):
    """Wraps an accepted socket WITHOUT the handshake (the acceptor thread never waits on a peer),
    after checking the connection caps (over a cap: the socket is closed at once).

    The environ entries (``wsgi.url_scheme``, client certificate, cipher) are made by the
    connection after its handshake, in a worker thread.
    """

    caps: ConnectionCaps | None = None

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, Any]]:
        address = _peer_address(sock)
        if self.caps is not None and not self.caps.admit(address):
            log.warning("connection from %s refused: over the connection caps", address)
            sock.close()
            raise cheroot_errors.FatalSSLAlert("over the connection caps")
        try:
            wrapped = self.context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        except BaseException:
            if self.caps is not None:
                self.caps.release(address)
            raise
        return wrapped, {}


class _DeadlineReads:
    """The socket under a connection's read buffer: each read waits at most until the deadline
    of the request being read (and at most the per-read timeout)."""

    def __init__(self, sock: socket.socket, conn: _TLSConnection) -> None:
        self._sock, self._conn = sock, conn

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        deadline = self._conn.deadline
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request did not arrive within its deadline")
            self._sock.settimeout(min(self._conn.server.timeout, remaining))
        return self._sock.recv_into(buffer, nbytes, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Request(HTTPRequest):
    """A request whose head (request line and headers) must arrive by its connection's head
    deadline; once it has, the body may take until the whole request's deadline."""

    def parse_request(self) -> None:
        super().parse_request()
        conn = self.conn
        if isinstance(conn, _TLSConnection) and conn.request_deadline is not None:
            conn.deadline = conn.request_deadline


class _TLSConnection(HTTPConnection):
    """A connection whose reads keep the request's deadlines; over TLS, it completes its
    handshake in the worker thread serving it (a plain socket needs none)."""

    RequestHandlerClass = _Request
    parked = False
    handshaken = False
    released = False
    #: a plain connection's count in the listener's ``plain_caps`` (set when admitted)
    admitted: ConnectionCaps | None = None
    #: monotonic time by which what is being read must have arrived (None: no request)
    deadline: float | None = None
    #: monotonic time by which the whole request must have arrived (None: no request)
    request_deadline: float | None = None

    def __init__(self, server: Any, sock: Any, makefile: Any = None) -> None:
        super().__init__(server, sock, makefile)
        self.handshaken = not isinstance(sock, ssl.SSLSocket)
        raw = getattr(self.rfile, "raw", None)
        if raw is not None and hasattr(raw, "_sock"):
            raw._sock = _DeadlineReads(sock, self)

    def communicate(self) -> bool:
        if not self.handshaken and not self._handshake():
            return False
        start = time.monotonic()
        self.request_deadline = start + getattr(self.server, "request_deadline", 300.0)
        head = getattr(self.server, "head_deadline", HEAD_DEADLINE)
        self.deadline = min(self.request_deadline, start + head)
        try:
            return bool(super().communicate())  # type: ignore[no-untyped-call]
        finally:
            self.deadline = self.request_deadline = None

    def close(self) -> None:
        super().close()
        caps = getattr(self.server.ssl_adapter, "caps", None) or self.admitted
        if caps is not None and not self.released:
            self.released = True
            caps.release(_peer_address_of(self))

    def _handshake(self) -> bool:
        sock = self.socket
        try:
            sock.settimeout(min(HANDSHAKE_TIMEOUT, self.server.timeout))
            sock.do_handshake()
            sock.settimeout(self.server.timeout)
            self.ssl_env = self.server.ssl_adapter.get_environ(sock)
        except OSError as exc:  # ssl.SSLError and socket timeouts are OSErrors
            log.info("TLS handshake with %s failed: %s", self.remote_addr, exc)
            counted = getattr(self.server, "on_handshake_failure", None)
            if counted is not None:
                try:
                    counted(exc)
                except Exception:  # counting must never cost the listener
                    log.exception("counting a failed TLS handshake failed")
            return False
        self.handshaken = True
        return True


def _peer_address_of(conn: HTTPConnection) -> str:
    return str(getattr(conn, "remote_addr", "") or "")


class _Server(wsgi.Server):
    """cheroot's server, but a fresh TLS connection waits in the selector until it is readable."""

    ConnectionClass = _TLSConnection

    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        """cheroot's own errors (a peer gone mid-request, a TLS error) through our log: the
        exception's type, never its text or a raw traceback on standard error (cheroot's
        default), since an exception's text is made of its input."""
        exc = sys.exc_info()[1] if traceback else None
        if exc is None:
            log.log(level, "%s", msg)
            return
        name = type(exc).__name__
        for text in (repr(exc), str(exc)):  # cheroot puts the exception's text in its message
            if text:
                msg = msg.replace(text, name)
        if msg == name:
            log.log(level, "request failed in the HTTP server: %s", name)
        else:
            log.log(level, "%s (%s)", msg, name)

    def process_conn(self, conn: HTTPConnection) -> None:
        caps: ConnectionCaps | None = getattr(self, "plain_caps", None)
        if caps is not None and isinstance(conn, _TLSConnection) and not conn.parked:
            # a new plain connection (a TLS one is counted when it is wrapped): over a cap it
            # is closed here, in the acceptor, before any worker reads from it
            conn.parked = True
            address = _peer_address_of(conn)
            if not caps.admit(address):
                log.warning("connection from %s refused: over the connection caps", address)
                conn.released = True
                conn.close()
                return
            conn.admitted = caps
        if isinstance(conn, _TLSConnection) and not conn.handshaken and not conn.parked:
            conn.parked = True  # the selector hands it to a worker when the ClientHello arrives
            self.put_conn(conn)
            return
        super().process_conn(conn)


def server_ssl_context(
    *,
    cert_file: Path,
    key_file: Path,
    client_ca_files: Sequence[Path],
    crl_files: Sequence[Path] = (),
) -> ssl.SSLContext:
    """Server-side TLS: TLS >= 1.2, client certificate required and verified."""
    if not client_ca_files:
        raise ConfigError("mutual TLS needs trust anchors for client certificates")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
        for ca in client_ca_files:
            context.load_verify_locations(cafile=str(ca))
        for crl in crl_files:
            context.load_verify_locations(cafile=str(crl))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate, key or CA files: {exc}") from None
    if crl_files:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def make_server(
    app: WSGIApp,
    *,
    host: str,
    port: int,
    context: ssl.SSLContext,
    cert_file: Path,
    key_file: Path,
    threads: int = 8,
    timeout: float = 60.0,
    reuse_port: bool = False,
    request_deadline: float = 300.0,
    max_connections: int = 256,
    max_connections_per_address: int = 16,
) -> wsgi.Server:
    """A cheroot server (not started) serving ``app`` over mutual TLS.

    ``reuse_port``: several processes may listen on the same port (SO_REUSEPORT; the kernel
    spreads connections over them), which is how ``serve --workers N`` uses several cores.
    """
    server = _Server(
        (host, port),
        app,
        numthreads=threads,
        timeout=int(max(timeout, 1)),
        shutdown_timeout=5,
        request_queue_size=64,
        server_name="oso-gateway",
        reuse_port=reuse_port,
    )
    server.request_deadline = request_deadline  # type: ignore[attr-defined]
    server.max_request_header_size = MAX_REQUEST_HEAD_BYTES
    adapter = _DeferredHandshakeAdapter(str(cert_file), str(key_file))
    adapter.context = context
    adapter.caps = ConnectionCaps(total=max_connections, per_address=max_connections_per_address)
    server.ssl_adapter = adapter
    return server


@dataclass
class RunningServer:
    """A server running in a background thread."""

    url: str
    server: wsgi.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)


def start_in_thread(
    app: WSGIApp | Callable[[str], WSGIApp],
    *,
    context: ssl.SSLContext,
    cert_file: Path,
    key_file: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    threads: int = 8,
    timeout: float = 60.0,
    factory: bool = False,
    reuse_port: bool = False,
    request_deadline: float = 300.0,
    max_connections: int = 256,
    max_connections_per_address: int = 16,
) -> RunningServer:
    """Bind (``port=0``: an ephemeral port), then serve in a daemon thread.

    With ``factory=True`` ``app`` is called with the server's base URL (``https://host:port``)
    once the port is known, and returns the WSGI app (so a directory can name the real URL).
    """
    server = make_server(
        _placeholder,
        host=host,
        port=port,
        context=context,
        cert_file=cert_file,
        key_file=key_file,
        threads=threads,
        timeout=timeout,
        reuse_port=reuse_port,
        request_deadline=request_deadline,
        max_connections=max_connections,
        max_connections_per_address=max_connections_per_address,
    )
    _prepare(server, host, port)
    bound_host, bound_port = server.bind_addr[:2]
    name = "localhost" if bound_host in ("127.0.0.1", "::1", "localhost") else bound_host
    url = f"https://{name}:{bound_port}"
    server.wsgi_app = app(url) if factory else app
    thread = threading.Thread(target=server.serve, name=f"oso-gateway-{bound_port}", daemon=True)
    thread.start()
    log.info("serving on %s", url)
    return RunningServer(url=url, server=server, thread=thread)


def _prepare(server: wsgi.Server, host: str, port: int) -> None:
    """Bind and listen; a busy port (or an address not of this machine) is ``ListenFailed``."""
    try:
        server.prepare()
    except OSError as exc:
        reason = exc.strerror or str(exc).rsplit(":", 1)[-1].strip(" )")
        raise ListenFailed(f"cannot listen on {host}:{port}: {reason}") from None


def start_plain_in_thread(app: WSGIApp, *, port: int, threads: int = 2) -> RunningServer:
    """Serve ``app`` in plain HTTP on 127.0.0.1 only (the optional metrics listener)."""
    server = _Server(
        ("127.0.0.1", port), app, numthreads=threads, timeout=10, server_name="oso-gateway"
    )
    server.request_deadline = 60.0  # type: ignore[attr-defined]  # a scrape: no body
    server.max_request_header_size = MAX_REQUEST_HEAD_BYTES
    _prepare(server, "127.0.0.1", port)
    bound_port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name=f"oso-plain-{bound_port}", daemon=True)
    thread.start()
    return RunningServer(url=f"http://127.0.0.1:{bound_port}", server=server, thread=thread)


def _placeholder(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


def workers_for(settings: Any, threads: int) -> int:
    """Worker threads for the school API's or the console's listener: at least a few more
    than one peer address may hold connections (``limits.max_connections_per_address``), so
    that one address's slow clients cannot take every worker (a review found 8 API workers
    against a cap of 16 per address)."""
    return max(threads, int(settings.limits.max_connections_per_address) + 4)


def serve_plain_or_tls(
    app: WSGIApp,
    *,
    host: str,
    port: int,
    tls_cert_file: Path | None,
    tls_key_file: Path | None,
    threads: int,
    server_name: str,
    path: str = "/",
    what: str = "server",
    request_deadline: float = 300.0,
    head_deadline: float = HEAD_DEADLINE,
    max_connections: int = 256,
    max_connections_per_address: int = 16,
) -> RunningServer:
    """Serve ``app`` (cheroot) in a daemon thread: HTTPS with this certificate and key (no
    client certificate), else plain HTTP (loopback, or behind a TLS terminator). For the
    operator console and the school API; ``RunningServer.url`` ends in ``path``.

    As the gateway's own listener: the request's deadlines (``request_deadline``, and
    ``HEAD_DEADLINE`` for its head), ``MAX_REQUEST_HEAD_BYTES``, the cap on open connections
    (``max_connections``), and on HTTPS the cap per peer address (``…_per_address``; on plain
    HTTP, behind a front end, every connection comes from one address) and the handshake in a
    worker."""

    server = _Server(
        (host, port),
        app,
        numthreads=threads,
        timeout=30,
        shutdown_timeout=5,
        request_queue_size=32,
        server_name=server_name,
    )
    server.request_deadline = request_deadline  # type: ignore[attr-defined]
    server.head_deadline = head_deadline  # type: ignore[attr-defined]
    server.max_request_header_size = MAX_REQUEST_HEAD_BYTES
    scheme = "http"
    if tls_cert_file is not None and tls_key_file is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        try:
            context.load_cert_chain(str(tls_cert_file), str(tls_key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the {what} TLS certificate or key: {exc}") from None
        adapter = _DeferredHandshakeAdapter(str(tls_cert_file), str(tls_key_file))
        adapter.context = context
        adapter.caps = ConnectionCaps(
            total=max_connections, per_address=max_connections_per_address
        )
        server.ssl_adapter = adapter
        scheme = "https"
    else:
        # The cap in all, counted as the acceptor hands a connection on (``process_conn``). No
        # cap per address: behind a front end every connection comes from its one address.
        server.plain_caps = ConnectionCaps(  # type: ignore[attr-defined]
            total=max_connections, per_address=max_connections
        )
    _prepare(server, host, port)
    bound_host, bound_port = server.bind_addr[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"{scheme}://{shown}:{bound_port}{path}"
    thread = threading.Thread(target=server.serve, name=f"{what}-{bound_port}", daemon=True)
    thread.start()
    log.info("%s on %s", what, url)
    return RunningServer(url=url, server=server, thread=thread)
