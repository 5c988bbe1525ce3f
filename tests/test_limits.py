"""The size limits are derived from the largest allowed dossier (``oso_gateway.limits``)."""

from __future__ import annotations

import binascii

import pytest
from gateway_pair import RECEIVER_SCHOOL, GatewayPair

from oso_gateway import limits
from oso_gateway.config import LimitSettings
from oso_gateway.security.wss import OpenPolicy
from oso_gateway.security.xmlparse import DEFAULT_LIMITS


def test_base64_size_is_exact_with_and_without_line_breaks() -> None:
    for n in (0, 1, 2, 3, 4, 57, 58, 1000):
        assert limits.base64_size(n) == len(binascii.b2a_base64(b"x" * n, newline=False))
        wrapped = binascii.b2a_base64(b"x" * n, newline=False)
        lines = [wrapped[i : i + 76] for i in range(0, len(wrapped), 76)]
        assert limits.base64_size(n, line_length=76) == sum(len(x) + 2 for x in lines)


def test_the_largest_dossier_holds_50_mib_of_wrapped_base64_attachments() -> None:
    attachments = limits.base64_size(50 * limits.MiB, line_length=76)
    assert limits.MAX_DOSSIER_BYTES >= attachments + 4 * limits.MiB
    assert limits.MAX_DOSSIER_BYTES < 80 * limits.MiB


def test_the_largest_message_carries_the_largest_dossier_encrypted_and_base64() -> None:
    sealed_body = limits.base64_size(limits.MAX_DOSSIER_BYTES + 12 + 16)
    assert limits.MAX_MESSAGE_BYTES >= sealed_body + 64 * 1024
    assert limits.MAX_MESSAGE_BYTES < 110 * limits.MiB


def test_every_default_bound_follows_the_largest_dossier() -> None:
    assert DEFAULT_LIMITS.max_bytes == limits.MAX_DOSSIER_BYTES
    assert OpenPolicy().max_bytes == limits.MAX_MESSAGE_BYTES
    assert LimitSettings().max_request_bytes == limits.MAX_MESSAGE_BYTES


def test_a_dossier_over_the_largest_allowed_size_is_refused_before_parsing(
    pair: GatewayPair,
) -> None:
    from oso_gateway.errors import DossierTooLarge
    from oso_gateway.transfer.send import prepare_dossier

    too_big = b"<dossier>" + b" " * limits.MAX_DOSSIER_BYTES + b"</dossier>"
    with pytest.raises(DossierTooLarge) as caught:
        prepare_dossier(
            too_big,
            to=RECEIVER_SCHOOL,
            directory=pair.directory,
            config=pair.sender_config,
            now=pair.clock(),
        )
    assert caught.value.code == "OSO-E260" and caught.value.http_status == 413


def test_a_sealed_message_over_the_request_limit_is_not_sent(
    pair: GatewayPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oso_gateway.dossier.generator import generate_dossier
    from oso_gateway.errors import DossierTooLarge
    from oso_gateway.transfer import send

    data = generate_dossier(overstap="POVO", seed=3, now=pair.clock())
    monkeypatch.setattr(send, "MAX_MESSAGE_BYTES", len(data))  # smaller than its sealed form
    with pytest.raises(DossierTooLarge, match="sealed message of"):
        send.seal_attempt(
            data,
            message_id=send.new_message_id(),
            to=RECEIVER_SCHOOL,
            directory=pair.directory,
            config=pair.sender_config,
            now=pair.clock(),
        )


def test_sealed_expires_reads_the_header_of_a_sealed_envelope_only(pair: GatewayPair) -> None:
    from datetime import timedelta

    from oso_gateway.dossier.generator import generate_dossier
    from oso_gateway.transfer import send

    now = pair.clock()
    data = generate_dossier(overstap="POVO", seed=5, now=now)
    sealed = send.seal_attempt(
        data,
        message_id=send.new_message_id(),
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=now,
    ).data
    expires = send.sealed_expires(sealed)
    assert expires is not None
    assert abs(expires - (now + pair.sender_config.ttl)) < timedelta(seconds=1)
    # the header alone is enough: a message cut off in its Body still tells its expiry
    body = sealed.index(b"Body")
    assert send.sealed_expires(sealed[:body]) == expires
    assert send.sealed_expires(b"<not-xml") is None
    assert send.sealed_expires(b"<a/>") is None
