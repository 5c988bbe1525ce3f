"""The documented nginx front end (``docs/operations.md``, Deployment), run for real: the
``server { … }`` block is taken from the docs, only paths and ports substituted, in front of a
gateway server with two worker threads. Five clients trickling a request a byte at a time into
nginx do not stop a sixth peer: nginx reads each request whole before it reaches the gateway.

Needs Debian's ``nginx`` (``.ci/run`` installs it); skipped with the reason when it is missing
(``require``: a failure under CI's ``OSO_TEST_REQUIRE_NGINX=1``).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require
from test_slow_clients import SlowClient, _connect

from oso_gateway.server import RunningServer, server_ssl_context, start_in_thread

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "certs" / "dev"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _documented_server_block() -> str:
    text = (REPO / "docs" / "operations.md").read_text("utf-8")
    found = re.search(r"```nginx\n(server \{.*?\n\})\n```", text, re.S)
    assert found, "docs/operations.md has no nginx server block"
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as probe:  # nginx cannot report an ephemeral port: ask the kernel
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(block: str, *, port: int, upstream: str, work: Path) -> str:
    substitutions = {
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "/etc/oso-gateway/tls/server.crt.pem": str(DEV / "tls-localhost.crt.pem"),
        "/etc/oso-gateway/tls/server.key.pem": str(DEV / "tls-localhost.key.pem"),
        "/etc/oso-gateway/trust/anchors-and-intermediates.pem": str(DEV / "ca-bundle.pem"),
        "/etc/oso-gateway/trust/crls.pem": str(work / "crls.pem"),
        "https://127.0.0.1:8443": upstream,
        "/etc/oso-gateway/tls/frontend-client.crt.pem": str(
            DEV / "gateway-00000001000000000003.crt.pem"
        ),
        "/etc/oso-gateway/tls/frontend-client.key.pem": str(
            DEV / "gateway-00000001000000000003.key.pem"
        ),
        "/etc/oso-gateway/tls/gateway-server-ca.pem": str(DEV / "ca-bundle.pem"),
    }
    for documented, here in substitutions.items():
        assert documented in block, f"the documented block no longer has {documented!r}"
        block = block.replace(documented, here)
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"pid {work / 'nginx.pid'};\nerror_log {work / 'error.log'} info;\n"
        "worker_processes 1;\nuser root;\nevents { worker_connections 256; }\n"
        f"http {{\n    access_log {work / 'access.log'};\n{temp}\n{block}\n}}\n"
    )


def _gateway_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + str(len(body)).encode() + b"\n"]


@pytest.fixture
def front(tmp_path: Path) -> Iterator[RunningServer]:
    require("nginx", NGINX is not None, "install the Debian package nginx")
    cert, key = DEV / "tls-localhost.crt.pem", DEV / "tls-localhost.key.pem"
    context = server_ssl_context(
        cert_file=cert, key_file=key, client_ca_files=[DEV / "ca-bundle.pem"]
    )
    gateway = start_in_thread(
        _gateway_app, context=context, cert_file=cert, key_file=key, threads=2, timeout=30.0
    )
    crls = (DEV / "root-ca.crl.pem").read_text() + (DEV / "issuing-ca.crl.pem").read_text()
    (tmp_path / "crls.pem").write_text(crls)
    port = _free_port()
    upstream = "https://127.0.0.1:" + gateway.url.rsplit(":", 1)[1]
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        _config(_documented_server_block(), port=port, upstream=upstream, work=tmp_path)
    )
    assert NGINX is not None
    check = subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield RunningServer(
            url=f"https://localhost:{port}", server=gateway.server, thread=gateway.thread
        )
    finally:
        nginx.terminate()
        nginx.wait(10)
        gateway.stop()


def test_through_the_documented_nginx_five_slow_clients_do_not_stop_a_sixth_peer(
    front: RunningServer,
) -> None:
    clients = [
        SlowClient(front, f"127.0.0.{10 + i}", rounds=150, path="/oso/v1/messages")
        for i in range(5)
    ]
    for client in clients:
        client.start()
        client.connected.wait(10)
    try:
        time.sleep(0.5)  # the slow clients are trickling; the gateway has only two workers
        answer = _get_path(front, "127.0.0.20", "/oso/v1/ping")
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b"hello 0" in answer
        assert not any(c.refused for c in clients)  # nginx held all five, cheaply
        assert all(c.is_alive() for c in clients)  # and they were still trickling
    finally:
        for client in clients:
            client.stop.set()
            client.join(15)


def test_nginx_requires_a_client_certificate(front: RunningServer) -> None:
    import ssl

    port = int(front.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(DEV / "ca-bundle.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET /oso/v1/ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = sock.recv(4096)
    assert b" 400 " in answer.split(b"\r\n", 1)[0]  # "No required SSL certificate was sent"


def _get_path(running: RunningServer, source: str, path: str) -> bytes:
    with _connect(running, source) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer
