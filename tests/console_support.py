"""Helpers for the console tests: settings, a console app over a real SQLite store, operators,
logging in through the real login form (CSRF token read from the page)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type
from flask import Flask
from flask.testing import FlaskClient
from gateway_pair import DEV, Clock, directory_toml
from werkzeug.test import TestResponse

from oso_gateway.config import (
    ConsoleSettings,
    IdentitySettings,
    Settings,
    TrustSettings,
)
from oso_gateway.runtime import build_console_app
from oso_gateway.store import Store
from oso_gateway.store.operators import OperatorStore
from oso_gateway.web import auth

PASSWORD = "correct-horse-battery"
ADMIN_NAME = "ada.admin"
VIEWER_NAME = "vic-viewer"

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with small parameters: the same code paths, a fraction of the cost."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
    monkeypatch.setattr(auth, "_HASHER", hasher)
    dummy = hasher.hash("dummy-password-x")
    monkeypatch.setattr(auth, "dummy_hash", lambda: dummy)


def console_settings(tmp_path: Path, database_url: str, **console: object) -> Settings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    directory = tmp_path / "directory.toml"
    directory.write_text(directory_toml().replace('"gateway-', f'"{DEV.as_posix()}/gateway-'))
    # the receiver (01AB00) and the vendor (02CD00, 03EF00): the schools operators are scoped
    # to must be served here (an operator of schools that left acts for none)
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        identities=tuple(
            IdentitySettings(
                oin=oin,
                key_file=DEV / f"gateway-{oin}.key.pem",
                cert_file=DEV / f"gateway-{oin}.crt.pem",
            )
            for oin in ("00000001000000000002", "00000001000000000003")
        ),
        trust=TrustSettings(
            anchor_files=(DEV / "root-ca.crt.pem",),
            intermediate_files=(DEV / "issuing-ca.crt.pem",),
            crl_files=(DEV / "root-ca.crl.pem", DEV / "issuing-ca.crl.pem"),
        ),
        directory_file=directory,
        console=ConsoleSettings(**{"enabled": True, "cookie_secure": False, **console}),  # type: ignore[arg-type]
    )


def console_app(
    tmp_path: Path, store: Store, *, clock: Callable[[], datetime] | None = None, **console: object
) -> Flask:
    url = str(store.engine.url.render_as_string(hide_password=False))
    settings = console_settings(tmp_path, url, **console)
    app = build_console_app(settings, store=store, secret_key=b"k" * 32, clock=clock or Clock())
    app.config["TESTING"] = True
    return app


def without_login_limits(app: Flask) -> Flask:
    """Switch off the console's first line (Flask-Limiter, which counts in real time), to test
    the database's lockout behind it with an injected clock."""
    for limiter in app.extensions["limiter"]:
        limiter.enabled = False
    return app


def add_operator(store: Store, name: str, role: str, password: str = PASSWORD) -> None:
    OperatorStore(store.engine).add(
        name, role=role, password_hash=auth.hash_password(password), now=Clock()()
    )


def csrf_of(response: TestResponse) -> str:
    found = _CSRF.search(response.get_data(as_text=True))
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(
    client: FlaskClient,
    name: str,
    password: str = PASSWORD,
    *,
    prefix: str = "/console",
    address: str = "127.0.0.1",
) -> TestResponse:
    page = client.get(f"{prefix}/login")
    return client.post(
        f"{prefix}/login",
        data={"csrf": csrf_of(page), "name": name, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )
