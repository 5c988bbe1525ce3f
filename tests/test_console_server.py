"""The console on a real loopback socket (cheroot): plain HTTP, and HTTPS with its own cert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from console_support import cheap_hasher, console_app
from gateway_pair import DEV, sqlite_store

from oso_gateway.store import Store
from oso_gateway.web.console import start_console_in_thread

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
