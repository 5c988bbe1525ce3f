"""``message_log_event``: the transfer-log event of a status change, built from the message row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oso_gateway.store import models as m
from oso_gateway.store.logchain import FIELD_FORMATS
from oso_gateway.store.translog import message_log_event

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
ROW = {
    "direction": m.OUT,
    "message_id": "urn:uuid:12345678-1111-4222-8333-444444444444",
    "action": "urn:oso-gateway:action:dossier:deliver:1",
    "our_school": "00YY00",
    "counterpart_school": "01AB00",
    "counterpart_oin": "00000001000000000002",
    "payload_size": 30123,
    "message_size": 41000,
    "attempts": 2,
    "payload_digest": "ab" * 32,
    "signer_fingerprint": "cd" * 32,
}


def test_an_outbound_event_carries_schools_oin_size_attempt_digest_and_receipt_signer() -> None:
    event = message_log_event(ROW, m.RETRYING, NOW, "OSO-E461")
    assert event == {
        "at": "2026-09-01T08:00:00.000000Z",
        "kind": "message",
        "status": "retrying",
        "direction": "out",
        "message_id": ROW["message_id"],
        "action": ROW["action"],
        "error_code": "OSO-E461",
        "counterpart_brin": "01AB",
        "counterpart_vestiging": "00",
        "counterpart_oin": "00000001000000000002",
        "school_brin": "00YY",
        "school_vestiging": "00",
        "size_bytes": "30123",
        "attempt": "2",
        "payload_digest": "ab" * 32,
        "peer_fingerprint": "cd" * 32,
    }


def test_an_orm_row_gives_the_same_event_and_inbound_names_the_dossiers_signer() -> None:
    row = m.Message(**{**ROW, "direction": m.IN, "attempts": 0})
    event = message_log_event(row, m.IMPORTED, NOW)
    assert event["signer_fingerprint"] == "cd" * 32
    assert "peer_fingerprint" not in event and "attempt" not in event
    assert event["counterpart_brin"] == "01AB"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("message_id", "<script>Jansen</script>"),
        ("action", "deliver dossier of Piet Jansen"),
        ("counterpart_school", "Jansen"),
        ("counterpart_oin", "123"),
    ],
)
def test_a_value_not_of_its_fields_form_is_left_out_never_logged(name: str, value: str) -> None:
    event = message_log_event({**ROW, name: value}, m.REJECTED, NOW, "OSO-E202")
    assert "Jansen" not in repr(event) and value not in event.values()
    assert event["status"] == "rejected" and event["error_code"] == "OSO-E202"
    assert all(k in FIELD_FORMATS for k in event)


def test_without_a_payload_size_the_message_size_is_logged() -> None:
    event = message_log_event({**ROW, "payload_size": None}, m.REJECTED, NOW)
    assert event["size_bytes"] == "41000"
