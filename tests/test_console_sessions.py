"""Console sessions live on the server: a cookie is only a random token naming a session row, so
logout, an admin, a timeout or removing the operator ends the session whatever cookie a browser
(or an attacker who copied it) still holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
)
from flask import Flask
from flask.testing import FlaskClient
from gateway_pair import Clock, sqlite_store
from sqlalchemy import select

from oso_gateway.store import Store
from oso_gateway.store.operators import ConsoleSession, OperatorStore


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


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("oso_console", path="/console")
    assert cookie is not None
    return cookie.value


def _with_cookie(app: Flask, value: str) -> FlaskClient:
    other = app.test_client()
    other.set_cookie("oso_console", value, path="/console")
    return other


def test_a_session_cookie_copied_before_logout_is_refused_after_it(app: Flask) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    copied = _cookie(client)
    thief = _with_cookie(app, copied)
    assert thief.get("/console/").status_code == 200  # the copy works while the session lives
    page = client.get("/console/")
    assert client.post("/console/logout", data={"csrf": csrf_of(page)}).status_code == 302
    response = thief.get("/console/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/login")


def test_the_cookie_holds_no_operator_name_only_a_token(app: Flask, store: Store) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    with client.session_transaction("/console/") as session:
        assert set(session) >= {"sid", "csrf"}
        assert VIEWER_NAME not in str(dict(session))
        token = session["sid"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(ConsoleSession.token_hash, ConsoleSession.operator)).all()
    assert [operator for _hash, operator in rows] == [VIEWER_NAME]
    assert token not in {token_hash for token_hash, _operator in rows}  # only the hash is kept


def test_each_login_gets_a_new_session_id(app: Flask) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    with client.session_transaction("/console/") as session:
        first = session["sid"]
    login(client, VIEWER_NAME)
    with client.session_transaction("/console/") as session:
        assert session["sid"] != first


def test_a_session_planted_before_login_is_not_kept(app: Flask) -> None:
    client = app.test_client()
    with client.session_transaction("/console/") as session:
        session["sid"] = "chosen-by-the-attacker"
    login(client, VIEWER_NAME)
    with client.session_transaction("/console/") as session:
        assert session["sid"] != "chosen-by-the-attacker"


def test_an_admin_ends_another_operators_sessions(app: Flask, store: Store) -> None:
    viewer = app.test_client()
    login(viewer, VIEWER_NAME)
    assert viewer.get("/console/").status_code == 200
    admin = app.test_client()
    login(admin, ADMIN_NAME)
    page = admin.get("/console/operators")
    assert "End sessions" in page.get_data(as_text=True)
    response = admin.post(
        f"/console/operators/{VIEWER_NAME}/end-sessions", data={"csrf": csrf_of(page)}
    )
    assert response.status_code == 302
    assert viewer.get("/console/").status_code == 302
    assert admin.get("/console/").status_code == 200  # only the viewer's sessions ended
    assert OperatorStore(store.engine).live_sessions(VIEWER_NAME) == 0


def test_a_viewer_cannot_end_sessions(app: Flask) -> None:
    viewer = app.test_client()
    login(viewer, VIEWER_NAME)
    page = viewer.get("/console/")
    response = viewer.post(
        f"/console/operators/{ADMIN_NAME}/end-sessions", data={"csrf": csrf_of(page)}
    )
    assert response.status_code == 403


def test_removing_an_operator_ends_their_sessions_in_the_store(app: Flask, store: Store) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    operators = OperatorStore(store.engine)
    assert operators.live_sessions(VIEWER_NAME) == 1
    assert operators.remove(VIEWER_NAME, now=Clock()())
    assert operators.live_sessions(VIEWER_NAME) == 0
    add_operator(store, VIEWER_NAME, "viewer")  # an account of the same name: not the old session
    assert client.get("/console/").status_code == 302


def test_the_absolute_timeout_ends_even_an_active_session(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    for _ in range(12 * 6 + 1):  # every ten minutes for just over twelve hours
        clock.advance(timedelta(minutes=10))
        if client.get("/console/").status_code != 200:
            break
    else:
        pytest.fail("the session outlived its absolute timeout")
    assert clock() - Clock()() >= timedelta(hours=11, minutes=50)


def test_an_idle_session_stays_ended_when_the_clock_is_wound_back(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    login(client, VIEWER_NAME)
    copied = _cookie(client)
    clock.advance(timedelta(minutes=16))
    assert client.get("/console/").status_code == 302  # idle: ended on the server
    clock.advance(timedelta(minutes=-16))
    assert _with_cookie(app, copied).get("/console/").status_code == 302


def _idle(
    client: FlaskClient, clock: Clock, monkeypatch: pytest.MonkeyPatch, seconds: float
) -> None:
    """``seconds`` pass without a request, for the server (its clock) and as a browser sees
    them: the cookie dropped once its ``Expires`` has passed, and its signature aged (the
    signing max-age is checked against the real time)."""
    import time

    from itsdangerous.timed import TimestampSigner

    clock.advance(timedelta(seconds=seconds))
    cookie = client.get_cookie("oso_console", path="/console")
    later = datetime.now(UTC) + timedelta(seconds=seconds)
    if cookie is not None and cookie.expires is not None and cookie.expires <= later:
        client.delete_cookie("oso_console", path="/console")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time() + seconds))


def test_after_the_idle_timeout_the_login_says_so_and_returns_to_the_page(
    app: Flask, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cookie and its signature expired with the idle timeout, so the browser dropped it
    first: the user met the login page without a word, and lost the page (a walkthrough)."""
    client = app.test_client()
    login(client, VIEWER_NAME)
    page = "/console/transfers?status=failed&direction=out"
    assert client.get(page).status_code == 200
    _idle(client, clock, monkeypatch, 16 * 60)  # the idle timeout is 15 minutes
    response = client.get(page)
    assert response.status_code == 302
    to_login = response.headers["Location"]
    assert to_login.startswith("/console/login?")
    form = client.get(to_login)
    html = form.get_data(as_text=True)
    assert "Your session has ended" in html
    assert f'name="next" value="{page.replace("&", "&amp;")}"' in html
    back = client.post(
        "/console/login",
        data={"csrf": csrf_of(form), "name": VIEWER_NAME, "password": PASSWORD, "next": page},
    )
    assert back.status_code == 302 and back.headers["Location"] == page
    assert client.get(page).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "https://evil.example/console/",
        "//evil.example",
        "//evil.example/console/",
        "/\\evil.example",
        "/console/\\\\evil.example",
        "javascript:alert(1)",
        "console/transfers",
        "/elsewhere/on/this/host",
        "/console/login",
        "/console/transfers\r\nSet-Cookie: x=y",
        # dot-segments, plain or encoded: the browser resolves them out of the prefix (a review)
        "/console/../evil",
        "/console/%2e%2e/evil",
        "/console/%252e%252e/evil",
        "/console/./transfers",
    ],
)
def test_next_is_a_page_of_this_console_only(app: Flask, target: str) -> None:
    """No open redirect: only a relative path under the console's prefix is returned to."""
    client = app.test_client()
    form = client.get("/console/login", query_string={"next": target})
    assert 'name="next"' not in form.get_data(as_text=True)
    response = client.post(
        "/console/login",
        data={"csrf": csrf_of(form), "name": VIEWER_NAME, "password": PASSWORD, "next": target},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/"
