"""The outbox survives unexpected exceptions (REVIEW-9): a message ends retrying or failed with a
recorded code, and ``run_forever`` keeps running."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from gateway_pair import RECEIVER_SCHOOL, GatewayPair

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.store import models as m
from oso_gateway.store.repository import MessageRecord
from oso_gateway.transfer.outbox import RunStats
from oso_gateway.transfer.send import TransportResponse, prepare_dossier


def _enqueue(pair: GatewayPair, seed: int = 1) -> str:
    prepared = prepare_dossier(
        generate_dossier(overstap="POVO", seed=seed, now=pair.clock()),
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=pair.clock(),
    )
    pair.outbox.enqueue(prepared)
    return prepared.message_id


def _record(pair: GatewayPair, message_id: str) -> MessageRecord:
    record = pair.sender_store.find_message(m.OUT, message_id)
    assert record is not None
    return record


def test_a_transport_that_raises_unexpectedly_leaves_the_message_retrying(
    pair: GatewayPair,
) -> None:
    def broken(url: str, data: bytes, answer: TransportResponse) -> TransportResponse:
        raise RuntimeError("a bug in the transport")

    pair.transport.intercept = broken
    message_id = _enqueue(pair)
    stats = pair.outbox.run_once()
    assert stats.retrying == 1
    record = _record(pair, message_id)
    assert record.status == m.RETRYING and record.last_error_code == "OSO-E461"


def test_a_reply_that_breaks_the_receipt_reader_fails_the_message_as_receipt_invalid(
    pair: GatewayPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oso_gateway.transfer import wire

    def explode(element: object) -> wire.Receipt:
        raise ValueError("a parser bug")

    monkeypatch.setattr(wire, "parse_receipt", explode)
    message_id = _enqueue(pair)
    assert pair.outbox.run_once().failed == 1
    record = _record(pair, message_id)
    assert record.status == m.FAILED and record.last_error_code == "OSO-E450"


def test_sealing_that_raises_unexpectedly_fails_the_message_with_an_internal_code(
    pair: GatewayPair,
) -> None:
    message_id = _enqueue(pair)
    pair.transport.down = True
    assert pair.outbox.run_once().retrying == 1
    pair.transport.down = False
    pair.clock.advance(timedelta(minutes=30))  # the first envelope expired: a reseal is due

    class BrokenDirectory:
        def lookup(self, brin: str, vestiging: str) -> object:
            raise KeyError(brin)

    pair.outbox.directory = BrokenDirectory()  # type: ignore[assignment]
    assert pair.outbox.run_once().failed == 1
    record = _record(pair, message_id)
    assert record.status == m.FAILED and record.last_error_code == "OSO-E500"


def test_run_forever_keeps_running_after_an_unexpected_exception(
    pair: GatewayPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    calls: list[int] = []
    real_run_once = pair.outbox.run_once

    def flaky_run_once(*, limit: int | None = None) -> RunStats:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("an unexpected bug")
        stop.set()
        return real_run_once(limit=limit)

    message_id = _enqueue(pair)
    monkeypatch.setattr(pair.outbox, "run_once", flaky_run_once)
    pair.outbox.run_forever(stop, poll_interval=0.0)
    assert len(calls) == 2
    assert _record(pair, message_id).status == m.DELIVERED


def test_a_line_break_in_a_peer_fault_does_not_reach_our_log_raw(
    pair: GatewayPair, caplog: pytest.LogCaptureFixture
) -> None:
    fault = (
        b"<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body>"
        b"<soap:Fault><faultcode>soap:Server</faultcode>"
        b"<faultstring>busy\n2026-11-30 ERROR forged log line</faultstring>"
        b"</soap:Fault></soap:Body></soap:Envelope>"
    )

    def faulting(url: str, data: bytes, answer: TransportResponse) -> TransportResponse:
        return TransportResponse(status=500, body=fault)

    pair.transport.intercept = faulting
    _enqueue(pair)
    with caplog.at_level(logging.INFO, logger="oso_gateway"):
        assert pair.outbox.run_once().retrying == 1
    assert "forged log line" in caplog.text  # it is logged, but escaped
    assert "\n2026-11-30 ERROR forged" not in caplog.text


def test_an_outage_is_logged_once_and_retried_with_growing_pauses(
    pair: GatewayPair, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Through a database outage every worker logged "outbox run failed" every second (an
    operator's drill): now the first failure and the recovery are logged, the runs between
    wait longer and longer (bounded)."""
    from oso_gateway.errors import StoreUnavailable
    from oso_gateway.transfer.outbox import MAX_FAILURE_PAUSE

    pauses: list[float] = []

    class Recording(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            pauses.append(timeout or 0.0)
            return self.is_set()

    stop = Recording()
    calls: list[int] = []
    real_run_once = pair.outbox.run_once

    def down_then_up(*, limit: int | None = None) -> RunStats:
        calls.append(1)
        if len(calls) <= 12:
            raise StoreUnavailable("database unavailable: OperationalError: connection refused")
        stop.set()
        return real_run_once(limit=limit)

    message_id = _enqueue(pair)
    monkeypatch.setattr(pair.outbox, "run_once", down_then_up)
    with caplog.at_level("WARNING", logger="oso_gateway.transfer.outbox"):
        pair.outbox.run_forever(stop, poll_interval=1.0)
    failed = [r for r in caplog.records if "outbox run failed" in r.getMessage()]
    assert len(failed) == 1 and "this gateway's database" in failed[0].getMessage()
    assert any("works again after 12 failed run(s)" in r.getMessage() for r in caplog.records)
    assert pauses[:3] == [2.0, 4.0, 8.0] and max(pauses) == MAX_FAILURE_PAUSE
    assert _record(pair, message_id).status == m.DELIVERED
