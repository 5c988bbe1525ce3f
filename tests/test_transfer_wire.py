"""Receipt payloads and SOAP Faults: built, read back, and refused when malformed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from oso_gateway import errors
from oso_gateway.transfer import wire

DIGEST = "ab" * 32


def _receipt(**overrides: object) -> wire.Receipt:
    values: dict[str, object] = {
        "request_message_id": "urn:uuid:12345678-1234-4234-8234-123456789abc",
        "status": "imported",
        "received_at": datetime(2026, 11, 1, 12, 30, 5, tzinfo=UTC),
        "payload_digest": DIGEST,
        "payload_bytes": 30211,
        "receiver_brin": "01AB",
        "receiver_vestiging": "00",
    }
    values.update(overrides)
    return wire.Receipt(**values)  # type: ignore[arg-type]


def test_receipt_round_trips_through_its_element() -> None:
    original = _receipt()
    element = wire.build_receipt(original)
    again = wire.parse_receipt(etree.fromstring(etree.tostring(element)))
    assert again == original


@pytest.mark.parametrize(
    "overrides",
    [
        {"request_message_id": "not-a-uuid"},
        {"payload_digest": "XYZ"},
        {"receiver_brin": "ABCD"},
        {"status": "maybe"},
    ],
)
def test_receipt_with_bad_values_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(wire.ReceiptInvalid) as info:
        wire.build_receipt(_receipt(**overrides))
    assert info.value.code == "OSO-E450"


def test_foreign_element_is_not_a_receipt() -> None:
    with pytest.raises(wire.ReceiptInvalid):
        wire.parse_receipt(etree.fromstring(b"<Receipt xmlns='urn:other'/>"))


def test_fault_carries_code_and_public_message_but_not_the_detail() -> None:
    err = errors.DossierRuleError("leerling/bsn fails the 11-proef at /dossier/leerling/bsn")
    data = wire.build_fault(err)
    assert b"11-proef" not in data
    fault = wire.parse_fault(data)
    assert fault is not None
    assert fault.remote_code == "OSO-E103"
    assert fault.fault_code == "soap:Client"
    assert fault.remote_transient is False


def test_fault_of_a_transient_error_is_retryable() -> None:
    fault = wire.parse_fault(wire.build_fault(errors.StoreUnavailable("db down")))
    assert fault is not None and fault.remote_transient is True
    assert fault.code == "OSO-E451"


def test_non_fault_answer_is_not_taken_for_a_fault() -> None:
    assert wire.parse_fault(b"<html>502 Bad Gateway</html>") is None
    assert wire.parse_fault(b"not xml at all") is None


def test_fault_code_with_non_ascii_digits_is_not_trusted() -> None:
    data = wire.build_fault(errors.DossierRuleError("x")).replace(b"OSO-E103", "OSO-E١٠٣".encode())
    fault = wire.parse_fault(data)
    assert fault is not None and fault.remote_code == "OSO-E000"


def test_transfer_schema_is_compiled_once_per_thread() -> None:
    # an XMLSchema keeps its error log on itself: threads must not share one
    import threading

    from oso_gateway.dossier.schema import compiled_schema

    mine = compiled_schema(wire.TRANSFER_SCHEMA)
    assert compiled_schema(wire.TRANSFER_SCHEMA) is mine
    assert compiled_schema() is not mine  # the dossier schema is another entry
    theirs: list[object] = []
    worker = threading.Thread(target=lambda: theirs.append(compiled_schema(wire.TRANSFER_SCHEMA)))
    worker.start()
    worker.join()
    assert theirs and theirs[0] is not mine
