"""The console says what erased a transfer's or a request's content: a subject erasure (``oso-
gateway subject erase``) or the retention purge; neutrally when the store does not know (a row
purged before it kept the reason). An administrator's walkthrough found erased requests not
marked, and "retention purge" said of a subject erasure. Real pull-workflow stores, the CLI."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from console_support import VIEWER_NAME, add_operator, cheap_hasher, console_app, login
from flask.testing import FlaskClient
from gateway_pair import KEY, RECEIVER_OIN
from pull_pair import NEW, OLD, PullPair, dossier, make_pull_pair, pupil_of
from sqlalchemy import select, update

from oso_gateway.cli import main
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.lifecycle import RECEIVED, Lifecycle, PurgeCandidate

ERASURE = "content erased by a subject erasure (oso-gateway subject erase)"
RETENTION = "content erased by the retention purge"
UNKNOWN = "content erased (retention or a subject erasure)"


@pytest.fixture
def pp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PullPair]:
    cheap_hasher(monkeypatch)
    pair = make_pull_pair(tmp_path)
    yield pair
    pair.close()


def _deliver(pp: PullPair, seed: int) -> tuple[str, str]:
    """A request of the new school answered with a dossier: (request id, delivery id)."""
    from datetime import date

    data = dossier(pp.clock, seed=seed)
    request = pp.new.pull.send_request(requesting=NEW, old_school=OLD, pupil=pupil_of(data))
    pp.drain()
    pp.old.pull.answer_with_dossier(request.request_id, data)
    pp.old.pull.record_inzage(request.request_id, inzage_date=date(2026, 1, 5), how="paper")
    pp.drain()
    pp.old.pull.refresh()
    record = pp.new.pull.requests.find(side=m.REQUESTER, request_id=request.request_id)
    assert record is not None and record.delivery_message_id is not None
    return request.request_id, record.delivery_message_id


def _erase(tmp_path: Path, bsn: str) -> None:
    """``oso-gateway subject erase`` at the new school."""
    config = tmp_path / "new.toml"
    key = base64.b64encode(KEY).decode()
    data_dir = (tmp_path / RECEIVER_OIN).as_posix()
    config.write_text(f'data_dir = "{data_dir}"\n[storage]\nkey = "{key}"\n')
    result = CliRunner().invoke(
        main, ["subject", "erase", "--yes", "--config", str(config), "--bsn", "-"], input=bsn
    )
    assert result.exit_code == 0, result.output


def _pk(store: Store, message_id: str) -> int:
    with store.engine.connect() as conn:
        pk = conn.scalar(select(m.Message.id).where(m.Message.message_id == message_id))
    assert isinstance(pk, int)
    return pk


def _client(tmp_path: Path, pp: PullPair) -> FlaskClient:
    store = Store(pp.new.store.engine)  # as the console opens it: without the storage key
    add_operator(store, VIEWER_NAME, "viewer")
    client = console_app(tmp_path / "console", store, clock=pp.clock).test_client()
    assert login(client, VIEWER_NAME).status_code == 302
    return client


def test_the_console_says_what_erased_a_transfer_or_a_request(tmp_path: Path, pp: PullPair) -> None:
    erased_request, erased_delivery = _deliver(pp, seed=41)
    _, retained_delivery = _deliver(pp, seed=42)
    _, old_delivery = _deliver(pp, seed=43)
    bsn = pupil_of(dossier(pp.clock, seed=41)).bsn
    assert bsn
    _erase(tmp_path, bsn)
    store = pp.new.store
    retained, old = _pk(store, retained_delivery), _pk(store, old_delivery)
    Lifecycle(store.engine, store.cipher).purge(
        [PurgeCandidate(pk=retained, message_id=retained_delivery, kind=RECEIVED, direction=m.IN)],
        now=pp.clock(),
    )
    with store.engine.begin() as conn:  # purged before the store kept what purged it
        conn.execute(update(m.Message).where(m.Message.id == old).values(purged_at=pp.clock()))
    client = _client(tmp_path, pp)

    listing = client.get("/console/transfers?direction=in").get_data(as_text=True)
    titles = {}
    for row in re.findall(r"<tr class=[^>]*>(.*?)</tr>", listing, re.S):
        pk = re.search(r'href="/console/transfers/(\d+)"', row)
        title = re.search(r'class="purged" title="([^"]*)"', row)
        assert pk is not None
        titles[pk.group(1)] = title.group(1) if title else None
    erased = _pk(store, erased_delivery)
    assert (titles[str(erased)] or "").startswith(ERASURE + ", "), titles
    assert (titles[str(retained)] or "").startswith(RETENTION + ", "), titles
    assert (titles[str(old)] or "").startswith(UNKNOWN + ", "), titles
    page = client.get(f"/console/transfers/{erased}").get_data(as_text=True)
    assert f"<dt>Content</dt><dd>{ERASURE}, " in page

    requests = client.get("/console/requests").get_data(as_text=True)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", requests, re.S)
    marked = [row for row in rows if 'class="purged"' in row]
    assert len(marked) == 1 and erased_request in marked[0]
    assert f'title="{ERASURE}">erased</small>' in marked[0]
    assert bsn not in requests
