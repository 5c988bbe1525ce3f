"""The live school API: submit (idempotency, duplicates), dry-run, pagination, inbox fetch,
ack and decline, receipts, bad input as problem responses, revocation, the transfer log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from api_support import SCHOOL_A, SCHOOL_B, LiveApi, dossier_for, live_api
from lxml import etree

from oso_gateway.dossier.categories import present_keys
from oso_gateway.store import models as m

pytestmark = pytest.mark.integration

XML = {"Content-Type": "application/xml"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from live_api(Path(tmp_path_factory.mktemp("api")))


def outbox_count(api: LiveApi) -> int:
    return len(api.vendor.store.list_messages(direction=m.OUT, limit=1000))


def submit(api: LiveApi, data: bytes, *, key: str | None = None, school: str = SCHOOL_A):  # type: ignore[no-untyped-def]
    headers = dict(XML)
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.post(
        "outbox/messages", school, params={"recipient": "01AB00"}, data=data, headers=headers
    )


def test_idempotency_key_same_body_same_message_other_body_409(api: LiveApi) -> None:
    first = submit(api, dossier_for("POVO", SCHOOL_A, seed=31), key="las-31")
    assert first.status_code == 201, first.text
    again = submit(api, dossier_for("POVO", SCHOOL_A, seed=31), key="las-31")
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["message"]["message_id"] == first.json()["message"]["message_id"]
    before = outbox_count(api)
    other = submit(api, dossier_for("POVO", SCHOOL_A, seed=32), key="las-31")
    assert other.status_code == 409 and other.json()["code"] == "OSO-E604"
    assert outbox_count(api) == before


def test_the_idempotency_key_is_kept_as_a_keyed_hash_and_an_earlier_plain_one_still_counts(
    api: LiveApi,
) -> None:
    """A school system may build its key from a pupil number ('leerling-4711-…'): the store keeps
    the key's keyed hash, not the key. A key kept verbatim by an earlier version is still found,
    so a retry that spans an upgrade answers with its first message."""
    from sqlalchemy import text

    key = "leerling-999999187-2026-12"
    first = submit(api, dossier_for("POVO", SCHOOL_A, seed=141), key=key)
    assert first.status_code == 201, first.text
    with api.vendor.store.engine.begin() as connection:
        kept = connection.execute(
            text("SELECT key, message_pk, client_id, request_digest FROM api_idempotency")
        ).all()
        assert kept and all("999999187" not in row.key for row in kept)
        mine = [r for r in kept if r.message_pk == max(r.message_pk for r in kept)]
        [row] = mine
        assert len(row.key) == 64
        # as an earlier version kept it: the key itself
        connection.execute(
            text("UPDATE api_idempotency SET key = :plain WHERE key = :hashed"),
            {"plain": key, "hashed": row.key},
        )
    again = submit(api, dossier_for("POVO", SCHOOL_A, seed=141), key=key)
    assert again.status_code == 200, again.text
    assert again.json()["message"]["message_id"] == first.json()["message"]["message_id"]
    other = submit(api, dossier_for("POVO", SCHOOL_A, seed=142), key=key)
    assert (other.status_code, other.json()["code"]) == (409, "OSO-E604")


def test_parallel_submits_of_one_dossier_queue_it_once(api: LiveApi) -> None:
    """Six submits of one dossier at the same moment: without a key one is queued and the others
    answer E610 naming it (five were queued, found by a helper); with one shared key every
    answer names the same message, none E610."""
    from concurrent.futures import ThreadPoolExecutor

    for seed, key in ((161, None), (162, "6f1c2b9e-0000-4000-8000-00000000a162")):
        data = dossier_for("POVO", SCHOOL_A, seed=seed)
        before = outbox_count(api)
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda d: submit(api, d, key=key), [data] * 6))  # noqa: B023
        assert outbox_count(api) == before + 1, [a.text for a in answers]
        created = [a.json()["message"]["message_id"] for a in answers if a.status_code == 201]
        assert len(created) == 1, [a.text for a in answers]
        for answer in answers:
            if key is None and answer.status_code != 201:
                assert (answer.status_code, answer.json()["code"]) == (409, "OSO-E610")
                assert answer.json()["duplicate_of"] == created[0]
            elif key is not None:
                assert answer.status_code in (200, 201), answer.text
                assert answer.json()["message"]["message_id"] == created[0]


def test_a_dossier_addressed_to_its_own_school_is_refused(api: LiveApi) -> None:
    """It was queued and delivered into the school's own inbox (found by a LAS walkthrough)."""
    data = dossier_for("POVO", SCHOOL_A, seed=171)
    before = outbox_count(api)
    for path in ("outbox/messages", "outbox/dry-run"):
        answer = api.post(path, SCHOOL_A, params={"recipient": SCHOOL_A}, data=data, headers=XML)
        if path == "outbox/dry-run":
            assert answer.status_code == 200 and answer.json()["error_code"] == "OSO-E432"
            continue
        assert (answer.status_code, answer.json()["code"]) == (400, "OSO-E432"), answer.text
        assert SCHOOL_A in answer.json()["detail"]
    assert outbox_count(api) == before


