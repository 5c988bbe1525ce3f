"""The transfer log's hash chain catches every kind of tampering and refuses free text."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from oso_gateway.store import logchain
from oso_gateway.store.logchain import StoredEvent

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _events(n: int) -> list[dict[str, str]]:
    statuses = ["queued", "sending", "awaiting_receipt", "delivered"]
    return [
        logchain.make_event(
            at=T0 + timedelta(seconds=i),
            kind="message",
            direction="out",
            message_id=f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
            status=statuses[i % 4],
            counterpart_brin="01AB",
            counterpart_vestiging="00",
            counterpart_oin="00000001000000000002",
            size_bytes=30_000 + i,
            payload_digest=f"{i:064x}",
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def rows() -> list[StoredEvent]:
    return logchain.chain(_events(10))


@pytest.fixture(scope="module")
def signer() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anchor test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(T0 - timedelta(days=1))
        .not_valid_after(T0 + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def test_untouched_chain_verifies(rows: list[StoredEvent]) -> None:
    result = logchain.verify_chain(rows)
    assert result.ok and result.checked == 10 and result.head_seq == 10
    assert result.head_hash == rows[-1].hash


def test_edited_event_is_named(rows: list[StoredEvent]) -> None:
    tampered = list(rows)
    edited = dict(
        rows[4].event, status="delivered" if rows[4].event["status"] != "delivered" else "failed"
    )
    tampered[4] = dataclasses.replace(rows[4], event=edited)
    result = logchain.verify_chain(tampered)
    assert not result.ok and result.broken_seq == 5 and "edited" in result.reason


def test_deleted_event_is_named(rows: list[StoredEvent]) -> None:
    result = logchain.verify_chain(rows[:3] + rows[4:])
    assert not result.ok and result.broken_seq == 4 and "missing" in result.reason


def test_inserted_event_is_detected_even_with_renumbering(rows: list[StoredEvent]) -> None:
    forged = logchain.chain(_events(1), after=(rows[5].seq, rows[5].hash))[0]
    renumbered = [dataclasses.replace(r, seq=r.seq + 1) for r in rows[6:]]
    result = logchain.verify_chain([*rows[:6], forged, *renumbered])
    assert not result.ok and result.broken_seq == 8


def test_reordered_events_are_detected(rows: list[StoredEvent]) -> None:
    swapped = [*rows[:2], rows[3], rows[2], *rows[4:]]
    assert logchain.verify_chain(swapped).broken_seq == 3
    renumbered = [
        *rows[:2],
        dataclasses.replace(rows[3], seq=3),
        dataclasses.replace(rows[2], seq=4),
    ]
    result = logchain.verify_chain(renumbered)
    assert not result.ok and result.broken_seq == 3


def test_truncated_tail_is_caught_by_the_signed_anchor(
    rows: list[StoredEvent], signer: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    key, cert = signer
    anchor = logchain.make_anchor(
        seq=10, head_hash=rows[-1].hash, now=T0, key=key, certificate=cert
    )
    again = logchain.Anchor.from_json(anchor.to_json())
    logchain.verify_anchor(again, cert)
    assert logchain.check_against_anchors(rows, [again]).ok
    assert logchain.verify_chain(rows[:7]).ok  # a truncated chain is self-consistent …
    result = logchain.check_against_anchors(rows[:7], [again])  # … but not with its anchor
    assert not result.ok and "truncated" in result.reason


def test_rewritten_chain_does_not_match_the_anchor(
    rows: list[StoredEvent], signer: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    key, cert = signer
    anchor = logchain.make_anchor(
        seq=10, head_hash=rows[-1].hash, now=T0, key=key, certificate=cert
    )
    rewritten = logchain.chain(list(reversed(_events(10))))
    result = logchain.check_against_anchors(rewritten, [anchor])
    assert not result.ok and result.broken_seq == 10


def test_forged_anchor_signature_is_refused(
    rows: list[StoredEvent], signer: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    key, cert = signer
    anchor = logchain.make_anchor(
        seq=10, head_hash=rows[-1].hash, now=T0, key=key, certificate=cert
    )
    forged = dataclasses.replace(anchor, hash=rows[5].hash)
    with pytest.raises(logchain.LogAnchorInvalid) as info:
        logchain.verify_anchor(forged, cert)
    assert info.value.code == "OSO-E521"
    with pytest.raises(logchain.LogAnchorInvalid):
        logchain.Anchor.from_json("{not json")


@pytest.mark.parametrize(
    "fields",
    [
        {"pupil_name": "Jansen"},  # unknown field
        {"status": "Jan Jansen"},  # free text where a code belongs
        {"counterpart_brin": "Jansen"},
        {"error_code": "OSO-E102 Jansen"},
        {"size_bytes": "123456789 Jansen"},
    ],
)
def test_event_refuses_anything_but_whitelisted_well_formed_fields(fields: dict[str, str]) -> None:
    base: dict[str, object] = {"at": T0, "kind": "message", "status": "queued"}
    base.update(fields)
    with pytest.raises(logchain.LogEventInvalid) as info:
        logchain.make_event(**base)
    assert info.value.code == "OSO-E520"
    assert "Jansen" not in str(info.value)


def test_event_requires_time_kind_and_status() -> None:
    with pytest.raises(logchain.LogEventInvalid):
        logchain.make_event(kind="message", status="queued")
    with pytest.raises(logchain.LogEventInvalid):
        logchain.make_event(at=datetime(2026, 1, 1), kind="message", status="queued")  # naive


def test_non_ascii_digits_are_not_taken_for_digits() -> None:
    with pytest.raises(logchain.LogEventInvalid):
        logchain.make_event(at=T0, kind="message", status="failed", error_code="OSO-E١٠٢")
