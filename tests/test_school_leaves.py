"""A school leaves this gateway (removed from the directory: another vendor, a new BRIN, a
merger). Its API credential stops working at the next request after the live reload (OSO-E619),
a credential of several schools acts for the served ones only, `directory check` names what is
left behind (`--json`), and the school's keys can still be rotated while its data is stored.
Real components: the live school API of three dev gateways (tests/api_support.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_support import SCHOOL_A, SCHOOL_B, LiveApi, dossier_for, live_api
from click.testing import CliRunner
from leaving_support import replace_file, without_school

from oso_gateway.cli import main
from oso_gateway.runtime import trust_reloader
from oso_gateway.store.operators import OperatorStore
from oso_gateway.transfer.auditlog import LogFilter, select_events

pytestmark = pytest.mark.integration


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LiveApi]:
    yield from live_api(tmp_path)


def _reload(api: LiveApi) -> None:
    assert trust_reloader(api.vendor).reload() is True


def _ids(answer: object) -> set[str]:
    return {item["message_id"] for item in answer.json()["items"]}  # type: ignore[attr-defined]


def test_a_removed_schools_credential_is_refused_after_the_live_reload(
    api: LiveApi, caplog: pytest.LogCaptureFixture
) -> None:
    assert api.clients is not None
    _record, both = api.clients.add("LAS both", [SCHOOL_A, SCHOOL_B], now=datetime.now(UTC))
    api.credentials["both"] = f"Bearer {both}"
    assert api.get("outbox/messages", SCHOOL_A).status_code == 200
    keyed = {"Content-Type": "application/xml", "Idempotency-Key": "k-leaves-1"}
    body = dossier_for("POVO", SCHOOL_A, seed=4711)
    first = api.post("outbox/messages", "both", params={"recipient": "01AB00"}, data=body,
                     headers=keyed)  # fmt: skip
    assert first.status_code in (200, 201, 202), first.text
    directory = api.vendor.settings.require_directory_file()
    before = without_school(directory, SCHOOL_A)
    # the running gateway still has the old directory: nothing changes before the reload
    assert api.get("outbox/messages", SCHOOL_A).status_code == 200
    _reload(api)

    with caplog.at_level("WARNING"):
        for path in ("outbox/messages", "inbox/messages", "requests"):
            refused = api.get(path, SCHOOL_A)
            assert refused.status_code == 403, (path, refused.text)
            problem = refused.json()
            assert problem["code"] == "OSO-E619"
            assert SCHOOL_A in problem["detail"]
    assert f"none of its schools ({SCHOOL_A}) is served" in caplog.text
    # a credential of the other school is untouched
    assert api.get("inbox/messages", SCHOOL_B).status_code == 200
    # a credential of both acts for the served one only
    listed = api.get("inbox/messages", "both")
    assert listed.status_code == 200
    assert _ids(listed) == {api.inbox_ids[SCHOOL_B]}
    assert api.get(f"inbox/messages/{api.inbox_ids[SCHOOL_A]}", "both").status_code == 404
    assert api.get(f"outbox/messages/{api.outbox_ids[SCHOOL_A]}", "both").status_code == 404
    # its submit replayed with the same key is out of scope too (it answered the message: a
    # review)
    again = api.post("outbox/messages", "both", params={"recipient": "01AB00"}, data=body,
                     headers=keyed)  # fmt: skip
    assert again.status_code == 404 and again.json()["code"] == "OSO-E602", again.text
    submit = api.post(
        "outbox/messages",
        "both",
        params={"recipient": "01AB00"},
        data=dossier_for("POVO", SCHOOL_A, seed=12),
        headers={"Content-Type": "application/xml"},
    )
    # refused, not queued: the directory no longer lets this gateway send for it
    assert submit.status_code == 400 and submit.json()["code"] == "OSO-E463", submit.text
    # every refusal is in the transfer log (client id and status, no pupil data)
    events = select_events(api.vendor.store, LogFilter(kind="api"))
    assert any(e.event.get("http_status") == "403" for e in events)

    replace_file(directory, before)  # the school comes back
    _reload(api)
    assert api.get("outbox/messages", SCHOOL_A).status_code == 200
    assert _ids(api.get("inbox/messages", "both")) == set(api.inbox_ids.values())


def _check(api: LiveApi) -> tuple[int, dict[str, object]]:
    config = api.vendor.settings.config_file
    assert config is not None
    result = CliRunner().invoke(main, ["directory", "check", "--config", str(config), "--json"])
    return result.exit_code, json.loads(result.output)


def _kinds(report: dict[str, object]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in report["problems"]:  # type: ignore[attr-defined]
        found.setdefault(problem["kind"], []).append(problem["text"])
    return found


def test_directory_check_names_what_a_removed_school_left_behind(api: LiveApi) -> None:
    from console_support import PASSWORD
    from gateway_pair import Clock

    from oso_gateway.web import auth

    config = str(api.vendor.settings.config_file)
    runner = CliRunner()
    OperatorStore(api.vendor.store.engine).add(
        "noord",
        role="viewer",
        password_hash=auth.hash_password(PASSWORD),
        now=Clock()(),
        schools=(SCHOOL_A,),
    )
    rotated = runner.invoke(main, ["keys", "rotate", "--school", SCHOOL_A, "--config", config])
    assert rotated.exit_code == 0, rotated.output
    _code, report = _check(api)
    unserved = {k for k in _kinds(report) if k.endswith("_unserved")}
    assert unserved == set(), report  # every school still served: nothing of this kind

    without_school(api.vendor.settings.require_directory_file(), SCHOOL_A)
    code, report = _check(api)
    assert code == 1 and report["ok"] is False
    kinds = _kinds(report)
    [client] = kinds["api_client_unserved"]
    a_client = next(c for c in api.clients.list() if c.schools == (SCHOOL_A,))  # type: ignore[union-attr]
    assert a_client.client_id in client and SCHOOL_A in client
    assert SCHOOL_B not in " ".join(kinds["api_client_unserved"])  # B's client is fine
    assert "noord" in kinds["operator_unserved"][0]
    assert SCHOOL_A in kinds["storage_key_unserved"][0]
    assert SCHOOL_A in kinds["stored_data_unserved"][0]
    codes = {p["code"] for p in report["problems"] if p["kind"] in ("api_client_unserved",)}  # type: ignore[attr-defined]
    assert codes == {"OSO-E619"}
    # the text form says the same, exit 1
    plain = runner.invoke(main, ["directory", "check", "--config", config])
    assert plain.exit_code == 1 and a_client.client_id in plain.output

    # the school's key can still be rotated while its data is stored here (it was E463) ...
    again = runner.invoke(main, ["keys", "rotate", "--school", SCHOOL_A, "--config", config])
    assert again.exit_code == 0, again.output
    # ... but a school of which nothing is stored, and that is not ours, is still refused
    other = runner.invoke(main, ["keys", "rotate", "--school", "99ZZ00", "--config", config])
    assert other.exit_code == 2 and "OSO-E463" in other.output

    listed = runner.invoke(main, ["operator", "list", "--config", config])
    assert f"schools {SCHOOL_A}" in listed.output  # which operators to remove
    # revoking the client and removing the operator clears those problems
    assert (
        runner.invoke(
            main, ["api-client", "revoke", a_client.client_id, "--config", config]
        ).exit_code
        == 0
    )
    assert runner.invoke(main, ["operator", "remove", "noord", "--config", config]).exit_code == 0
    _code, report = _check(api)
    kinds = _kinds(report)
    assert "api_client_unserved" not in kinds and "operator_unserved" not in kinds
    assert "stored_data_unserved" in kinds  # kept until its retention ends
