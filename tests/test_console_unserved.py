"""A school leaves the gateway (removed from the directory file, read again by the running
console): an operator scoped only to it is logged out and cannot log in again (OSO-E619, said on
the page and in the logs); an operator of it and another school sees the other school only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_support import PASSWORD, cheap_hasher, console_app, login
from gateway_pair import Clock, sqlite_store
from leaving_support import replace_file, without_school

from oso_gateway.store import Store
from oso_gateway.store.operators import OperatorStore
from oso_gateway.transfer.auditlog import LogFilter, select_events
from oso_gateway.web import auth

_ROW = re.compile(r'href="/console/transfers/(\d+)"')


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    cheap_hasher(monkeypatch)
    the_store = sqlite_store(tmp_path / "gw.sqlite")
    operators = OperatorStore(the_store.engine)
    for name, schools in (("only-02cd", ("02CD00",)), ("both", ("02CD00", "03EF00"))):
        operators.add(
            name,
            role="admin",
            password_hash=auth.hash_password(PASSWORD),
            now=Clock()(),
            schools=schools,
        )
    yield the_store
    the_store.engine.dispose()


def _outbound(store: Store, n: int, *, ours: str) -> int:
    record = store.enqueue_outbound(
        message_id=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        action="urn:oso:deliver",
        payload=b"<x/>",
        payload_digest="a" * 64,
        now=Clock()(),
        our_school=ours,
        counterpart_school="01AB00",
    )
    pk: int = record.pk  # type: ignore[union-attr]
    return pk


def _listed(client: object) -> set[int]:
    page = client.get("/console/transfers").get_data(as_text=True)  # type: ignore[attr-defined]
    return {int(pk) for pk in _ROW.findall(page)}


def test_an_operator_of_a_school_that_left_cannot_log_in_or_act(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    gone = _outbound(store, 1, ours="02CD00")
    kept = _outbound(store, 2, ours="03EF00")
    app = console_app(tmp_path, store)
    scoped, both = app.test_client(), app.test_client()
    assert login(scoped, "only-02cd").status_code == 302
    assert login(both, "both").status_code == 302
    assert _listed(scoped) == {gone} and _listed(both) == {gone, kept}

    directory = tmp_path / "directory.toml"  # console_settings' directory file
    before = without_school(directory, "02CD00")
    with caplog.at_level("WARNING"):
        # the session of the operator of the school that left ends at its next request
        page = scoped.get("/console/transfers")
        assert page.status_code == 302 and page.headers["Location"].endswith("/console/login")
        said = scoped.get("/console/login").get_data(as_text=True)
        assert "OSO-E619" in said and "02CD00" in said
        assert scoped.get(f"/console/transfers/{gone}").status_code == 302
        # and it cannot log in again
        again = login(scoped, "only-02cd")
        assert again.status_code == 403
        assert "OSO-E619" in again.get_data(as_text=True)
    assert "operator only-02cd refused" in caplog.text
    assert "login of only-02cd refused" in caplog.text
    refused = select_events(store, LogFilter(kind="operator", status="refused"))
    assert {e.event.get("operation") for e in refused} == {"access", "login"}
    # the operator of both schools acts for the served one only
    assert _listed(both) == {kept}
    assert both.get(f"/console/transfers/{gone}").status_code == 404
    assert both.get(f"/console/transfers/{kept}").status_code == 200

    replace_file(directory, before)  # the school is back (a mistake undone)
    assert login(scoped, "only-02cd").status_code == 302
    assert _listed(scoped) == {gone} and _listed(both) == {gone, kept}


def test_an_operator_of_every_school_is_not_affected(tmp_path: Path, store: Store) -> None:
    OperatorStore(store.engine).add(
        "everyone", role="viewer", password_hash=auth.hash_password(PASSWORD), now=Clock()()
    )
    gone = _outbound(store, 1, ours="02CD00")
    client = console_app(tmp_path, store).test_client()
    assert login(client, "everyone").status_code == 302
    without_school(tmp_path / "directory.toml", "02CD00")
    assert _listed(client) == {gone}  # its record is still the gateway's to see
