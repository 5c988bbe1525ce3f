"""Operators scoped to schools (`operator add --school`): the console shows them only their
schools' transfers; another school's transfer answers 404, as a missing one does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from console_support import PASSWORD, cheap_hasher, console_app, login
from gateway_pair import Clock, sqlite_store
from store_support import import_received

from oso_gateway.store import Store
from oso_gateway.store.operators import OperatorStore
from oso_gateway.web import auth

_ROW = re.compile(r'href="/console/transfers/(\d+)"')


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    cheap_hasher(monkeypatch)
    the_store = sqlite_store(tmp_path / "gw.sqlite")
    operators = OperatorStore(the_store.engine)
    for name, schools in (("all-schools", None), ("only-02cd", ("02CD00",))):
        operators.add(
            name,
            role="admin",
            password_hash=auth.hash_password(PASSWORD),
            now=Clock()(),
            schools=schools,
        )
    yield the_store
    the_store.engine.dispose()


def _outbound(store: Store, n: int, *, ours: str, fail: bool = False) -> int:
    record = store.enqueue_outbound(
        message_id=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        action="urn:oso:deliver",
        payload=b"<x/>",
        payload_digest="a" * 64,
        now=Clock()(),
        our_school=ours,
        counterpart_school="01AB00",
    )
    pk: int = record.pk  # type: ignore[union-attr]
    if fail:
        store.mark_failed(pk, error_code="OSO-E431", now=Clock()())
    return pk


def test_a_scoped_operator_sees_only_its_schools_transfers(tmp_path: Path, store: Store) -> None:
    mine = _outbound(store, 1, ours="02CD00", fail=True)
    theirs = _outbound(store, 2, ours="03EF00", fail=True)
    scoped = console_app(tmp_path, store).test_client()
    assert login(scoped, "only-02cd").status_code == 302
    listed = {int(pk) for pk in _ROW.findall(scoped.get("/console/transfers").get_data(True))}
    assert listed == {mine}
    quarantined = scoped.get("/console/quarantine").get_data(as_text=True)
    assert f"/console/transfers/{theirs}" not in quarantined
    assert scoped.get(f"/console/transfers/{mine}").status_code == 200
    assert scoped.get(f"/console/transfers/{theirs}").status_code == 404
    everyone = console_app(tmp_path / "b", store).test_client()
    assert login(everyone, "all-schools").status_code == 302
    listed = {int(pk) for pk in _ROW.findall(everyone.get("/console/transfers").get_data(True))}
    assert listed == {mine, theirs}


def test_operator_add_takes_schools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oso_gateway.cli import main
    from oso_gateway.transfer.demo import VENDOR_OIN, setup_dev_gateways

    cheap_hasher(monkeypatch)
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    result = CliRunner().invoke(
        main,
        ["--config", config, "operator", "add", "noord", "--generate", "--school", "02cd00"],
    )
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(
        main, ["--config", config, "operator", "add", "x", "--generate", "--school", "02CD"]
    )
    assert bad.exit_code == 2
    from oso_gateway.config import load_settings
    from oso_gateway.store import create_store_engine

    engine = create_store_engine(load_settings(Path(config), {}).database_url)
    record = OperatorStore(engine).get("noord")
    engine.dispose()
    assert record is not None and record.schools == ("02CD00",)


def _inbound(store: Store, *, ours: str, signer: str) -> int:
    result = import_received(
        store,
        now=Clock()(),
        our_school=ours,
        signer_oin=signer,
        message_id="urn:uuid:7e57e57e-0000-4000-8000-000000000001",  # the same id, twice
    )
    return result.message.pk


def test_a_scoped_operator_sees_no_log_event_of_another_schools_message_with_the_same_id(
    tmp_path: Path, store: Store
) -> None:
    """A MessageID is unique per sender only: two senders may use one id for messages to two
    schools of this gateway. The transfer page listed the log events of both (found by a
    helper's attack); a scoped operator now sees those of its own school's message only."""
    mine = _inbound(store, ours="02CD00", signer="00000001000000000001")
    _inbound(store, ours="03EF00", signer="00000001000000000002")
    scoped = console_app(tmp_path, store).test_client()
    assert login(scoped, "only-02cd").status_code == 302
    page = scoped.get(f"/console/transfers/{mine}").get_data(as_text=True)
    assert "02CD" in page
    assert "03EF" not in page and "00000001000000000002" not in page
    everyone = console_app(tmp_path / "b", store).test_client()
    assert login(everyone, "all-schools").status_code == 302
    assert "03EF" in everyone.get(f"/console/transfers/{mine}").get_data(as_text=True)
