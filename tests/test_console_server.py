"""The console on a real loopback socket (cheroot): plain HTTP, and HTTPS with its own cert."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from console_support import cheap_hasher, console_app
from gateway_pair import DEV, sqlite_store

from oso_gateway.runtime import start_console_in_thread
from oso_gateway.store import Store

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    cheap_hasher(monkeypatch)
    the_store = sqlite_store(tmp_path / "gw.sqlite")
    yield the_store
    the_store.engine.dispose()


def test_the_console_listens_on_its_own_port_under_its_prefix(tmp_path: Path, store: Store) -> None:
    app = console_app(tmp_path, store)
    server = start_console_in_thread(app.extensions["oso_console"].settings, app=app, port=0)
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/console/")
        response = requests.get(server.url, allow_redirects=False, timeout=10)
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/console/login")
        login = requests.get(server.url + "login", timeout=10)
        assert login.status_code == 200 and 'name="csrf"' in login.text
        assert login.headers["X-Frame-Options"] == "DENY"
        css = requests.get(server.url + "static/console.css", timeout=10)
        assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
    finally:
        server.stop()


def test_the_console_serves_https_with_its_configured_certificate(
    tmp_path: Path, store: Store
) -> None:
    app = console_app(
        tmp_path,
        store,
        cookie_secure=True,
        tls_cert_file=DEV / "tls-localhost.crt.pem",
        tls_key_file=DEV / "tls-localhost.key.pem",
    )
    server = start_console_in_thread(app.extensions["oso_console"].settings, app=app, port=0)
    try:
        assert server.url.startswith("https://")
        url = server.url.replace("127.0.0.1", "localhost")
        response = requests.get(url + "login", verify=str(DEV / "ca-bundle.pem"), timeout=10)
        assert response.status_code == 200
        assert "Secure" in response.headers["Set-Cookie"]
        assert "max-age" in response.headers["Strict-Transport-Security"]
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https://", "http://") + "login", timeout=10)
    finally:
        server.stop()


def test_serve_starts_the_console_on_its_own_port_when_enabled(tmp_path: Path) -> None:
    from oso_gateway.transfer.demo import SECONDARY_OIN, setup_dev_gateways

    gateway = setup_dev_gateways(tmp_path)[SECONDARY_OIN]
    with gateway.config_file.open("a", encoding="utf-8") as config:
        config.write("\n[console]\nenabled = true\nport = 0\ncookie_secure = false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    command = [sys.executable, "-m", "oso_gateway.cli", "serve", "--no-outbox"]
    process = subprocess.Popen(
        [*command, "--config", str(gateway.config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "operator console on" in line:
                break
        found = re.search(r"operator console on (http://\S+)", "".join(lines))
        assert found is not None, "".join(lines)
        url = found.group(1)
        assert f":{gateway.port}/" not in url  # not the SOAP port
        response = requests.get(url, allow_redirects=False, timeout=10)
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/console/login")
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
