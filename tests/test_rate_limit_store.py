"""Rate limits counted in the database: every process and machine on one database shares them.

The school API's per-client limit and the console's login limits used Flask-Limiter's in-memory
storage, so each process (``serve --workers N``) allowed the whole limit. Two apps on one store
stand here for two processes: each has its own Limiter and would have counted alone.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from console_support import ADMIN_NAME, add_operator, cheap_hasher, console_app, login
from gateway_pair import Clock, sqlite_store
from sqlalchemy import Engine

from oso_gateway.config import ApiSettings
from oso_gateway.errors import StoreUnavailable
from oso_gateway.runtime import build_services
from oso_gateway.store import RateLimitCounters
from oso_gateway.store.api_clients import ApiClientStore
from oso_gateway.transfer.apiclients import ApiClients
from oso_gateway.transfer.demo import VENDOR_OIN, setup_dev_gateways
from oso_gateway.transfer.services import GatewayServices
from oso_gateway.web.api import create_api_app
from oso_gateway.web.ratelimit import DatabaseStorage

# --- the counters ---------------------------------------------------------------------------


def test_a_window_counts_up_and_a_new_window_starts_from_zero(engine: Engine) -> None:
    counters = RateLimitCounters(engine)
    assert [counters.incr("api:c-1", window=60, amount=1, now=1000.0) for _ in range(3)] == [
        1,
        2,
        3,
    ]
    assert counters.get("api:c-1", now=1059.0) == 3
    assert counters.window_ends("api:c-1", now=1059.0) == 1060.0
    assert counters.get("api:c-2", now=1000.0) == 0  # another key counts alone
    # the window has ended: it reads as empty, and the next request opens a new one
    assert counters.get("api:c-1", now=1060.0) == 0
    assert counters.window_ends("api:c-1", now=1060.0) == 1060.0
    assert counters.incr("api:c-1", window=60, amount=2, now=1061.0) == 2
    assert counters.window_ends("api:c-1", now=1061.0) == 1121.0


def test_ended_windows_are_deleted_when_a_new_key_opens_one(engine: Engine) -> None:
    from sqlalchemy import func, select

    from oso_gateway.store.rate_limits import RateLimitCounter

    counters = RateLimitCounters(engine)
    for i in range(5):
        counters.incr(f"ip:10.0.0.{i}", window=60, amount=1, now=1000.0)
    counters.incr("ip:10.0.0.99", window=60, amount=1, now=2000.0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RateLimitCounter)).scalar() == 1


def test_clear_and_reset(engine: Engine) -> None:
    counters = RateLimitCounters(engine)
    counters.incr("a", window=60, amount=4, now=0.0)
    counters.incr("b", window=60, amount=1, now=0.0)
    counters.clear("a")
    assert counters.get("a", now=1.0) == 0 and counters.get("b", now=1.0) == 1
    assert counters.reset() == 1
    assert counters.get("b", now=1.0) == 0
    assert counters.reachable()


def test_parallel_counting_loses_no_request(engine: Engine) -> None:
    """Eight threads (each with its own connections, as processes would have) count one key at
    once, some opening its window together: every request is counted exactly once."""
    counters = RateLimitCounters(engine)
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def hit() -> None:
        try:
            start.wait()
            for _ in range(25):
                results.append(counters.incr("api:shared", window=3600, amount=1, now=5000.0))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == list(range(1, 201))  # each count handed out once
    assert counters.get("api:shared", now=5000.0) == 200


def test_only_a_hash_of_the_key_is_stored(tmp_path: Path) -> None:
    """A login's account-name key is whatever the visitor typed: the file never holds it."""
    from oso_gateway.store import create_store_engine, upgrade

    path = tmp_path / "gateway.sqlite"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    RateLimitCounters(engine).incr("account:Jan Jansen 12-03-2015", window=60, amount=1, now=1.0)
    engine.dispose()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"Jansen" not in stored


def test_an_unreachable_database_fails_the_count() -> None:
    """No request passes uncounted: the count fails with the store's code (nothing listens on
    port 1)."""
    from oso_gateway.store import create_store_engine

    engine = create_store_engine("postgresql+psycopg://oso@127.0.0.1:1/none")
    counters = RateLimitCounters(engine)
    with pytest.raises(StoreUnavailable):
        counters.incr("api:c-1", window=60, amount=1, now=1.0)
    assert not counters.reachable()
    storage = DatabaseStorage(counters=counters)
    assert not storage.check()


def test_the_storage_needs_the_counters() -> None:
    with pytest.raises(ValueError, match="counters"):
        DatabaseStorage()


# --- shared by two apps on one database (two processes) ----------------------------------------


@pytest.fixture
def vendor(tmp_path: Path) -> Iterator[tuple[Any, GatewayServices]]:
    settings = setup_dev_gateways(tmp_path)[VENDOR_OIN].settings
    settings = dataclasses.replace(
        settings,
        api=ApiSettings(rate_limit="4/minute"),
    )
    services = build_services(settings)
    yield settings, services
    services.close()