def test_the_same_dossier_again_is_a_duplicate_naming_the_first(api: LiveApi) -> None:
    first = submit(api, dossier_for("POVO", SCHOOL_A, seed=33))
    assert first.status_code == 201
    before = outbox_count(api)
    again = submit(api, dossier_for("POVO", SCHOOL_A, seed=33))
    assert again.status_code == 409 and again.json()["code"] == "OSO-E610"
    assert again.json()["duplicate_of"] == first.json()["message"]["message_id"]
    assert outbox_count(api) == before
    # the dry-run says so too: it said "would queue" of it (an integrator's walkthrough)
    dry = api.post(
        "outbox/dry-run",
        SCHOOL_A,
        params={"recipient": "01AB00"},
        data=dossier_for("POVO", SCHOOL_A, seed=33),
        headers=XML,
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["would_queue"] is False and dry.json()["error_code"] == "OSO-E610"
    assert dry.json()["duplicate_of"] == first.json()["message"]["message_id"]
    assert outbox_count(api) == before


def test_dry_run_reports_findings_and_categories_and_queues_nothing(api: LiveApi) -> None:
    from oso_gateway.transfer.demo import with_opt_out

    before = outbox_count(api)
    answer = api.post(
        "outbox/dry-run",
        SCHOOL_A,
        params={"recipient": "01AB00"},
        data=with_opt_out(dossier_for("POVO", SCHOOL_A, seed=34)),
        headers=XML,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["would_queue"] is True and body["error_code"] is None
    actions = {c["key"]: c["action"] for c in body["categories"]}
    assert actions["toetsresultaten"] == "removed" and actions["leerling"] == "shared"
    assert outbox_count(api) == before


def test_dry_run_of_xml_that_does_not_parse_answers_as_a_submit_with_the_line(
    api: LiveApi,
) -> None:
    """It answered E201 (the SOAP layer's code) with no finding at all, where a submit says
    E101 and `validate` gives the line and column (found by a helper's walkthrough)."""
    whole = dossier_for("POVO", SCHOOL_A, seed=35)
    cut = whole[: len(whole) // 2]
    answer = api.post(
        "outbox/dry-run", SCHOOL_A, params={"recipient": "01AB00"}, data=cut, headers=XML
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    submitted = submit(api, cut)
    assert submitted.status_code == 400 and submitted.json()["code"] == body["error_code"]
    assert body["would_queue"] is False and body["error_code"] == "OSO-E101"
    [finding] = body["findings"]
    assert finding["severity"] == "error" and finding["line"] is not None
    assert "not well-formed XML at line" in finding["message"]
    empty = api.post(
        "outbox/dry-run", SCHOOL_A, params={"recipient": "01AB00"}, data=b"", headers=XML
    )
    assert empty.json()["error_code"] == "OSO-E101" and empty.json()["findings"], empty.text


def test_a_parents_objection_is_withheld_from_a_submit_and_shown_by_its_dry_run(
    api: LiveApi,
) -> None:
    """The API's submit prepared the dossier without the recorded objections, so it failed
    with a 500 (E542) and the dry-run said the category would be shared (found by a helper's
    walkthrough of the pull flow, whose delivery had the same fault)."""
    from oso_gateway.dossier.disclosure import pupil_number
    from oso_gateway.security.xmlparse import parse_xml
    from oso_gateway.store.disclosures import PrivacyRecords

    data = dossier_for("POVO", SCHOOL_A, seed=36)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None and b"<toetslijst" in data
    store = api.vendor.store
    PrivacyRecords(store.engine, store.cipher).record_objection(
        school=SCHOOL_A, pupil_number=number, category="toetsresultaten", now=datetime.now(UTC)
    )
    dry = api.post(
        "outbox/dry-run", SCHOOL_A, params={"recipient": "01AB00"}, data=data, headers=XML
    ).json()
    assert dry["would_queue"] is True, dry
    actions = {c["key"]: c["action"] for c in dry["categories"]}
    assert actions["toetsresultaten"] == "removed" and actions["leerling"] == "shared"
    answer = submit(api, data)
    assert answer.status_code == 201, answer.text
    assert answer.json()["removed"].get("toetsresultaten"), answer.json()


def test_a_dry_run_of_another_schools_dossier_does_not_tell_its_parents_objections(
    api: LiveApi,
) -> None:
    """The dry-run looked the objections up for the school the uploaded dossier names, before
    the scope check: a client of school A learnt whether a pupil's parents at school B had
    objected (found by a review). Answers for B's dossier are now the same either way."""
    from oso_gateway.dossier.disclosure import pupil_number
    from oso_gateway.security.xmlparse import parse_xml
    from oso_gateway.store.disclosures import PrivacyRecords

    data = dossier_for("VOVO", SCHOOL_B, seed=37)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None and b"<toetslijst" in data

    def dry_run_as_a() -> dict[str, object]:
        answer = api.post(
            "outbox/dry-run", SCHOOL_A, params={"recipient": "01AB00"}, data=data, headers=XML
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    before = dry_run_as_a()
    assert before["error_code"] == "OSO-E603"
    store = api.vendor.store
    PrivacyRecords(store.engine, store.cipher).record_objection(
        school=SCHOOL_B, pupil_number=number, category="toetsresultaten", now=datetime.now(UTC)
    )
    assert dry_run_as_a() == before
    refused = submit(api, data)  # A's client submitting B's dossier: the same E603 either way
    assert (refused.status_code, refused.json()["code"]) == (403, "OSO-E603")


def test_a_dry_run_of_a_dossier_naming_no_school_keeps_its_finding(api: LiveApi) -> None:
    """The objection look-up needs the sending school; it raised E102 for a dossier without
    one and the answer lost the validation's finding (found by a review)."""
    data = dossier_for("POVO", SCHOOL_A, seed=38)
    root = etree.fromstring(data)
    ns = {"d": root.nsmap[None]}
    [brin] = root.xpath("//d:huidigeschool/d:brincode", namespaces=ns)
    brin.getparent().remove(brin)
    answer = api.post(
        "outbox/dry-run",
        SCHOOL_A,
        params={"recipient": "01AB00"},
        data=etree.tostring(root),
        headers=XML,
    ).json()
    assert answer["would_queue"] is False and answer["findings"], answer


def test_outbox_list_filters_and_pages_with_a_cursor(api: LiveApi) -> None:
    for seed in (41, 42, 43):
        assert submit(api, dossier_for("POVO", SCHOOL_A, seed=seed)).status_code == 201
    everything = api.get("outbox/messages?limit=200", SCHOOL_A).json()["items"]
    seen: list[str] = []
    cursor = None
    while True:
        query = "outbox/messages?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(query, SCHOOL_A).json()
        seen += [i["message_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["message_id"] for i in everything]  # newest first, none twice
    assert len(seen) == len(set(seen)) >= 4
    queued = api.get("outbox/messages?status=queued&recipient=01AB00", SCHOOL_A).json()["items"]
    assert queued and {i["status"] for i in queued} == {"queued"}
    assert api.get("outbox/messages?recipient=00YY00", SCHOOL_A).json()["items"] == []
    future = api.get("outbox/messages?since=2999-01-01T00:00:00Z", SCHOOL_A).json()
    assert future["items"] == []
    # a date, or a time without a zone, is UTC (it answered 500; found by a LAS walkthrough)
    for query, found in (
        ("since=2000-01-01", True),
        ("until=2999-12-31T00:00:00", True),
        ("since=2999-01-01", False),
    ):
        for box in ("outbox", "inbox"):
            answer = api.get(f"{box}/messages?{query}", SCHOOL_A)
            assert answer.status_code == 200, (box, query, answer.text)
        outbox = api.get(f"outbox/messages?{query}", SCHOOL_A).json()["items"]
        assert bool(outbox) is found, query


def test_cancel_before_delivery_and_retry_only_when_failed(api: LiveApi) -> None:
    message_id = submit(api, dossier_for("POVO", SCHOOL_A, seed=44)).json()["message"]["message_id"]
    retry = api.post(f"outbox/messages/{message_id}/retry", SCHOOL_A)
    assert retry.status_code == 409 and retry.json()["code"] == "OSO-E605"
    # the status it is in, not the title again (an integrator's walkthrough)
    assert retry.json()["detail"] == "cannot retry a message in status queued"
    cancel = api.post(f"outbox/messages/{message_id}/cancel", SCHOOL_A)
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    late = api.post(f"outbox/messages/{message_id}/retry", SCHOOL_A)
    assert late.json()["detail"] == "cannot retry a message in status cancelled"
    shown = api.get(f"outbox/messages/{message_id}", SCHOOL_A).json()
    assert [e["status"] for e in shown["events"]] == ["queued", "cancelled"]
    receipt = api.get(f"receipts/{message_id}", SCHOOL_A)
    assert receipt.status_code == 404 and receipt.json()["code"] == "OSO-E615"


def test_inbox_fetch_as_xml_json_and_chosen_categories_then_ack(api: LiveApi) -> None:
    from oso_gateway.dossier.validate import validate_dossier

    message_id = api.inbox_ids[SCHOOL_B]
    listed = api.get("inbox/messages", SCHOOL_B).json()["items"][0]
    assert set(listed) >= {"message_id", "counterpart_school", "created_at", "status", "categories"}
    assert "leerling" in listed["categories"] and listed["size_bytes"] > 0
    xml = api.get(f"inbox/messages/{message_id}/dossier", SCHOOL_B)
    assert xml.status_code == 200 and xml.headers["Content-Type"].startswith("application/xml")
    from datetime import UTC, datetime

    assert validate_dossier(xml.content, now=datetime.now(UTC)).valid
    part = api.get(f"inbox/messages/{message_id}/dossier?categories=verzuim", SCHOOL_B)
    keys = present_keys(etree.fromstring(part.content))
    assert set(keys) <= {"metadata", "school", "leerling", "verzuim"}
    assert "schoolloopbaan" in present_keys(etree.fromstring(xml.content))
    as_json = api.get(f"inbox/messages/{message_id}/dossier?format=json", SCHOOL_B).json()
    assert as_json["dossier"]["huidigeschool"]["brincode"] == "00YY"
    bad = api.get(f"inbox/messages/{message_id}/dossier?categories=verzuim,nosuch", SCHOOL_B)
    assert bad.status_code == 400 and bad.json()["code"] == "OSO-E612"
    # a miscased key, or a space after the comma, is E612 naming the key as well (was E606)
    for query in ("Verzuim", "verzuim,%20Nosuch"):
        odd = api.get(f"inbox/messages/{message_id}/dossier?categories={query}", SCHOOL_B)
        assert (odd.status_code, odd.json()["code"]) == (400, "OSO-E612"), query
    spaced = api.get(
        f"inbox/messages/{message_id}/dossier?categories=verzuim,%20leerling", SCHOOL_B
    )
    assert spaced.status_code == 200  # the keys are stripped, as the CLI strips them
    [unknown] = bad.json()["errors"]  # names the key it does not know, and the known ones
    assert unknown["location"] == "categories" and "'nosuch'" in unknown["message"]
    assert "verzuim" in unknown["message"].split("known:")[1]
    acked = api.post(f"inbox/messages/{message_id}/ack", SCHOOL_B)
    assert acked.status_code == 200 and acked.json()["status"] == "fetched"
    assert api.post(f"inbox/messages/{message_id}/ack", SCHOOL_B).json()["status"] == "fetched"
    fetched = api.get("inbox/messages?status=fetched", SCHOOL_B).json()["items"]
    assert [i["message_id"] for i in fetched] == [message_id]


def test_decline_keeps_the_record_and_drops_the_content(api: LiveApi) -> None:
    message_id = api.inbox_ids[SCHOOL_A]
    bad = api.post(f"inbox/messages/{message_id}/decline", SCHOOL_A, json={"reason": ""})
    for control in ("\u0000", "a\u001bb", "x\u007f", "x\u0085", "a\u202eb"):  # no controls
        refused = api.post(
            f"inbox/messages/{message_id}/decline", SCHOOL_A, json={"reason": control}
        )
        assert (refused.status_code, refused.json()["code"]) == (400, "OSO-E606"), control
        assert "control" in refused.json()["errors"][0]["message"]  # words, not a regex
    assert bad.status_code == 400 and bad.json()["code"] == "OSO-E606"
    assert bad.json()["errors"][0]["location"] == "reason"
    answer = api.post(
        f"inbox/messages/{message_id}/decline", SCHOOL_A, json={"reason": "pupil did not enrol"}
    )
    assert answer.status_code == 200 and answer.json()["status"] == "declined"
    gone = api.get(f"inbox/messages/{message_id}/dossier", SCHOOL_A)
    assert gone.status_code == 410 and gone.json()["code"] == "OSO-E611"
    shown = api.get(f"inbox/messages/{message_id}", SCHOOL_A).json()
    assert shown["decline_reason"] == "pupil did not enrol"
    ack = api.post(f"inbox/messages/{message_id}/ack", SCHOOL_A)
    assert (ack.status_code, ack.json()["code"]) == (409, "OSO-E605")
    assert ack.json()["detail"] == "cannot ack a message in status declined"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"<dossier", "application/xml", 400, "OSO-E101"),  # malformed XML
        (b"<x/>", "application/xml", 400, "OSO-E102"),  # not a dossier
        (b"{}", "application/json", 415, "OSO-E608"),
    ],
)
def test_bad_submissions_get_a_problem_and_store_nothing(
    api: LiveApi, body: bytes, content_type: str, status: int, code: str
) -> None:
    before = outbox_count(api)
    answer = api.post(
        "outbox/messages",
        SCHOOL_A,
        params={"recipient": "01AB00"},
        data=body,
        headers={"Content-Type": content_type},
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["code"] == code
    if code in ("OSO-E101", "OSO-E102"):
        assert answer.json()["errors"], "the rule codes and their locations"
    if code == "OSO-E608":
        assert "application/xml" in answer.json()["detail"]  # says what it takes
    assert outbox_count(api) == before


def test_invalid_dossier_lists_rule_codes_and_locations_without_values(api: LiveApi) -> None:
    data = dossier_for("POVO", SCHOOL_A, seed=51)
    root = etree.fromstring(data)
    ns = {"d": root.nsmap[None]}
    bsn = root.xpath("//d:leerling/d:bsn", namespaces=ns)[0]
    bsn.text = "123456789"  # fails the 11-proef
    answer = submit(api, etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    assert answer.status_code == 400 and answer.json()["code"] == "OSO-E103"
    errors = answer.json()["errors"]
    assert any(e["location"].endswith("/bsn") for e in errors)
    assert "123456789" not in answer.text


def test_unknown_recipient_school_and_malformed_parameters(api: LiveApi) -> None:
    before = outbox_count(api)
    unknown = api.post(
        "outbox/messages",
        SCHOOL_A,
        params={"recipient": "99ZZ00"},
        data=dossier_for("POVO", SCHOOL_A, seed=52),
        headers=XML,
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "OSO-E430"
    malformed = api.post(
        "outbox/messages",
        SCHOOL_A,
        params={"recipient": "nope"},
        data=dossier_for("POVO", SCHOOL_A, seed=52),
        headers=XML,
    )
    assert malformed.status_code == 400 and malformed.json()["errors"][0]["location"] == "recipient"
    assert outbox_count(api) == before
    not_json = api.post(
        f"inbox/messages/{api.inbox_ids[SCHOOL_B]}/decline",
        SCHOOL_B,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400 and not_json.json()["code"] == "OSO-E606"


def test_missing_wrong_and_revoked_credentials_are_refused(api: LiveApi) -> None:
    from datetime import UTC, datetime

    url = api.url + "inbox/messages"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401 and missing.json()["code"] == "OSO-E600"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    client_id = api.credentials[SCHOOL_A].split()[1].split(".")[0]
    wrong = requests.get(
        url, headers={"Authorization": f"Bearer {client_id}.{'x' * 43}"}, timeout=10
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "OSO-E601"
    assert api.clients is not None
    record, credential = api.clients.add("temporary", [SCHOOL_A], now=datetime.now(UTC))
    headers = {"Authorization": f"Bearer {credential}"}
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    api.clients.revoke(record.client_id, now=datetime.now(UTC))
    revoked = requests.get(url, headers=headers, timeout=10)  # immediately
    assert revoked.status_code == 401 and revoked.json()["code"] == "OSO-E601"


def test_every_call_is_in_the_transfer_log_with_the_client_id_and_no_pupil_data(
    api: LiveApi,
) -> None:
    api.get("inbox/messages", SCHOOL_B)
    entries = [e.event for e in api.vendor.store.log_entries()]
    calls = [e for e in entries if e.get("kind") == "api"]
    client_b = api.credentials[SCHOOL_B].split()[1].split(".")[0]
    assert any(
        e["api_client"] == client_b and e["operation"] == "inbox.list_inbox"
        and e["http_status"] == "200"
        for e in calls if "api_client" in e
    )  # fmt: skip
    assert any(e.get("http_status") == "401" for e in calls)
    text = json.dumps(entries)
    root = etree.fromstring(dossier_for("POVO", SCHOOL_A, seed=31))
    ns = {"d": root.nsmap[None]}
    for name in ("achternaam", "bsn", "geboortedatum"):
        value = root.xpath(f"string(//d:leerling/d:{name})", namespaces=ns)
        assert value and value not in text
    assert "pupil did not enrol" not in text
    secret = api.credentials[SCHOOL_B].split(".")[1]
    assert secret not in text


def test_health_and_readiness_need_no_credential(api: LiveApi) -> None:
    assert requests.get(api.url + "health", timeout=10).json() == {"status": "ok"}
    assert requests.get(api.url + "ready", timeout=10).json() == {"status": "ready"}


def test_the_document_and_its_docs_page_are_served_from_the_gateway(api: LiveApi) -> None:
    spec = requests.get(api.url + "openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.1")
    page = requests.get(api.url + "swagger", timeout=10)
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "https://" not in page.text and "http://" not in page.text.replace("http://www.w3", "")
    asset = requests.get(api.url + "swagger/js/swagger-ui-bundle.js", timeout=10)
    assert asset.status_code == 200 and len(asset.content) > 100_000
    # with a trailing slash it is sent on to the page (it answered 401: a LAS walkthrough)
    slash = requests.get(api.url + "swagger/", timeout=10, allow_redirects=False)
    assert slash.status_code == 308 and slash.headers["Location"].endswith("/api/v1/swagger")
    assert "swagger-ui" in requests.get(api.url + "swagger/", timeout=10).text
