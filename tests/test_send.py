"""The sender: prepare, outbox attempts, retries, receipts — through the in-memory gateway pair."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from pathlib import Path

import pytest
from gateway_pair import (
    RECEIVER_OIN,
    RECEIVER_URL,
    SENDER_OIN,
    VENDOR_OIN,
    GatewayPair,
    dev_directory,
    make_pair,
    with_sending_school,
)
from lxml import etree
from sqlalchemy import func, select

from oso_gateway.config import RetrySettings
from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import OinMismatch, UnknownSchool
from oso_gateway.protocol import DOSSIER_NS
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.logchain import verify_chain
from oso_gateway.store.repository import MessageRecord
from oso_gateway.transfer.outbox import backoff_delay
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import (
    REQUEST_TTL,
    Expected,
    NotMandated,
    PreparedDossier,
    ReceiptMismatch,
    TransportResponse,
    prepare_dossier,
    verify_receipt,
)


def _prepare(pair: GatewayPair, *, seed: int = 1, brin: str | None = None) -> PreparedDossier:
    data = generate_dossier(overstap="POVO", seed=seed, now=pair.clock())
    if brin is not None:
        data = with_sending_school(data, brin)
    return pair.prepare(data)


def _queue(pair: GatewayPair, *, seed: int = 1, brin: str | None = None) -> PreparedDossier:
    prepared = _prepare(pair, seed=seed, brin=brin)
    pair.outbox.enqueue(prepared)
    return prepared


def _out(pair: GatewayPair, message_id: str) -> MessageRecord:
    record = pair.sender_store.find_message(m.OUT, message_id)
    assert record is not None
    return record


def _imported(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(m.Dossier)).scalar_one())


def test_queued_dossier_is_delivered_with_a_verified_receipt_and_imported_once(
    pair: GatewayPair,
) -> None:
    prepared = _queue(pair)
    assert _out(pair, prepared.message_id).status == m.QUEUED
    stats = pair.outbox.run_once()
    assert (stats.delivered, stats.retrying, stats.failed) == (1, 0, 0)
    record = _out(pair, prepared.message_id)
    assert record.status == m.DELIVERED and record.attempts == 1
    assert record.receipt is not None
    inbound = pair.receiver_store.find_message(m.IN, prepared.message_id)
    assert inbound is not None and inbound.receipt == record.receipt
    assert [e.status for e in pair.sender_store.events(record.pk)] == [
        m.QUEUED,
        m.SENDING,
        m.AWAITING_RECEIPT,
        m.DELIVERED,
    ]
    assert _imported(pair.receiver_store) == 1
    assert pair.outbox.run_once().attempts == 0  # nothing left to do


def test_receiver_down_is_retried_with_backoff_and_delivered_once_up(pair: GatewayPair) -> None:
    prepared = _queue(pair)
    pair.transport.down = True
    assert pair.outbox.run_once().retrying == 1
    record = _out(pair, prepared.message_id)
    assert record.status == m.RETRYING and record.last_error_code == "OSO-E461"
    assert record.next_attempt_at == pair.clock() + timedelta(seconds=1)
    assert pair.outbox.run_once().attempts == 0  # not due yet

    pair.clock.advance(timedelta(seconds=1))
    assert pair.outbox.run_once().retrying == 1
    assert _out(pair, prepared.message_id).next_attempt_at == pair.clock() + timedelta(seconds=2)

    pair.transport.down = False
    pair.clock.advance(timedelta(seconds=2))
    assert pair.outbox.run_once().delivered == 1
    record = _out(pair, prepared.message_id)
    assert record.status == m.DELIVERED and record.attempts == 3
    assert _imported(pair.receiver_store) == 1


def test_retry_after_the_envelope_expired_reseals_with_the_same_message_id(
    pair: GatewayPair,
) -> None:
    prepared = _queue(pair)
    pair.transport.down = True
    pair.outbox.run_once()
    first = _out(pair, prepared.message_id).signature_value
    pair.transport.down = False
    pair.clock.advance(REQUEST_TTL)
    assert pair.outbox.run_once().delivered == 1
    record = _out(pair, prepared.message_id)
    assert record.signature_value != first  # fresh Timestamp and signature
    inbound = pair.receiver_store.find_message(m.IN, prepared.message_id)
    assert inbound is not None  # same MessageID on the wire


def test_lost_receipt_is_retried_and_the_original_receipt_accepted_without_reimport(
    pair: GatewayPair,
) -> None:
    lost: list[bytes] = []

    def lose_first(url: str, data: bytes, answer: TransportResponse) -> TransportResponse:
        if not lost:
            lost.append(answer.body)
            return TransportResponse(status=502, body=b"Bad Gateway")
        return answer

    pair.transport.intercept = lose_first
    prepared = _queue(pair)
    assert pair.outbox.run_once().retrying == 1
    assert _out(pair, prepared.message_id).last_error_code == "OSO-E462"
    assert _imported(pair.receiver_store) == 1  # the receiver did import it

    pair.clock.advance(REQUEST_TTL)  # so the retry is even re-sealed
    assert pair.outbox.run_once().delivered == 1
    record = _out(pair, prepared.message_id)
    assert record.receipt == lost[0]  # the ORIGINAL receipt bytes
    assert _imported(pair.receiver_store) == 1


def test_permanent_rejection_fails_without_retry_and_logs_the_code(
    pair: GatewayPair, caplog: pytest.LogCaptureFixture
) -> None:
    # Our directory says school 03EF00 mandated us; the receiver's directory does not.
    pair.set_sender_directory(dev_directory(extra_mandates={"03EF00": [SENDER_OIN]}))
    prepared = _queue(pair, brin="03EF")
    with caplog.at_level(logging.INFO, logger="oso_gateway.transfer.outbox"):
        assert pair.outbox.run_once().failed == 1
    record = _out(pair, prepared.message_id)
    assert record.status == m.FAILED and record.last_error_code == "OSO-E431"
    assert "OSO-E431" in caplog.text
    posts = len(pair.transport.posts)
    pair.clock.advance(timedelta(hours=2))
    assert pair.outbox.run_once().attempts == 0
    assert len(pair.transport.posts) == posts
    assert _imported(pair.receiver_store) == 0


def test_retries_stop_after_the_configured_number_of_attempts(tmp_path: Path) -> None:
    retry = RetrySettings(max_attempts=2, base_delay=1.0, max_delay=1.0, jitter=0.0)
    pair = make_pair(tmp_path, retry=retry)
    try:
        prepared = _queue(pair)
        pair.transport.down = True
        pair.outbox.run_once()
        pair.clock.advance(timedelta(seconds=1))
        assert pair.outbox.run_once().failed == 1
        record = _out(pair, prepared.message_id)
        assert record.status == m.FAILED and record.attempts == 2
        assert record.last_error_code == "OSO-E461"
    finally:
        pair.close()


def test_http_error_without_fault_retries_on_5xx_and_fails_on_4xx(pair: GatewayPair) -> None:
    status = {"code": 503}

    def http_error(url: str, data: bytes, answer: TransportResponse) -> TransportResponse:
        return TransportResponse(status=status["code"], body=b"<html>nope</html>")

    pair.transport.intercept = http_error
    prepared = _queue(pair)
    assert pair.outbox.run_once().retrying == 1
    status["code"] = 404
    pair.clock.advance(timedelta(seconds=1))
    assert pair.outbox.run_once().failed == 1
    assert _out(pair, prepared.message_id).last_error_code == "OSO-E462"


def test_receipt_must_name_our_message_digest_and_the_directory_oin(pair: GatewayPair) -> None:
    captured: list[bytes] = []

    def keep(url: str, data: bytes, answer: TransportResponse) -> TransportResponse:
        captured.append(answer.body)
        return answer

    pair.transport.intercept = keep
    prepared = _queue(pair)
    pair.outbox.run_once()
    record = _out(pair, prepared.message_id)
    assert record.signature_value is not None and record.payload_digest is not None
    good = Expected(
        message_id=prepared.message_id,
        signature_value=record.signature_value,
        payload_digest=record.payload_digest,
        recipient_oin=RECEIVER_OIN,
    )
    receipt, _ = verify_receipt(
        captured[0], expected=good, config=pair.sender_config, now=pair.clock()
    )
    assert receipt.request_message_id == prepared.message_id

    def check(expected: Expected) -> None:
        verify_receipt(captured[0], expected=expected, config=pair.sender_config, now=pair.clock())

    from dataclasses import replace

    with pytest.raises(ReceiptMismatch):
        check(replace(good, message_id="urn:uuid:00000000-0000-4000-8000-000000000000"))
    with pytest.raises(ReceiptMismatch):
        check(replace(good, payload_digest="0" * 64))
    with pytest.raises(ReceiptMismatch):
        check(replace(good, signature_value=b"another signature"))
    with pytest.raises(OinMismatch):
        check(replace(good, recipient_oin=VENDOR_OIN))


def test_prepare_drops_data_of_opted_out_categories_and_reports_counts_only(
    pair: GatewayPair,
) -> None:
    data = generate_dossier(overstap="POVO", seed=4, now=pair.clock(), opt_out=False)
    root = etree.fromstring(data)
    assert root.findall(f".//{{{DOSSIER_NS}}}verzuim"), "the generated dossier carries verzuim data"
    cats = root.find(f"{{{DOSSIER_NS}}}metadata/{{{DOSSIER_NS}}}categorie_uitlevering")
    assert cats is not None
    cat = cats.find(f"{{{DOSSIER_NS}}}cat_verzuim")
    assert cat is not None
    cat.text = "OPT-UIT"  # the parents opted out, but the LAS export still carries the data
    prepared = pair.prepare(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    assert prepared.removed.get("verzuim", 0) >= 1
    assert all(isinstance(v, int) for v in prepared.removed.values())
    sent = etree.fromstring(prepared.payload)
    assert not sent.findall(f".//{{{DOSSIER_NS}}}verzuim")
    assert prepared.recipient_oin == RECEIVER_OIN and prepared.endpoint == RECEIVER_URL


def test_prepare_refuses_a_sending_school_that_has_not_mandated_us(pair: GatewayPair) -> None:
    with pytest.raises(NotMandated) as info:
        _prepare(pair, brin="03EF")
    assert info.value.code == "OSO-E463"


def test_prepare_refuses_an_unknown_recipient_school(pair: GatewayPair) -> None:
    data = generate_dossier(overstap="POVO", seed=1, now=pair.clock())
    with pytest.raises(UnknownSchool):
        prepare_dossier(
            data,
            to=School("99ZZ", "00"),
            directory=pair.directory,
            config=pair.sender_config,
            now=pair.clock(),
        )


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    retry = RetrySettings(max_attempts=10, base_delay=30.0, max_delay=3600.0, jitter=0.2)
    rng = random.Random(7)
    for attempt, nominal in [(1, 30), (2, 60), (3, 120), (8, 3600), (9, 3600)]:
        seconds = backoff_delay(attempt, retry, rng).total_seconds()
        assert nominal * 0.8 <= seconds <= nominal * 1.2


def test_both_transfer_logs_chain_and_hold_no_pupil_data(
    pair: GatewayPair, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "Qxzmarker"
    data = generate_dossier(overstap="POVO", seed=5, now=pair.clock(), marker=marker)
    with caplog.at_level(logging.DEBUG):
        prepared = pair.prepare(data)
        pair.outbox.enqueue(prepared)
        pair.transport.down = True
        pair.outbox.run_once()
        pair.transport.down = False
        pair.clock.advance(timedelta(seconds=1))
        pair.outbox.run_once()
    sent = pair.sender_store.log_entries()
    received = pair.receiver_store.log_entries()
    assert verify_chain(sent).ok and verify_chain(received).ok
    assert [e.event["status"] for e in sent] == [
        m.QUEUED,
        m.SENDING,
        m.AWAITING_RECEIPT,
        m.RETRYING,
        m.SENDING,
        m.AWAITING_RECEIPT,
        m.DELIVERED,
    ]
    assert sent[3].event["error_code"] == "OSO-E461"
    assert [e.event["status"] for e in received] == [m.RECEIVED, m.VERIFIED, m.IMPORTED]
    assert {e.event["message_id"] for e in sent + received} == {prepared.message_id}
    everything = caplog.text + repr([e.event for e in sent + received])
    assert marker not in everything
    assert marker in prepared.payload.decode()  # the marker was in the dossier itself


def test_receiver_database_unavailable_gives_503_and_the_sender_retries(
    pair: GatewayPair,
) -> None:
    from oso_gateway.store import create_store_engine

    real = pair.inbound.store
    pair.inbound.store = Store(create_store_engine("postgresql://nobody:x@127.0.0.1:9/none"))
    prepared = _queue(pair)
    assert pair.outbox.run_once().retrying == 1
    record = _out(pair, prepared.message_id)
    assert record.status == m.RETRYING and record.last_error_code == "OSO-E502"

    pair.inbound.store = real
    pair.clock.advance(timedelta(seconds=1))
    assert pair.outbox.run_once().delivered == 1
    assert _imported(pair.receiver_store) == 1


def test_a_tls_refusal_names_the_peers_alert() -> None:
    """A revoked sender read only "SSLError posting to …" while the receiver knew why."""
    import ssl

    import requests

    from oso_gateway.transfer.send import _tls_reason

    alert = ssl.SSLError(
        1, "[SSL: SSLV3_ALERT_CERTIFICATE_REVOKED] sslv3 alert certificate revoked (_ssl.c:2580)"
    )
    wrapped = requests.exceptions.SSLError(
        requests.packages.urllib3.exceptions.MaxRetryError(None, "/oso", reason=alert)  # type: ignore[attr-defined]
    )
    assert _tls_reason(wrapped).startswith(" (TLS: SSLV3_ALERT_CERTIFICATE_REVOKED; ")
    assert "CRL revokes our certificate" in _tls_reason(wrapped)
    assert _tls_reason(requests.exceptions.ConnectionError("refused")) == ""
    # the alert a receiver's stale CRL of our CA also gives: both readings named (an operator
    # whose certificate is valid looked at the wrong end)
    expired = ssl.SSLError(1, "[SSL: SSLV3_ALERT_CERTIFICATE_EXPIRED] sslv3 alert (_ssl.c:2580)")
    reason = _tls_reason(expired)
    assert "SSLV3_ALERT_CERTIFICATE_EXPIRED" in reason and "its own CRL" in reason
    unknown = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    assert _tls_reason(unknown) == " (TLS: TLSV1_ALERT_UNKNOWN_CA)"
