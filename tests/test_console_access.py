"""Console access rules: anonymous users, roles, CSRF, session timeout, login throttling, audit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from console_support import (
    ADMIN_NAME,
    PASSWORD,
    VIEWER_NAME,
    add_operator,
    cheap_hasher,
    console_app,
    csrf_of,
    login,
    without_login_limits,
)
from flask import Flask
from gateway_pair import Clock, sqlite_store

from oso_gateway.runtime import build_console_app
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.operators import OperatorStore
from oso_gateway.web import auth

PAGES = [
    "/console/",
    "/console/transfers",
    "/console/transfers?status=failed&direction=out&school=00YY00&since=7d",
    "/console/transfers/{pk}",
    "/console/quarantine",
    "/console/directory",
    "/console/operators",
]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    cheap_hasher(monkeypatch)
    the_store = sqlite_store(tmp_path / "gw.sqlite")
    add_operator(the_store, ADMIN_NAME, "admin")
    add_operator(the_store, VIEWER_NAME, "viewer")
    yield the_store
    the_store.engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, store: Store, clock: Clock) -> Flask:
    return console_app(tmp_path, store, clock=clock)


def _failed_outbound(store: Store, clock: Clock) -> int:
    record = store.enqueue_outbound(
        message_id="urn:uuid:6c1f4a3e-0000-4000-8000-000000000001",
        action="urn:oso:deliver",
        payload=b"<dossier/>",
        payload_digest="0" * 64,
        now=clock(),
        our_school="00YY00",
        counterpart_school="01AB00",
    )
    assert not isinstance(record, m.Message)
    pk = record.pk  # type: ignore[union-attr]
    store.mark_failed(pk, error_code="OSO-E461", now=clock())
    return pk


def _operator_events(store: Store) -> list[dict[str, str]]:
    return [dict(e.event) for e in store.log_entries() if e.event.get("kind") == "operator"]


def test_every_page_but_login_sends_anonymous_users_to_the_login_page(
    app: Flask, store: Store, clock: Clock
) -> None:
    pk = _failed_outbound(store, clock)
    client = app.test_client()
    for page in PAGES:
        response = client.get(page.format(pk=pk))
        assert response.status_code == 302, page
        location = urlsplit(response.headers["Location"])
        assert location.path == "/console/login", page
        # back to the page after login (the dashboard is where a login goes anyway)
        wanted = page.format(pk=pk)
        assert parse_qs(location.query).get("next") == (None if wanted == "/console/" else [wanted])
    assert client.get("/console/login").status_code == 200
    assert client.post(f"/console/transfers/{pk}/retry").status_code in (400, 401)
    assert store.get_message(pk).status == m.FAILED


def test_a_viewer_sees_the_pages_but_cannot_retry_or_administer(
    app: Flask, store: Store, clock: Clock
) -> None:
    pk = _failed_outbound(store, clock)
    client = app.test_client()
    assert login(client, VIEWER_NAME).status_code == 302
    for page in PAGES[:-1]:
        assert client.get(page.format(pk=pk)).status_code == 200, page
    assert client.get("/console/operators").status_code == 403
    assert "Retry</button>" not in client.get("/console/quarantine").get_data(as_text=True)
    page = client.get(f"/console/transfers/{pk}")
    assert "Retry this transfer" not in page.get_data(as_text=True)
    response = client.post(f"/console/transfers/{pk}/retry", data={"csrf": csrf_of(page)})
    assert response.status_code == 403
    assert store.get_message(pk).status == m.FAILED


def test_an_admin_retries_a_failed_transfer_and_the_action_is_audited(
    app: Flask, store: Store, clock: Clock
) -> None:
    pk = _failed_outbound(store, clock)
    client = app.test_client()
    login(client, ADMIN_NAME)
    quarantine = client.get("/console/quarantine").get_data(as_text=True)
    assert f'action="/console/transfers/{pk}/retry"' in quarantine
    page = client.get(f"/console/transfers/{pk}")
    assert "Retry this transfer" in page.get_data(as_text=True)
    response = client.post(f"/console/transfers/{pk}/retry", data={"csrf": csrf_of(page)})
    assert response.status_code == 303
    assert store.get_message(pk).status == m.QUEUED
    retry = [e for e in _operator_events(store) if e.get("operation") == "retry"]
    assert len(retry) == 1
    assert retry[0]["operator"] == ADMIN_NAME
    assert retry[0]["status"] == "ok"
    assert retry[0]["message_id"] == store.get_message(pk).message_id
    # A second retry of the (now queued) message is refused and audited as such.
    again = client.post(f"/console/transfers/{pk}/retry", data={"csrf": csrf_of(page)})
    assert again.status_code == 303
    assert [e["status"] for e in _operator_events(store) if e.get("operation") == "retry"] == [
        "ok",
        "refused",
    ]


def test_a_missing_or_forged_csrf_token_is_refused(app: Flask, store: Store, clock: Clock) -> None:
    pk = _failed_outbound(store, clock)
    client = app.test_client()
    login(client, ADMIN_NAME)
    assert client.post(f"/console/transfers/{pk}/retry").status_code == 400
    forged = client.post(f"/console/transfers/{pk}/retry", data={"csrf": "A" * 43})
    assert forged.status_code == 400
    assert store.get_message(pk).status == m.FAILED
    # The login form needs it too.
    other = app.test_client()
    other.get("/console/login")
    response = other.post("/console/login", data={"name": ADMIN_NAME, "password": PASSWORD})
    assert response.status_code == 400
    # A token from another session does not fit this one.
    foreign = csrf_of(other.get("/console/login"))
    stolen = client.post(f"/console/transfers/{pk}/retry", data={"csrf": foreign})
    assert stolen.status_code == 400


def _post_rules(app: Flask) -> list[str]:
    return sorted(
        re.sub(r"<int(\([^)]*\))?:pk>", "1", rule.rule).replace("<name>", VIEWER_NAME)
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ())
    )


def test_every_console_post_form_refuses_a_missing_or_wrong_token(app: Flask) -> None:
    posts = _post_rules(app)
    assert {"/console/login", "/console/logout", "/console/transfers/1/retry"} <= set(posts)
    client = app.test_client()
    login(client, ADMIN_NAME)
    good = csrf_of(client.get("/console/"))
    # A well-signed token of another session, and this session's token tampered with.
    foreign = csrf_of(app.test_client().get("/console/login"))
    for path in posts:
        for n, token in enumerate((None, "", "A" * 43, good[:-2] + "xx", foreign)):
            data = {} if token is None else {"csrf": token}
            form = {**data, "name": f"{ADMIN_NAME}{n}", "password": PASSWORD}
            response = client.post(path, data=form)
            assert response.status_code == 400, (path, token)
            assert "security token" in response.get_data(as_text=True)
    # Nothing happened: still logged in (logout was refused), the page still works.
    assert client.get("/console/").status_code == 200


def test_logins_are_audited_with_the_account_name(app: Flask, store: Store) -> None:
    client = app.test_client()
    assert login(client, VIEWER_NAME, "wrong-password-1").status_code == 401
    assert login(client, VIEWER_NAME).status_code == 302
    assert login(client, "nobody-here", "whatever-password").status_code == 401
    events = [e for e in _operator_events(store) if e.get("operation") == "login"]
    assert [(e["status"], e.get("operator")) for e in events] == [
        ("failed", VIEWER_NAME),
        ("ok", VIEWER_NAME),
        ("failed", None),  # an unknown name is not written to the log
    ]


def test_repeated_failed_logins_are_slowed_down_even_for_the_right_password(
    app: Flask, store: Store, clock: Clock
) -> None:
    client = without_login_limits(app).test_client()
    for _ in range(3):
        assert login(client, ADMIN_NAME, "wrong-password-x").status_code == 401
    blocked = login(client, ADMIN_NAME)  # the right password, but inside the penalty
    assert blocked.status_code == 429
    assert "try again in 2 s" in blocked.get_data(as_text=True)
    assert blocked.headers["Retry-After"] == "2"
    clock.advance(timedelta(seconds=3))
    assert login(client, ADMIN_NAME, "wrong-password-x").status_code == 401
    doubled = login(client, ADMIN_NAME)
    assert doubled.status_code == 429
    assert doubled.headers["Retry-After"] == "4"
    clock.advance(timedelta(seconds=5))
    assert login(client, ADMIN_NAME).status_code == 302
    statuses = [e["status"] for e in _operator_events(store) if e.get("operation") == "login"]
    assert statuses.count("throttled") == 2


def test_a_throttled_login_says_the_same_wait_as_its_retry_after_header(
    app: Flask, clock: Clock
) -> None:
    """With Flask-Limiter's headers on, its window's end overrode the header: the page said
    "try again in 2 s" and ``Retry-After`` 36 (an administrator's walkthrough)."""
    client = app.test_client()  # both lines of defence on, as served
    for _ in range(3):
        failed = login(client, ADMIN_NAME, "wrong-password-x")
        assert failed.status_code == 401
        assert "Retry-After" not in failed.headers  # nothing to wait for yet
    blocked = login(client, ADMIN_NAME)
    assert blocked.status_code == 429
    assert "try again in 2 s" in blocked.get_data(as_text=True)
    assert blocked.headers["Retry-After"] == "2"


def test_one_address_trying_many_accounts_is_slowed_down(
    app: Flask, store: Store, clock: Clock
) -> None:
    client = app.test_client()
    for i in range(10):
        login(client, f"guess{i}", "wrong-password-x", address="192.0.2.7")
    assert login(client, VIEWER_NAME, address="192.0.2.7").status_code == 429
    # Another address is not affected.
    assert login(app.test_client(), VIEWER_NAME, address="192.0.2.8").status_code == 302


def _login_events(store: Store) -> int:
    return sum(1 for e in _operator_events(store) if e.get("operation") == "login")


def test_flask_limiter_refuses_a_sixth_login_for_one_account_within_a_minute(
    app: Flask, store: Store, clock: Clock
) -> None:
    client = app.test_client()
    for i in range(5):  # from five addresses, each after the database forgot the last failure
        clock.advance(timedelta(hours=2))
        assert (
            login(client, ADMIN_NAME, "wrong-password-x", address=f"192.0.2.{i}").status_code == 401
        )
    clock.advance(timedelta(hours=2))
    before = _login_events(store)
    refused = login(client, ADMIN_NAME, address="192.0.2.99")  # the right password
    assert refused.status_code == 429
    assert "Too many login attempts" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert _login_events(store) == before  # refused before the password or the database
    assert login(client, VIEWER_NAME, address="192.0.2.99").status_code == 302  # other account
    assert client.get("/console/login").status_code == 200  # the page itself is not limited


def test_flask_limiter_refuses_the_21st_login_from_one_address_within_a_minute(
    app: Flask, store: Store, clock: Clock
) -> None:
    client = app.test_client()
    for i in range(20):
        clock.advance(timedelta(hours=2))
        assert (
            login(client, f"guess{i}", "wrong-password-x", address="192.0.2.7").status_code == 401
        )
    clock.advance(timedelta(hours=2))
    refused = login(client, VIEWER_NAME, address="192.0.2.7")
    assert refused.status_code == 429 and "Too many login attempts" in refused.get_data(
        as_text=True
    )
    assert login(app.test_client(), VIEWER_NAME, address="192.0.2.8").status_code == 302


def test_an_idle_session_times_out(app: Flask, store: Store, clock: Clock) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    clock.advance(timedelta(minutes=14))
    assert client.get("/console/").status_code == 200  # activity renews the idle timer
    clock.advance(timedelta(minutes=14))
    assert client.get("/console/").status_code == 200
    clock.advance(timedelta(minutes=16))
    response = client.get("/console/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/login")


def test_removing_an_account_ends_its_session(app: Flask, store: Store) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    assert client.get("/console/").status_code == 200
    assert OperatorStore(store.engine).remove(VIEWER_NAME)
    assert client.get("/console/").status_code == 302


def test_logout_needs_the_csrf_token_and_ends_the_session(app: Flask, store: Store) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    page = client.get("/console/")
    assert client.post("/console/logout").status_code == 400
    assert client.post("/console/logout", data={"csrf": csrf_of(page)}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_cookie_flags_and_security_headers(tmp_path: Path, store: Store) -> None:
    app = console_app(tmp_path, store, cookie_secure=True)
    client = app.test_client()
    response = login(client, VIEWER_NAME)
    cookie = response.headers["Set-Cookie"]
    assert "oso_console=" in cookie
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/console"):
        assert flag in cookie
    page = client.get("/console/")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script" not in page.get_data(as_text=True)


def test_the_console_can_live_at_the_root_path(tmp_path: Path, store: Store) -> None:
    app = console_app(tmp_path, store, path_prefix="")
    client = app.test_client()
    assert client.get("/transfers").headers["Location"] == "/login?next=/transfers"
    assert login(client, VIEWER_NAME, prefix="").status_code == 302
    assert client.get("/transfers").status_code == 200


def test_a_session_cookie_signed_with_another_key_is_refused(
    tmp_path: Path, app: Flask, store: Store
) -> None:
    settings = app.extensions["oso_console"].settings
    other = build_console_app(settings, store=store, secret_key=b"another-secret-key-0123456789abc")
    elsewhere = other.test_client()
    assert login(elsewhere, ADMIN_NAME).status_code == 302
    cookie = elsewhere.get_cookie("oso_console", path="/console")
    assert cookie is not None
    client = app.test_client()
    client.set_cookie("oso_console", cookie.value, path="/console")
    response = client.get("/console/operators")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/login?next=/console/operators"


def test_attempts_are_counted_before_the_password_is_checked(store: Store, clock: Clock) -> None:
    # Parallel guesses: three attempts begun before any finished already use up the budget.
    operators = OperatorStore(store.engine)
    keys = auth.throttle_keys(ADMIN_NAME, "192.0.2.9")
    policies = (auth.ACCOUNT_POLICY, auth.ADDRESS_POLICY)
    for _ in range(3):
        assert operators.begin_attempt(keys, now=clock(), policies=policies) == timedelta(0)
    assert operators.begin_attempt(keys, now=clock(), policies=policies) == timedelta(seconds=2)


def test_failures_are_forgotten_after_an_hour_without_one(
    app: Flask, store: Store, clock: Clock
) -> None:
    client = app.test_client()
    for _ in range(2):
        assert login(client, ADMIN_NAME, "wrong-password-x").status_code == 401
    clock.advance(timedelta(hours=2))
    for _ in range(2):
        assert login(client, ADMIN_NAME, "wrong-password-x").status_code == 401
    assert login(client, ADMIN_NAME).status_code == 302  # 2 + 2 would have been blocked


def test_the_login_limits_are_configured_per_address_and_per_account(
    tmp_path: Path, store: Store, clock: Clock
) -> None:
    # a school office behind one NAT needs another limit per address than the default 20
    app = console_app(
        tmp_path,
        store,
        clock=clock,
        login_limit_per_address="3/minute",
        login_limit_per_account="2/minute",
    )
    client = app.test_client()
    for i in range(3):  # three accounts from one address: the third is still let through
        clock.advance(timedelta(hours=2))
        assert (
            login(client, f"guess{i}", "wrong-password-x", address="192.0.2.7").status_code == 401
        )
    assert login(client, VIEWER_NAME, address="192.0.2.7").status_code == 429  # the fourth
    for i in range(2):  # one account from two addresses
        clock.advance(timedelta(hours=2))
        assert (
            login(client, ADMIN_NAME, "wrong-password-x", address=f"192.0.2.{i}").status_code == 401
        )
    assert login(client, ADMIN_NAME, address="192.0.2.50").status_code == 429  # its third
    assert login(client, VIEWER_NAME, address="192.0.2.51").status_code == 302
