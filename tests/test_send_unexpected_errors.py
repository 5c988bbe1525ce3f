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
