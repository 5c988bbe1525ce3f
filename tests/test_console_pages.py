"""Console pages: filters, pagination, dashboard counts, expiry warnings, error explanations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from console_support import VIEWER_NAME, add_operator, cheap_hasher, console_app, login
from flask.testing import FlaskClient
from gateway_pair import DEV, Clock, sqlite_store

from oso_gateway.security.keys import load_certificate
from oso_gateway.store import Store

_ROW = re.compile(r'<a href="/console/transfers/(\d+)">\1</a>')


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    cheap_hasher(monkeypatch)
    the_store = sqlite_store(tmp_path / "gw.sqlite")
    add_operator(the_store, VIEWER_NAME, "viewer")
    yield the_store
    the_store.engine.dispose()


def _outbound(store: Store, clock: Clock, n: int, *, school: str, fail: bool = False) -> int:
    record = store.enqueue_outbound(
        message_id=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        action="urn:oso:deliver",
        payload=b"<x/>",
        payload_digest="a" * 64,
        now=clock(),
        our_school="00YY00",
        counterpart_school=school,
    )
    pk: int = record.pk  # type: ignore[union-attr]
    if fail:
        store.mark_failed(pk, error_code="OSO-E431", now=clock())
    return pk


def _client(tmp_path: Path, store: Store, clock: Clock) -> FlaskClient:
    client = console_app(tmp_path, store, clock=clock).test_client()
    assert login(client, VIEWER_NAME).status_code == 302
    return client


def _pks(html: str) -> list[int]:
    return [int(pk) for pk in _ROW.findall(html)]


def test_transfers_are_paged_newest_first(tmp_path: Path, store: Store) -> None:
    clock = Clock()
    pks = [_outbound(store, clock, i, school="01AB00") for i in range(30)]
    client = _client(tmp_path, store, clock)
    first = client.get("/console/transfers").get_data(as_text=True)
    assert _pks(first) == pks[::-1][:25]
    older = re.search(r'href="(/console/transfers\?before=\d+)">Older', first)
    assert older is not None
    second = client.get(older.group(1)).get_data(as_text=True)
    assert _pks(second) == pks[::-1][25:]
    assert "Older" not in second


def test_filters_by_status_direction_school_and_period(tmp_path: Path, store: Store) -> None:
    clock = Clock()
    old = _outbound(store, clock, 1, school="01AB00", fail=True)
    clock.advance(timedelta(days=3))
    ok_03 = _outbound(store, clock, 2, school="03EF00")
    failed_03 = _outbound(store, clock, 3, school="03EF00", fail=True)
    client = _client(tmp_path, store, clock)

    def shown(query: str) -> set[int]:
        response = client.get("/console/transfers?" + query)
        assert response.status_code == 200
        return set(_pks(response.get_data(as_text=True)))

    assert shown("status=failed") == {old, failed_03}
    assert shown("school=03EF") == {ok_03, failed_03}
    assert shown("school=03ef00&status=failed") == {failed_03}
    assert shown("since=24h") == {ok_03, failed_03}
    assert shown("since=7d&direction=out") == {old, ok_03, failed_03}
    assert shown("direction=in") == set()
    ignored = client.get("/console/transfers?status=nonsense&school=x'--").get_data(as_text=True)
    assert "Ignored invalid filter: status, school" in ignored
    assert set(_pks(ignored)) == {old, ok_03, failed_03}


def test_dashboard_counts_failures_first_per_period(tmp_path: Path, store: Store) -> None:
    clock = Clock()
    _outbound(store, clock, 1, school="01AB00", fail=True)
    clock.advance(timedelta(days=2))
    _outbound(store, clock, 2, school="01AB00")
    _outbound(store, clock, 3, school="01AB00")
    _outbound(store, clock, 4, school="01AB00", fail=True)
    html = _client(tmp_path, store, clock).get("/console/").get_data(as_text=True)
    day, week = html.split("Last 7 days")[0], html.split("Last 7 days")[1].split("expiring")[0]

    def counts(section: str) -> list[tuple[str, int]]:
        found = re.findall(
            r'status-(\w+)">\w+</span></a></td>\s*<td>\w+</td>\s*<td class="num">(\d+)', section
        )
        return [(status, int(n)) for status, n in found]

    assert counts(day) == [("failed", 1), ("queued", 2)]
    assert counts(week) == [("failed", 2), ("queued", 2)]


def test_certificates_and_crls_close_to_expiry_are_listed(tmp_path: Path, store: Store) -> None:
    now_client = _client(tmp_path, store, Clock())
    assert "Nothing expires within 30 days" in now_client.get("/console/").get_data(as_text=True)
    cert = load_certificate((DEV / "gateway-00000001000000000002.crt.pem").read_bytes())
    clock = Clock(cert.not_valid_after_utc - timedelta(days=10))
    html = _client(tmp_path / "later", store, clock).get("/console/").get_data(as_text=True)
    assert "our certificate" in html and "directory: Basisschool De Regenboog" in html
    assert "directory: Het Dev College" not in html  # the same certificate as ours: listed once
    assert "CRL (next update)" in html  # the dev CRLs are long stale by then


def test_the_timeline_explains_the_error_code(tmp_path: Path, store: Store) -> None:
    clock = Clock()
    pk = _outbound(store, clock, 1, school="01AB00", fail=True)
    html = _client(tmp_path, store, clock).get(f"/console/transfers/{pk}").get_data(as_text=True)
    assert "MandateMissing" in html
    assert "not mandated for the sending school" in html  # the class's explanation
    assert "An admin can retry" in html  # a viewer gets no retry button
    assert _client(tmp_path, store, clock).get("/console/transfers/999").status_code == 404


def test_a_purged_transfer_says_so_in_the_list_and_on_its_page(
    tmp_path: Path, store: Store
) -> None:
    """The retention purge erased a dossier's content, and the console showed it as any
    "imported" one (an operator's drill): both the list and the page now say "purged"."""
    from sqlalchemy import update

    from oso_gateway.store import models as m

    clock = Clock()
    kept, purged = (_outbound(store, clock, i, school="01AB00") for i in range(2))
    with store.engine.begin() as connection:
        connection.execute(
            update(m.Message).where(m.Message.id == purged).values(purged_at=clock())
        )
    client = _client(tmp_path, store, clock)
    listing = client.get("/console/transfers").get_data(as_text=True)
    rows = {
        int(pk): row
        for pk, row in re.findall(
            r"<tr class=\"[^\"]*\">\s*<td><a href=\"/console/transfers/(\d+)\">(.*?)</tr>",
            listing,
            re.S,
        )
    }
    assert "purged" in rows[purged] and "purged" not in rows[kept]
    page = client.get(f"/console/transfers/{purged}").get_data(as_text=True)
    assert re.search(r"<h1>.*purged.*</h1>", page, re.S)
    assert (
        "purged"
        not in client.get(f"/console/transfers/{kept}").get_data(as_text=True).split("</h1>")[0]
    )


@pytest.mark.parametrize("number", [str(2**63), "99999999999999999999999"])
def test_a_number_too_large_for_a_row_id_is_a_404_on_every_route_with_an_id(
    tmp_path: Path, store: Store, number: str
) -> None:
    """A number past the database's BIGINT reached the driver, which raised OverflowError:
    the page said 500 "Internal error" (an administrator's walkthrough)."""
    from console_support import csrf_of

    clock = Clock()
    _outbound(store, clock, 1, school="01AB00", fail=True)
    client = _client(tmp_path, store, clock)
    for path in (f"/console/transfers/{number}", f"/console/transfers/{number}/disclosure"):
        assert client.get(path).status_code == 404, path
    token = csrf_of(client.get("/console/transfers/1"))
    retried = client.post(f"/console/transfers/{number}/retry", data={"csrf": token})
    assert retried.status_code == 404
    for page in ("transfers", "quarantine", "requests"):  # as a page's start: ignored
        assert client.get(f"/console/{page}?before={number}").status_code == 200, page


def test_the_signer_is_labelled_by_direction(tmp_path: Path, store: Store) -> None:
    """On an outgoing transfer the stored fingerprint is the peer's, of its receipt: labelled
    "Signer", our own message looked as if the other school had signed it."""
    from sqlalchemy import update

    from oso_gateway.store import models as m

    clock = Clock()
    out, incoming = (_outbound(store, clock, i, school="01AB00") for i in range(2))
    with store.engine.begin() as connection:
        connection.execute(
            update(m.Message).where(m.Message.id == out).values(signer_fingerprint="b" * 64)
        )
        connection.execute(
            update(m.Message)
            .where(m.Message.id == incoming)
            .values(direction=m.IN, status=m.IMPORTED, signer_fingerprint="c" * 64)
        )
    client = _client(tmp_path, store, clock)

    def label(pk: int, fingerprint: str) -> str:
        html = client.get(f"/console/transfers/{pk}").get_data(as_text=True)
        found = re.search(rf"<dt>([^<]*)</dt><dd[^>]*>{fingerprint}</dd>", html)
        assert found is not None
        return found.group(1)

    assert label(out, "b" * 64) == "Receipt signed by"
    assert label(incoming, "c" * 64) == "Signed by"


def _one_of_each_kind(store: Store, clock: Clock) -> dict[str, int]:
    """An outgoing dossier, dossier request and answer, by action: their row keys."""
    from oso_gateway.protocol import ACTION_ANSWER, ACTION_REQUEST
    from oso_gateway.transfer.wire import ACTION_DELIVER

    pks = {}
    for n, action in enumerate((ACTION_DELIVER, ACTION_REQUEST, ACTION_ANSWER)):
        record = store.enqueue_outbound(
            message_id=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
            action=action,
            payload=b"<x/>",
            payload_digest=f"{n:064x}",
            now=clock(),
            our_school="00YY00",
            counterpart_school="01AB00",
        )
        assert record is not None
        pks[action] = record.pk
    return pks


def test_the_parents_report_is_offered_on_outgoing_dossier_deliveries_only(
    tmp_path: Path, store: Store
) -> None:
    """The link sat on every outgoing transfer, requests and answers (Accepted, Declined)
    included, and led those to a bare "404 Not Found" (an administrator's walkthrough)."""
    from sqlalchemy import update

    from oso_gateway.protocol import ACTION_ANSWER, ACTION_REQUEST
    from oso_gateway.store import models as m
    from oso_gateway.transfer.wire import ACTION_DELIVER

    clock = Clock()
    pks = _one_of_each_kind(store, clock)
    client = _client(tmp_path, store, clock)

    def offered(pk: int) -> bool:
        html = client.get(f"/console/transfers/{pk}").get_data(as_text=True)
        return f"/console/transfers/{pk}/disclosure" in html

    assert offered(pks[ACTION_DELIVER])
    for action, kind in ((ACTION_REQUEST, "dossier request"), (ACTION_ANSWER, "answer")):
        assert not offered(pks[action])
        response = client.get(f"/console/transfers/{pks[action]}/disclosure")
        assert response.status_code == 404
        text = response.get_data(as_text=True)
        assert kind in text and "outgoing dossier delivery" in text
        assert f'href="/console/transfers/{pks[action]}"' in text  # back to the transfer
    incoming = _outbound(store, clock, 9, school="01AB00")
    with store.engine.begin() as connection:
        connection.execute(
            update(m.Message)
            .where(m.Message.id == incoming)
            .values(direction=m.IN, status=m.IMPORTED)
        )
    assert not offered(incoming)
    response = client.get(f"/console/transfers/{incoming}/disclosure")
    assert response.status_code == 404
    assert "is an incoming message" in response.get_data(as_text=True)
    # a delivery without a disclosure record: a 404 that says so
    missing = client.get(f"/console/transfers/{pks[ACTION_DELIVER]}/disclosure")
    assert missing.status_code == 404
    assert "No disclosure record" in missing.get_data(as_text=True)


def test_the_lists_and_a_transfers_page_say_what_kind_of_message_it_is(
    tmp_path: Path, store: Store
) -> None:
    """The dashboard counted a pull request's answers as imported dossiers, and nothing told
    a dossier from a request or an answer (an administrator's walkthrough)."""
    import re

    from oso_gateway.protocol import ACTION_ANSWER, ACTION_REQUEST
    from oso_gateway.transfer.wire import ACTION_DELIVER

    clock = Clock()
    pks = _one_of_each_kind(store, clock)
    client = _client(tmp_path, store, clock)
    listing = client.get("/console/transfers").get_data(as_text=True)
    assert "<th>Kind</th>" in listing
    for action, kind in ((ACTION_DELIVER, "dossier"), (ACTION_REQUEST, "request"),
                         (ACTION_ANSWER, "answer")):  # fmt: skip
        row = re.search(
            rf'transfers/{pks[action]}">{pks[action]}</a></td>(.*?)</tr>', listing, re.S
        )
        assert row is not None and f"<td>{kind}</td>" in row.group(1), (kind, row)
        page = client.get(f"/console/transfers/{pks[action]}").get_data(as_text=True)
        assert f"<dt>Kind</dt><dd>{kind}</dd>" in page
    assert "Messages (dossiers, requests, answers)" in client.get("/console/").get_data(
        as_text=True
    )