def test_two_api_processes_share_one_clients_limit(vendor: Any) -> None:
    settings, services = vendor
    clients = ApiClients(ApiClientStore(services.store.engine), served=services.schools)
    _record, credential = clients.add("LAS", ["02CD00"], now=datetime.now(UTC))
    first = create_api_app(settings, services=services).test_client()
    second = create_api_app(settings, services=services).test_client()
    headers = {"Authorization": f"Bearer {credential}"}
    codes = [
        (first if i % 2 else second).get("/api/v1/inbox/messages", headers=headers).status_code
        for i in range(6)
    ]
    # in memory, each app would have allowed 4 (eight in all): together they allow 4
    assert codes == [200, 200, 200, 200, 429, 429]
    answer = first.get("/api/v1/inbox/messages", headers=headers)
    assert answer.get_json()["code"] == "OSO-E609"
    assert answer.headers["X-RateLimit-Limit"] == "4"
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(answer.headers["Retry-After"]) <= 60
    # another client of the same gateway has a limit of its own
    _record, other = clients.add("LAS 2", ["02CD00"], now=datetime.now(UTC))
    ok = second.get("/api/v1/inbox/messages", headers={"Authorization": f"Bearer {other}"})
    assert ok.status_code == 200 and ok.headers["X-RateLimit-Remaining"] == "3"


def test_two_console_processes_share_the_login_limit_per_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cheap_hasher(monkeypatch)
    store = sqlite_store(tmp_path / "gw.sqlite")
    try:
        add_operator(store, ADMIN_NAME, "admin")
        apps = [
            console_app(
                tmp_path / f"p{i}", store, clock=Clock(), login_limit_per_address="3/minute"
            )
            for i in range(2)
        ]
        codes = [
            login(
                apps[i % 2].test_client(), f"guess{i}", "wrong-password-x", address="192.0.2.7"
            ).status_code
            for i in range(3)
        ]
        assert codes == [401, 401, 401]
        # the fourth from that address, to either process: over the limit (in memory, each
        # process would have let three more through)
        assert login(apps[1].test_client(), ADMIN_NAME, address="192.0.2.7").status_code == 429
        assert login(apps[0].test_client(), ADMIN_NAME, address="192.0.2.7").status_code == 429
        assert login(apps[0].test_client(), ADMIN_NAME, address="192.0.2.8").status_code == 302
    finally:
        store.engine.dispose()


def test_failed_authentications_are_limited_per_address(vendor: Any) -> None:
    """Requests without a valid credential passed Flask-Limiter uncounted (its limit is per
    authenticated client), so guesses were unbounded (found by a helper's attack). Over the
    limit a failure is answered 429 and not logged; a valid credential from that same address
    still passes (behind a proxy every client shares it: a review of the first version found
    one tenant could lock all out)."""
    settings, services = vendor
    settings = dataclasses.replace(
        settings, api=dataclasses.replace(settings.api, failed_auth_limit="3/minute")
    )
    clients = ApiClients(ApiClientStore(services.store.engine), served=services.schools)
    _record, credential = clients.add("LAS", ["02CD00"], now=datetime.now(UTC))
    app = create_api_app(settings, services=services)
    first, second = app.test_client(), create_api_app(settings, services=services).test_client()
    guess = {"Authorization": "Bearer c-0123456789abcdef." + "A" * 43}
    proxy = {"REMOTE_ADDR": "192.0.2.9"}
    logged_before = len(services.store.log_entries())
    codes = [
        (first if i % 2 else second)
        .get("/api/v1/inbox/messages", headers=guess, environ_base=proxy)
        .status_code
        for i in range(6)
    ]
    assert codes == [401, 401, 401, 429, 429, 429]
    refused = first.get("/api/v1/inbox/messages", headers=guess, environ_base=proxy)
    assert refused.get_json()["code"] == "OSO-E609"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert len(services.store.log_entries()) == logged_before + 3  # the 401s, not the 429s
    valid = first.get(
        "/api/v1/inbox/messages",
        headers={"Authorization": f"Bearer {credential}"},
        environ_base=proxy,
    )
    assert valid.status_code == 200
    # another /64 is counted apart; one /64 is one client address
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"):
        answer = first.get(
            "/api/v1/inbox/messages", headers=guess, environ_base={"REMOTE_ADDR": host}
        )
        assert answer.status_code == 401, host
    assert (
        first.get(
            "/api/v1/inbox/messages", headers=guess, environ_base={"REMOTE_ADDR": "2001:db8:1:2::9"}
        ).status_code
        == 429
    )
    assert (
        first.get(
            "/api/v1/inbox/messages", headers=guess, environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"}
        ).status_code
        == 401
    )


def test_address_keys_group_ipv6_by_64() -> None:
    from oso_gateway.web.ratelimit import address_key

    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("not an address") == "not an address"


def test_a_clients_limit_holds_over_the_whole_api(vendor: Any) -> None:
    """The limit was per route: with 4/minute a client had 4 on each of inbox, outbox and
    requests (found by a review)."""
    settings, services = vendor
    clients = ApiClients(ApiClientStore(services.store.engine), served=services.schools)
    _record, credential = clients.add("LAS", ["02CD00"], now=datetime.now(UTC))
    client = create_api_app(settings, services=services).test_client()
    headers = {"Authorization": f"Bearer {credential}"}
    paths = ["inbox/messages", "outbox/messages", "requests"] * 2
    codes = [client.get(f"/api/v1/{path}", headers=headers).status_code for path in paths]
    assert codes == [200, 200, 200, 200, 429, 429]


def test_a_failed_auth_limit_that_does_not_parse_is_a_configuration_error(tmp_path: Path) -> None:
    from oso_gateway.config import load_settings
    from oso_gateway.errors import ConfigError

    config = tmp_path / "gateway.toml"
    config.write_text('[api]\nfailed_auth_limit = "lots"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config, {})
    assert "failed_auth_limit" in info.value.detail
