"""Body size and rate limits of the school API (an app with small limits, in-process)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from oso_gateway.config import ApiSettings, LimitSettings
from oso_gateway.runtime import build_services
from oso_gateway.store import models as m
from oso_gateway.store.api_clients import ApiClientStore
from oso_gateway.transfer.apiclients import ApiClients
from oso_gateway.transfer.demo import VENDOR_OIN, setup_dev_gateways
from oso_gateway.transfer.services import GatewayServices
from oso_gateway.web.api import create_api_app


@pytest.fixture
def vendor(tmp_path: Path) -> Iterator[tuple[Any, GatewayServices, str]]:
    settings = setup_dev_gateways(tmp_path)[VENDOR_OIN].settings
    settings = dataclasses.replace(
        settings,
        limits=LimitSettings(max_request_bytes=4096),
        api=ApiSettings(rate_limit="5/minute"),
    )
    services = build_services(settings)
    clients = ApiClients(ApiClientStore(services.store.engine), served=services.schools)
    _record, credential = clients.add("LAS", ["02CD00"], now=datetime.now(UTC))
    yield create_api_app(settings, services=services), services, credential
    services.close()


def test_an_oversize_body_is_refused_with_a_problem_and_stores_nothing(vendor: Any) -> None:
    app, services, credential = vendor
    answer = app.test_client().post(
        "/api/v1/outbox/messages?recipient=01AB00",
        data=b"<dossier>" + b" " * 10_000 + b"</dossier>",
        headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/xml"},
    )
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.get_json()["code"] == "OSO-E607"
    assert services.store.list_messages(direction=m.OUT) == []


def test_a_client_over_its_rate_limit_gets_429_with_retry_after(vendor: Any) -> None:
    app, services, credential = vendor
    client = app.test_client()
    headers = {"Authorization": f"Bearer {credential}"}
    codes = [client.get("/api/v1/inbox/messages", headers=headers).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    answer = client.get("/api/v1/inbox/messages", headers=headers)
    assert answer.get_json()["code"] == "OSO-E609" and int(answer.headers["Retry-After"]) > 0
    # the calls it was refused do not grow the transfer log (they were most of a busy log)
    calls = [e.event for e in services.store.log_entries() if e.event["kind"] == "api"]
    assert [c["http_status"] for c in calls] == ["200"] * 5
    # health is not limited
    assert all(client.get("/api/v1/health").status_code == 200 for _ in range(7))


def test_unknown_endpoint_and_method_are_problems(vendor: Any) -> None:
    app, _services, credential = vendor
    client = app.test_client()
    headers = {"Authorization": f"Bearer {credential}"}
    missing = client.get("/api/v1/nothing-here", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["code"] == "OSO-E613"
    wrong = client.delete("/api/v1/inbox/messages", headers=headers)
    assert wrong.status_code == 405 and wrong.get_json()["code"] == "OSO-E614"


def test_readiness_answers_503_with_a_problem_when_not_ready(vendor: Any) -> None:
    app, services, _credential = vendor
    services.receiver.config = dataclasses.replace(services.receiver.config, served=())
    answer = app.test_client().get("/api/v1/ready")
    assert answer.status_code == 503 and answer.get_json()["code"] == "OSO-E618"


def test_an_unexpected_failure_is_a_500_problem_without_details(vendor: Any) -> None:
    app, services, credential = vendor

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internal state")

    services.inbox.list = boom  # type: ignore[method-assign]
    answer = app.test_client().get(
        "/api/v1/inbox/messages", headers={"Authorization": f"Bearer {credential}"}
    )
    assert answer.status_code == 500 and answer.get_json()["code"] == "OSO-E617"
    assert "secret" not in answer.get_data(as_text=True)
