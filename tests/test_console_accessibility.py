"""Console accessibility (an administrator's walkthrough): repeated buttons name what they act
on, the navigation marks the current page, and a skip link leads to the main content."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from console_support import ADMIN_NAME, VIEWER_NAME, add_operator, cheap_hasher, console_app, login
from flask.testing import FlaskClient
from gateway_pair import Clock, sqlite_store

from oso_gateway.store import Store


class _Buttons(HTMLParser):
    """Each button's accessible name: its ``aria-label``, else its text (visually hidden text
    included, as a screen reader reads it)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self._label: str | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "button":
            self._label, self._text = dict(attrs).get("aria-label"), []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._text is not None:
            self.names.append(self._label or " ".join("".join(self._text).split()))
            self._text = None


def _button_names(html: str) -> list[str]:
    parser = _Buttons()
    parser.feed(html)
    return parser.names


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    cheap_hasher(monkeypatch)
    the_store = sqlite_store(tmp_path / "gw.sqlite")
    add_operator(the_store, ADMIN_NAME, "admin")
    add_operator(the_store, VIEWER_NAME, "viewer")
    yield the_store
    the_store.engine.dispose()


@pytest.fixture
def client(tmp_path: Path, store: Store) -> FlaskClient:
    clock = Clock()
    for n in range(2):
        record = store.enqueue_outbound(
            message_id=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
            action="urn:oso-gateway:action:dossier:deliver:1",
            payload=b"<x/>",
            payload_digest="a" * 64,
            now=clock(),
            our_school="00YY00",
            counterpart_school="01AB00",
        )
        store.mark_failed(record.pk, error_code="OSO-E431", now=clock())  # type: ignore[union-attr]
    app = console_app(tmp_path, store, clock=clock)
    assert login(app.test_client(), VIEWER_NAME).status_code == 302  # a session to end
    admin = app.test_client()
    assert login(admin, ADMIN_NAME).status_code == 302
    return admin


def test_repeated_buttons_name_the_account_or_transfer_they_act_on(client: FlaskClient) -> None:
    operators = _button_names(client.get("/console/operators").get_data(as_text=True))
    ends = [name for name in operators if name.startswith("End sessions")]
    assert sorted(ends) == [f"End sessions of {ADMIN_NAME}", f"End sessions of {VIEWER_NAME}"]
    quarantine = _button_names(client.get("/console/quarantine").get_data(as_text=True))
    retries = [name for name in quarantine if name.startswith("Retry")]
    assert sorted(retries) == ["Retry transfer 1", "Retry transfer 2"]


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("/console/", "Dashboard"),
        ("/console/transfers", "Transfers"),
        ("/console/quarantine", "Quarantine"),
        ("/console/requests", "Requests"),
        ("/console/directory", "Directory"),
        ("/console/operators", "Operators"),
        ("/console/transfers/1", None),  # in the Transfers section, but not that page
    ],
)
def test_the_navigation_marks_the_current_page(
    client: FlaskClient, path: str, current: str | None
) -> None:
    html = client.get(path).get_data(as_text=True)
    nav = html[html.index("<nav") : html.index("</nav>")]
    marked = re.findall(r'<a [^>]*aria-current="page"[^>]*>([^<]*)</a>', nav)
    assert marked == ([current] if current else [])


def test_a_skip_link_leads_to_the_main_content(client: FlaskClient) -> None:
    for path in ("/console/", "/console/transfers", "/console/login"):
        html = client.get(path).get_data(as_text=True)
        body = html[html.index("<body") :]
        first_link = re.search(r'<a [^>]*href="([^"]*)"[^>]*>([^<]*)</a>', body)
        assert first_link is not None
        assert first_link.groups() == ("#main", "Skip to main content"), path
        assert re.search(r'<main [^>]*id="main"', html), path
