"""Tenant isolation on the live school API: a client of school A never sees nor acts on school
B's messages. Another tenant's MessageID answers 404 (OSO-E602) on EVERY endpoint that takes
one, exactly like an id that does not exist, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import SCHOOL_A, SCHOOL_B, LiveApi, live_api

pytestmark = pytest.mark.integration

MISSING = "urn:uuid:00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from live_api(Path(tmp_path_factory.mktemp("tenancy")))


INBOX_CALLS = [
    ("get", "inbox/messages/{id}", {}),
    ("get", "inbox/messages/{id}/dossier", {}),
    ("get", "inbox/messages/{id}/dossier?format=json", {}),
    ("get", "inbox/messages/{id}/dossier?categories=verzuim", {}),
    ("post", "inbox/messages/{id}/ack", {}),
    ("post", "inbox/messages/{id}/decline", {"json": {"reason": "not ours"}}),
]
OUTBOX_CALLS = [
    ("get", "outbox/messages/{id}", {}),
    ("post", "outbox/messages/{id}/retry", {}),
    ("post", "outbox/messages/{id}/cancel", {}),
    ("get", "receipts/{id}", {}),
]


def _call(api: LiveApi, method: str, path: str, school: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return getattr(api, method)(path, school, **kwargs)


@pytest.mark.parametrize(("method", "path", "kwargs"), INBOX_CALLS)
def test_another_schools_inbox_message_is_not_found(
    api: LiveApi, method: str, path: str, kwargs: dict[str, object]
) -> None:
    theirs = api.inbox_ids[SCHOOL_A]
    answer = _call(api, method, path.format(id=theirs), SCHOOL_B, **kwargs)
    missing = _call(api, method, path.format(id=MISSING), SCHOOL_B, **kwargs)
    assert answer.status_code == missing.status_code == 404
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["code"] == missing.json()["code"] == "OSO-E602"
    assert answer.json()["detail"] == missing.json()["detail"]
    # nothing changed for the owner
    mine = api.get(f"inbox/messages/{theirs}", SCHOOL_A).json()
    assert mine["status"] == "imported"


@pytest.mark.parametrize(("method", "path", "kwargs"), OUTBOX_CALLS)
def test_another_schools_outbox_message_is_not_found(
    api: LiveApi, method: str, path: str, kwargs: dict[str, object]
) -> None:
    theirs = api.outbox_ids[SCHOOL_A]
    answer = _call(api, method, path.format(id=theirs), SCHOOL_B, **kwargs)
    assert answer.status_code == 404
    assert answer.json()["code"] == "OSO-E602"
    mine = api.get(f"outbox/messages/{theirs}", SCHOOL_A).json()
    assert mine["status"] in ("queued", "retrying")


def test_lists_hold_only_the_clients_own_schools(api: LiveApi) -> None:
    for school, other in ((SCHOOL_A, SCHOOL_B), (SCHOOL_B, SCHOOL_A)):
        inbox = api.get("inbox/messages", school).json()["items"]
        assert [i["message_id"] for i in inbox] == [api.inbox_ids[school]]
        assert {i["school"] for i in inbox} == {school}
        assert api.inbox_ids[other] not in str(inbox)
    outbox_b = api.get("outbox/messages", SCHOOL_B).json()["items"]
    assert outbox_b == []
    # a filter naming the other school yields nothing either
    assert api.get(f"outbox/messages?recipient={SCHOOL_A}", SCHOOL_B).json()["items"] == []


def test_a_client_cannot_submit_for_another_school(api: LiveApi) -> None:
    from api_support import dossier_for

    before = api.get("outbox/messages", SCHOOL_B).json()["items"]
    answer = api.post(
        "outbox/messages",
        SCHOOL_B,
        params={"recipient": "01AB00"},
        data=dossier_for("POVO", SCHOOL_A, seed=21),  # sent by school A
        headers={"Content-Type": "application/xml"},
    )
    assert answer.status_code == 403 and answer.json()["code"] == "OSO-E603"
    assert SCHOOL_A in answer.json()["detail"]  # which school the dossier names, so it is fixed
    assert api.get("outbox/messages", SCHOOL_B).json()["items"] == before
    dry = api.post(
        "outbox/dry-run",
        SCHOOL_B,
        params={"recipient": "01AB00"},
        data=dossier_for("POVO", SCHOOL_A, seed=21),
        headers={"Content-Type": "application/xml"},
    )
    assert dry.status_code == 200 and dry.json()["would_queue"] is False
    assert dry.json()["error_code"] == "OSO-E603"
