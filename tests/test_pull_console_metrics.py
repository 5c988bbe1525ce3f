"""Expired and declined requests show in the console (no pupil data) and in the metrics."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from console_support import VIEWER_NAME, add_operator, cheap_hasher, console_app, login
from metrics_support import exposition
from pull_pair import NEW, OLD, dossier, make_pull_pair, pupil_of, valid_bsns

from oso_gateway.transfer.metrics import pull_request_family


def test_expired_and_declined_requests_show_in_the_console_and_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cheap_hasher(monkeypatch)
    pp = make_pull_pair(tmp_path)
    try:
        data = dossier(pp.clock)
        pupil = pupil_of(data)
        declined = pp.new.pull.send_request(requesting=NEW, old_school=OLD, pupil=pupil)
        pp.drain()
        pp.old.pull.decline(declined.request_id, reason="parents-objected")
        pp.drain()
        expiring = pp.new.pull.send_request(requesting=NEW, old_school=OLD, pupil=pupil)
        pp.drain()
        pp.clock.advance(timedelta(days=pp.new.pull.settings.expire_days, hours=1))

        text = exposition([pull_request_family(pp.new.store, now=pp.clock())])
        assert 'oso_gateway_pull_requests{side="requester",status="declined"} 1.0' in text
        assert 'oso_gateway_pull_requests{side="requester",status="expired"} 1.0' in text
        old_text = exposition([pull_request_family(pp.old.store, now=pp.clock())])
        assert 'oso_gateway_pull_requests{side="holder",status="received"} 1.0' in old_text
        assert 'oso_gateway_pull_requests{side="holder",status="overdue"} 1.0' in old_text

        add_operator(pp.new.store, VIEWER_NAME, "viewer")
        client = console_app(tmp_path, pp.new.store, clock=pp.clock).test_client()
        assert login(client, VIEWER_NAME).status_code == 302
        html = client.get("/console/requests").get_data(as_text=True)
        assert declined.request_id in html and expiring.request_id in html
        assert "status-declined" in html and "status-expired" in html
        assert "parents-objected" in html
        for personal in (pupil.bsn or "", pupil.family_name, pupil.birth_date.isoformat()):
            assert personal not in html

        # an operator scoped to another school sees none of them
        from console_support import PASSWORD

        from oso_gateway.store.operators import OperatorStore
        from oso_gateway.web import auth

        OperatorStore(pp.new.store.engine).add(
            "other-school",
            role="viewer",
            password_hash=auth.hash_password(PASSWORD),
            now=pp.clock(),
            schools=("02CD00",),
        )
        other = console_app(tmp_path, pp.new.store, clock=pp.clock).test_client()
        assert login(other, "other-school").status_code == 302
        html = other.get("/console/requests").get_data(as_text=True)
        assert declined.request_id not in html and "No requests." in html
    finally:
        pp.close()


def test_the_console_lists_requests_a_page_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vendor's console holds thousands of requests: 25 a page, newest first, and an "Older"
    link to the rest; every request on exactly one page."""
    import re

    from oso_gateway.web.console.views import PAGE_SIZE

    cheap_hasher(monkeypatch)
    pp = make_pull_pair(tmp_path)
    try:
        data = dossier(pp.clock)  # a pupil each: a second open request for one is E486
        sent = [
            pp.new.pull.send_request(
                requesting=NEW, old_school=OLD, pupil=pupil_of(data, bsn=bsn)
            ).request_id
            for bsn in valid_bsns(PAGE_SIZE + 2)
        ]
        add_operator(pp.new.store, VIEWER_NAME, "viewer")
        client = console_app(tmp_path, pp.new.store, clock=pp.clock).test_client()
        assert login(client, VIEWER_NAME).status_code == 302
        shown, url = [], "/console/requests"
        while url:
            html = client.get(url).get_data(as_text=True)
            shown.append(re.findall(r"<td><code>(urn:uuid:[0-9a-f-]+)</code></td>", html))
            older = re.search(r'<a href="([^"]+)">Older', html)
            url = older.group(1).replace("&amp;", "&") if older else ""
            assert len(shown) < 5, "the pages do not end"
        assert shown == [sent[::-1][:PAGE_SIZE], sent[::-1][PAGE_SIZE:]]
        # a page number that is a digit but not ASCII ("²") is no page number: the first page
        odd = client.get("/console/requests?before=%C2%B2")
        assert odd.status_code == 200 and sent[-1] in odd.get_data(as_text=True)
    finally:
        pp.close()


def test_the_console_filters_requests_by_a_school_on_either_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With hundreds of schools one school's requests were pages apart (a vendor's
    walkthrough): ?school= (a BRIN, or BRIN + vestiging) keeps those with it on either side,
    and the "Older" link keeps the filter."""
    import re

    from oso_gateway.transfer.schools import School

    cheap_hasher(monkeypatch)
    pp = make_pull_pair(tmp_path)
    try:
        pupil = pupil_of(dossier(pp.clock))
        to_old = pp.new.pull.send_request(requesting=NEW, old_school=OLD, pupil=pupil)
        other = School("02CD", "00")
        to_other = pp.new.pull.send_request(requesting=NEW, old_school=other, pupil=pupil)
        add_operator(pp.new.store, VIEWER_NAME, "viewer")
        client = console_app(tmp_path, pp.new.store, clock=pp.clock).test_client()
        assert login(client, VIEWER_NAME).status_code == 302

        def listed(query: str) -> tuple[list[str], str]:
            html = client.get("/console/requests" + query).get_data(as_text=True)
            return re.findall(r"<td><code>(urn:uuid:[0-9a-f-]+)</code></td>", html), html

        assert listed("?school=02cd00")[0] == [to_other.request_id]
        assert listed("?school=00YY")[0] == [to_old.request_id]
        assert set(listed(f"?school={NEW.code}")[0]) == {to_old.request_id, to_other.request_id}
        every, html = listed("?school=Jansen")
        assert len(every) == 2 and "Ignored invalid filter: school" in html
    finally:
        pp.close()
