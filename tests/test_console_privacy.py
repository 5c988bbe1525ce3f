"""Privacy: no console page shows pupil data, whatever was transferred, rejected or failed.

Marker dossiers (names carrying a marker string, each with its own BSN and birth date) go through
the in-memory gateway pair: delivered ones, one the receiver rejects (mandate missing) and so fails
at the sender. Then an admin opens every console page of both gateways, every transfer's timeline
included, every filter, and no marker, BSN or birth date appears.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_support import (
    ADMIN_NAME,
    add_operator,
    cheap_hasher,
    console_app,
    console_settings,
    login,
)
from flask.testing import FlaskClient
from gateway_pair import (
    SENDER_OIN,
    GatewayPair,
    dev_directory,
    make_pair,
    with_sending_school,
)
from lxml import etree

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import ConfigError
from oso_gateway.runtime import build_console_app
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.web.console.views import EXTENSION_KEY, ConsoleContext

MARKERS = ("Qvzprivmarker", "Wqxprivmarker")


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayPair]:
    cheap_hasher(monkeypatch)
    gateways = make_pair(tmp_path)
    yield gateways
    gateways.close()


def _pii(data: bytes) -> set[str]:
    """The pupil's identifying values in a generated dossier: BSN, birth date, names."""
    root = etree.fromstring(data)
    found = set()
    for name in ("bsn", "geboortedatum", "achternaam", "voornaam", "roepnaam"):
        for element in root.iter(f"{{*}}{name}"):
            if element.text and len(element.text.strip()) >= 4:
                found.add(element.text.strip())
    return found


def _transfer(pair: GatewayPair, *, seed: int, marker: str, brin: str | None = None) -> set[str]:
    data = generate_dossier(overstap="POVO", seed=seed, now=pair.clock(), marker=marker)
    if brin is not None:
        data = with_sending_school(data, brin)
    prepared = pair.prepare(data)
    pair.outbox.enqueue(prepared)
    pair.outbox.run_once()
    return _pii(data)


def _all_pages(client: FlaskClient, store: Store) -> list[tuple[str, str]]:
    urls = [
        "/console/",
        "/console/transfers",
        "/console/quarantine",
        "/console/directory",
        "/console/operators",
    ]
    for status in (*m.OUTBOUND_STATUSES, *m.INBOUND_STATUSES):
        urls.append(f"/console/transfers?status={status}")
    for direction in ("in", "out"):
        urls.append(f"/console/transfers?direction={direction}&since=7d")
    urls += ["/console/transfers?school=00YY00", "/console/transfers?school=01AB"]
    urls += [f"/console/transfers/{record.pk}" for record in store.list_messages(limit=1000)]
    pages = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages.append((url, response.get_data(as_text=True)))
    return pages


def test_no_console_page_shows_a_marker_name_bsn_or_birth_date(
    pair: GatewayPair, tmp_path: Path
) -> None:
    pii = _transfer(pair, seed=11, marker=MARKERS[0])
    # Our directory says 03EF00 mandated us, the receiver's does not: rejected there, failed here.
    pair.set_sender_directory(dev_directory(extra_mandates={"03EF00": [SENDER_OIN]}))
    pii |= _transfer(pair, seed=12, marker=MARKERS[1], brin="03EF")
    assert any(MARKERS[0] in value for value in pii) and any(MARKERS[1] in value for value in pii)

    statuses = {r.status for r in pair.sender_store.list_messages()} | {
        r.status for r in pair.receiver_store.list_messages()
    }
    assert {m.DELIVERED, m.FAILED, m.IMPORTED, m.REJECTED} <= statuses

    checked = 0
    for name, store in (("sender", pair.sender_store), ("receiver", pair.receiver_store)):
        add_operator(store, ADMIN_NAME, "admin")
        client = console_app(tmp_path / name, store).test_client()
        assert login(client, ADMIN_NAME).status_code == 302
        for url, html in _all_pages(client, store):
            for value in pii:
                assert value not in html, f"{name} {url} shows pupil data"
            for marker in MARKERS:
                assert marker.lower() not in html.lower(), f"{name} {url} shows a marker"
            checked += 1
    assert checked > 30


def test_the_console_opens_the_database_without_the_storage_key(
    pair: GatewayPair, tmp_path: Path
) -> None:
    url = pair.receiver_store.engine.url.render_as_string(hide_password=False)
    settings = console_settings(tmp_path, url)
    app = build_console_app(settings, secret_key=b"s" * 32)
    context: ConsoleContext = app.extensions[EXTENSION_KEY]
    with pytest.raises(ConfigError, match="storage key"):
        _ = context.store.cipher
