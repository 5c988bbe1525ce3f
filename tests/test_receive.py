"""The receive service, through the in-memory gateway pair (real seal/open, real SQLite)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from gateway_pair import (
    RECEIVER_OIN,
    RECEIVER_SCHOOL,
    RECEIVER_URL,
    SENDER_OIN,
    VENDOR_OIN,
    VENDOR_URL,
    GatewayPair,
    dev_directory,
    identity,
    with_sending_school,
)
from lxml import etree
from sqlalchemy import func, select

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import StoreUnavailable
from oso_gateway.protocol import DOSSIER_NS
from oso_gateway.security.wss import Identity, seal
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.repository import MessageRecord
from oso_gateway.transfer import wire
from oso_gateway.transfer.receive import ReceiverConfig, ReceiveResult, ReceiveService
from oso_gateway.transfer.schools import School, address_for, sending_school
from oso_gateway.transfer.send import Expected, new_message_id, verify_receipt
from oso_gateway.transfer.services import served_schools

RECEIVER_CERT = identity(RECEIVER_OIN).certificate


def _dossier(now: datetime, seed: int = 1, **kwargs: object) -> etree._Element:
    data = generate_dossier(overstap="POVO", seed=seed, now=now, **kwargs)  # type: ignore[arg-type]
    return etree.fromstring(data)


def _seal(
    pair: GatewayPair,
    payload: etree._Element,
    *,
    to: str = RECEIVER_URL,
    action: str = wire.ACTION_DELIVER,
    message_id: str | None = None,
    sender: Identity | None = None,
) -> tuple[bytes, str, bytes, str]:
    sealed = seal(
        payload,
        sender=sender or pair.sender_config.identity,
        recipient_certificate=RECEIVER_CERT,
        to=to,
        action=action,
        message_id=message_id or new_message_id(),
        now=pair.clock(),
    )
    return sealed.data, sealed.message_id, sealed.signature_value, sealed.payload_digest


def _imported(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(m.Dossier)).scalar_one())


def _rejected(store: Store) -> list[MessageRecord]:
    return store.list_messages(direction=m.IN, statuses=[m.REJECTED])


def _fault_code(result: ReceiveResult) -> str:
    fault = wire.parse_fault(result.body)
    assert fault is not None, result.body[:200]
    return fault.remote_code


def test_valid_message_is_imported_with_events_and_a_receipt_the_sender_can_verify(
    pair: GatewayPair,
) -> None:
    data, message_id, signature, digest = _seal(pair, _dossier(pair.clock()))
    result = pair.receiver.handle(data)
    assert result.http_status == 200, result.body[:300]
    receipt, _fingerprint = verify_receipt(
        result.body,
        expected=Expected(
            message_id=message_id,
            signature_value=signature,
            payload_digest=digest,
            recipient_oin=RECEIVER_OIN,
        ),
        config=pair.sender_config,
        now=pair.clock(),
    )
    assert receipt.status == "imported"
    assert (receipt.receiver_brin, receipt.receiver_vestiging) == ("01AB", "00")
    assert _imported(pair.receiver_store) == 1
    row = pair.receiver_store.find_message(m.IN, message_id)
    assert row is not None and row.status == m.IMPORTED
    assert row.counterpart_oin == SENDER_OIN and row.counterpart_school == "00YY00"
    assert row.our_school == RECEIVER_SCHOOL.code
    assert row.receipt == result.body
    statuses = [e.status for e in pair.receiver_store.events(row.pk)]
    assert statuses == [m.RECEIVED, m.VERIFIED, m.IMPORTED]


def test_duplicate_delivery_gets_the_original_receipt_bytes_and_imports_nothing(
    pair: GatewayPair,
) -> None:
    data, *_ = _seal(pair, _dossier(pair.clock()))
    first = pair.receiver.handle(data)
    pair.clock.advance(timedelta(seconds=30))
    second = pair.receiver.handle(data)
    assert first.http_status == second.http_status == 200
    assert second.body == first.body
    assert second.duplicate and not first.duplicate
    assert _imported(pair.receiver_store) == 1


def test_resealed_retry_with_same_message_id_is_a_duplicate(pair: GatewayPair) -> None:
    dossier = _dossier(pair.clock())
    data, message_id, *_ = _seal(pair, dossier)
    first = pair.receiver.handle(data)
    pair.clock.advance(timedelta(minutes=20))  # the first envelope has expired
    again, *_ = _seal(pair, dossier, message_id=message_id)
    second = pair.receiver.handle(again)
    assert second.http_status == 200 and second.body == first.body
    assert _imported(pair.receiver_store) == 1


def test_same_message_id_with_another_payload_is_rejected(pair: GatewayPair) -> None:
    data, message_id, *_ = _seal(pair, _dossier(pair.clock(), seed=1))
    assert pair.receiver.handle(data).http_status == 200
    other, *_ = _seal(pair, _dossier(pair.clock(), seed=2), message_id=message_id)
    result = pair.receiver.handle(other)
    assert result.http_status == 409
    assert _fault_code(result) == "OSO-E454"
    assert _imported(pair.receiver_store) == 1


def test_message_with_another_action_is_rejected(pair: GatewayPair) -> None:
    data, *_ = _seal(pair, _dossier(pair.clock()), action=wire.ACTION_RECEIPT)
    result = pair.receiver.handle(data)
    assert (result.http_status, _fault_code(result)) == (400, "OSO-E452")
    assert _imported(pair.receiver_store) == 0


def test_message_addressed_to_a_school_we_do_not_serve_is_rejected(pair: GatewayPair) -> None:
    data, *_ = _seal(pair, _dossier(pair.clock()), to=VENDOR_URL + "?school=02CD00")
    result = pair.receiver.handle(data)
    assert (result.http_status, _fault_code(result)) == (404, "OSO-E453")
    assert _imported(pair.receiver_store) == 0


def test_sending_school_without_mandate_for_the_signer_is_rejected_and_logged(
    pair: GatewayPair, caplog: pytest.LogCaptureFixture
) -> None:
    # The dossier says it comes from 03EF00, whose mandate is with the vendor, not the signer.
    dossier = etree.fromstring(with_sending_school(etree.tostring(_dossier(pair.clock())), "03EF"))
    data, message_id, *_ = _seal(pair, dossier)
    with caplog.at_level(logging.WARNING, logger="oso_gateway.transfer.receive"):
        result = pair.receiver.handle(data)
    assert (result.http_status, _fault_code(result)) == (403, "OSO-E431")
    assert _imported(pair.receiver_store) == 0
    rejected = _rejected(pair.receiver_store)
    assert [(r.message_id, r.last_error_code) for r in rejected] == [(message_id, "OSO-E431")]
    assert "OSO-E431" in caplog.text
    logged = pair.receiver_store.log_entries()[-1].event
    assert (logged["status"], logged["error_code"]) == ("rejected", "OSO-E431")


def test_invalid_dossier_is_rejected_with_its_dossier_code_and_nothing_imported(
    pair: GatewayPair,
) -> None:
    dossier = _dossier(pair.clock())
    metadata = dossier.find(f"{{{DOSSIER_NS}}}metadata")
    assert metadata is not None
    dossier.remove(metadata)
    data, *_ = _seal(pair, dossier)
    result = pair.receiver.handle(data)
    assert result.http_status == 400
    assert _fault_code(result).startswith("OSO-E1")
    assert _imported(pair.receiver_store) == 0


def test_dossier_with_data_of_an_excluded_category_is_rejected(pair: GatewayPair) -> None:
    dossier = _dossier(pair.clock())
    cat = dossier.find(f"{{{DOSSIER_NS}}}metadata/{{{DOSSIER_NS}}}categorie_uitlevering")
    assert cat is not None
    # Mark a category whose data is present as forbidden.
    marked = None
    for child in cat:
        if child.text == "VERPLICHT" and etree.QName(child).localname == "cat_schoolloopbaan":
            child.text = "VERBODEN"
            marked = child
    assert marked is not None
    data, *_ = _seal(pair, dossier)
    result = pair.receiver.handle(data)
    assert result.http_status == 400
    assert _fault_code(result) in {"OSO-E104", "OSO-E103"}
    assert _imported(pair.receiver_store) == 0


def test_crash_between_insert_and_commit_leaves_nothing_and_the_retry_imports(
    pair: GatewayPair,
) -> None:
    class Crash(Exception):
        pass

    def crash(_session: object, _record: object) -> None:
        raise Crash("power cut between insert and commit")

    data, message_id, *_ = _seal(pair, _dossier(pair.clock()))
    pair.inbound.after_insert = crash
    crashed = pair.receiver.handle(data)  # answered as a transient internal error, and recorded
    assert crashed.http_status == 500 and crashed.error is not None
    assert crashed.error.code == "OSO-E457"
    assert _imported(pair.receiver_store) == 0
    assert pair.receiver_store.find_message(m.IN, message_id) is None
    with pair.receiver_store.engine.connect() as conn:
        statuses = conn.execute(select(m.MessageEvent.status)).scalars().all()
    assert sorted(statuses) == [m.RECEIVED, m.REJECTED]  # only the recorded rejection

    pair.inbound.after_insert = None
    result = pair.receiver.handle(data)
    assert result.http_status == 200
    assert _imported(pair.receiver_store) == 1


def test_database_unavailable_answers_503_transient_fault(
    pair: GatewayPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oso_gateway.store import create_store_engine

    # A real driver failure: PostgreSQL on a port nobody listens on.
    down = Store(create_store_engine("postgresql://nobody:x@127.0.0.1:9/none"), None)
    monkeypatch.setattr(pair.inbound, "store", down)
    data, *_ = _seal(pair, _dossier(pair.clock()))
    result = pair.receiver.handle(data)
    assert result.http_status == 503
    fault = wire.parse_fault(result.body)
    assert fault is not None
    assert fault.remote_code == StoreUnavailable.code and fault.remote_transient


def test_message_from_revoked_gateway_is_rejected_with_coarse_fault(
    pair: GatewayPair, caplog: pytest.LogCaptureFixture
) -> None:
    data, *_ = _seal(pair, _dossier(pair.clock()), sender=identity("00000001000000000009"))
    with caplog.at_level(logging.WARNING, logger="oso_gateway.transfer.receive"):
        result = pair.receiver.handle(data)
    assert result.http_status == 403
    assert _fault_code(result).startswith("OSO-E2")  # one opaque code to the peer
    assert b"revoked" not in result.body.lower()
    assert "OSO-E304" in caplog.text  # the precise reason: our log only
    assert _imported(pair.receiver_store) == 0


def test_rejection_before_the_message_is_opened_is_answered_and_not_imported(
    pair: GatewayPair,
) -> None:
    result = pair.receiver.handle(b"<not-soap/>")
    assert result.http_status in (400, 403)
    assert _fault_code(result).startswith("OSO-E2")
    assert _imported(pair.receiver_store) == 0


def test_gateway_serving_several_schools_takes_the_school_from_wsa_to(
    pair: GatewayPair,
) -> None:
    vendor = identity(VENDOR_OIN)
    directory = dev_directory()
    receiver = ReceiveService(
        config=ReceiverConfig(
            identities=(vendor,),
            trust=pair.receiver.config.trust,
            served=served_schools(directory, (vendor,)),
        ),
        directory=directory,
        store=pair.inbound,
        clock=pair.clock,
    )
    school = School("03EF", "00")

    def sealed_to(to: str) -> bytes:
        return seal(
            _dossier(pair.clock()),
            sender=pair.sender_config.identity,
            recipient_certificate=vendor.certificate,
            to=to,
            action=wire.ACTION_DELIVER,
            message_id=new_message_id(),
            now=pair.clock(),
        ).data

    ambiguous = receiver.handle(sealed_to(VENDOR_URL))
    assert (ambiguous.http_status, _fault_code(ambiguous)) == (404, "OSO-E453")
    result = receiver.handle(sealed_to(address_for(VENDOR_URL, school)))
    assert result.http_status == 200, result.body[:300]
    row = pair.receiver_store.find_message(m.IN, result.message_id or "")
    assert row is not None and row.our_school == "03EF00" and row.our_oin == VENDOR_OIN


def test_sending_school_is_read_from_huidigeschool(pair: GatewayPair) -> None:
    assert sending_school(_dossier(pair.clock())) == School("00YY", "00")


def test_school_codes_parse_with_default_vestiging_and_reject_garbage() -> None:
    assert School.parse("01ab") == School("01AB", "00")
    assert School.parse("02CD01").code == "02CD01"
    with pytest.raises(ValueError):
        School.parse("01AB0")
