"""The per-TrustConfig memo of verification successes: reused only while it provably still holds.

Time is fixed relative to the committed dev PKI (a day after its CRLs were issued). Each test
builds its own TrustConfig so that no cached entry leaks in from another test.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _wss_support import dev_now, identity, policy, sample_payload, seal_1_to_2
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from oso_gateway import errors
from oso_gateway.security import keys, pki, trust
from oso_gateway.security.trust import TrustConfig, verify_certificate
from oso_gateway.security.wss import open_message

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
OIN = "00000001000000000001"


def _read(name: str) -> bytes:
    return (DEV / name).read_bytes()


def _cert(name: str) -> x509.Certificate:
    return keys.load_certificate(_read(name))


def _trust(**changes: object) -> TrustConfig:
    config = TrustConfig.from_pem(
        anchors=[_read("root-ca.crt.pem")],
        intermediates=[_read("issuing-ca.crt.pem")],
        crls=[_read("root-ca.crl.pem"), _read("issuing-ca.crl.pem")],
    )
    return replace(config, **changes) if changes else config  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def now() -> datetime:
    return keys.load_crl(_read("issuing-ca.crl.pem")).last_update_utc + timedelta(days=1)


@pytest.fixture(scope="module")
def leaf() -> x509.Certificate:
    return _cert(f"gateway-{OIN}.crt.pem")


def test_a_repeated_verification_inside_the_window_returns_the_cached_result(
    leaf: x509.Certificate, now: datetime
) -> None:
    config = _trust()
    first = verify_certificate(leaf, trust=config, now=now)
    again = verify_certificate(
        keys.load_certificate(_read(f"gateway-{OIN}.crt.pem")),  # same DER, another object
        trust=config,
        now=now + timedelta(minutes=5),
    )
    assert again is first


def _authority(name: str) -> pki.Authority:
    """A dev CA (``issuing-ca`` or ``root-ca``) with its key, to issue CRLs in a test."""
    return pki.Authority(
        certificate=_cert(f"{name}.crt.pem"), key=keys.load_private_key(_read(f"{name}.key.pem"))
    )


def _revoking(serial: int, at: datetime, number: int) -> x509.CertificateRevocationList:
    """An issuing-CA CRL made at ``at`` that revokes ``serial`` (revoked half an hour before)."""
    return pki.make_crl(
        issuer=_authority("issuing-ca"),
        this_update=at - timedelta(minutes=30),
        next_update=at + timedelta(days=7),
        revoked=[(serial, at - timedelta(minutes=30))],
        number=number,
    )


def test_an_expired_certificate_is_rejected_e302_after_a_cached_success(
    leaf: x509.Certificate, now: datetime
) -> None:
    issuing, root = _authority("issuing-ca"), _authority("root-ca")
    # CRLs that stay fresh well past the leaf's expiry: only the leaf's notAfter ends the window.
    later = leaf.not_valid_after_utc + timedelta(days=30)
    crls = tuple(
        pki.make_crl(issuer=a, this_update=now - timedelta(hours=1), next_update=later)
        for a in (root, issuing)
    )
    config = _trust(crls=crls)
    assert verify_certificate(leaf, trust=config, now=now).oin == OIN
    with pytest.raises(errors.CertificateExpired) as caught:
        verify_certificate(leaf, trust=config, now=leaf.not_valid_after_utc + timedelta(seconds=1))
    assert caught.value.code == "OSO-E302"


def test_a_crl_past_its_next_update_is_stale_e306_after_a_cached_success(
    leaf: x509.Certificate, now: datetime
) -> None:
    config = _trust()
    verify_certificate(leaf, trust=config, now=now)
    next_update = config.crls[1].next_update_utc
    assert next_update is not None
    with pytest.raises(errors.CrlStale):
        verify_certificate(leaf, trust=config, now=next_update + timedelta(seconds=1))


def test_a_certificate_revoked_in_another_configs_crl_is_never_served_from_cache(
    leaf: x509.Certificate, now: datetime
) -> None:
    config = _trust()
    assert verify_certificate(leaf, trust=config, now=now).oin == OIN
    newer = replace(config, crls=(config.crls[0], _revoking(leaf.serial_number, now, 99)))
    with pytest.raises(errors.CertificateRevoked):
        verify_certificate(leaf, trust=newer, now=now)
    with pytest.raises(errors.CertificateRevoked):  # and not cached as a success either
        verify_certificate(leaf, trust=newer, now=now)


def test_equal_trust_configs_do_not_share_a_cache(leaf: x509.Certificate, now: datetime) -> None:
    one, other = _trust(), _trust()
    assert one == other
    assert verify_certificate(leaf, trust=one, now=now) is not verify_certificate(
        leaf, trust=other, now=now
    )


def test_a_failure_is_not_cached(leaf: x509.Certificate, now: datetime) -> None:
    config = _trust()
    with pytest.raises(errors.CertificateNotYetValid):
        verify_certificate(leaf, trust=config, now=leaf.not_valid_before_utc - timedelta(hours=1))
    assert verify_certificate(leaf, trust=config, now=now).oin == OIN
    with pytest.raises(errors.CertificateNotYetValid):
        verify_certificate(leaf, trust=config, now=leaf.not_valid_before_utc - timedelta(hours=1))


def test_extra_intermediates_and_purpose_are_part_of_the_cache_key(now: datetime) -> None:
    bare = _trust(intermediates=())
    gateway = _cert(f"gateway-{OIN}.crt.pem")
    verify_certificate(
        gateway, trust=bare, now=now, extra_intermediates=[_cert("issuing-ca.crt.pem")]
    )
    with pytest.raises(errors.CertificateUntrusted):
        verify_certificate(gateway, trust=bare, now=now)
    tls = _cert("tls-localhost.crt.pem")
    verify_certificate(
        tls,
        trust=bare,
        now=now,
        purpose="server",
        extra_intermediates=[_cert("issuing-ca.crt.pem")],
    )
    with pytest.raises(errors.CertificateUsageError):
        verify_certificate(
            tls,
            trust=bare,
            now=now,
            purpose="client",
            extra_intermediates=[_cert("issuing-ca.crt.pem")],
        )


def test_a_crl_not_signed_by_its_issuer_is_rejected_e307_every_time(
    leaf: x509.Certificate, now: datetime
) -> None:
    root = _authority("root-ca")
    issuing_cert = _cert("issuing-ca.crt.pem")
    forged = pki.make_crl(
        issuer=pki.Authority(certificate=issuing_cert, key=root.key),  # wrong key
        this_update=now - timedelta(hours=1),
        next_update=now + timedelta(days=7),
    )
    config = _trust(crls=(_trust().crls[0], forged))
    for _ in range(2):
        with pytest.raises(errors.CrlInvalid):
            verify_certificate(leaf, trust=config, now=now)


def test_trust_config_holds_tuples_whatever_it_was_given() -> None:
    anchors = [_cert("root-ca.crt.pem")]
    config = TrustConfig(anchors=anchors)  # type: ignore[arg-type]
    anchors.clear()
    assert isinstance(config.anchors, tuple) and len(config.anchors) == 1


def test_the_cache_keeps_only_the_most_recently_used_entries() -> None:
    cache = trust._LruCache(size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


# --- the DER of a certificate object, remembered (no re-encoding per verification) ---------------


def test_der_of_is_each_objects_own_encoding_even_when_ids_are_reused() -> None:
    ders = [_read(f"gateway-{oin}.crt.pem") for oin in (OIN, "00000001000000000002")]
    expected = [keys.load_certificate(pem).public_bytes(Encoding.DER) for pem in ders]
    for round_ in range(50):  # objects die and new ones may take their ids
        pem = ders[round_ % 2]
        cert = keys.load_certificate(pem)
        assert trust.der_of(cert) == expected[round_ % 2]
        assert trust.der_of(cert) is trust.der_of(cert)  # remembered for the same object
        del cert


def test_a_revoked_signer_is_refused_by_open_after_its_messages_were_accepted() -> None:
    # the same signer certificate (same DER, same cached object) under a config whose CRL now
    # revokes it: refused, not served from the earlier config's success
    config, at = _trust(), dev_now()
    sealed = seal_1_to_2(sample_payload())
    me = [identity("00000001000000000002")]
    open_message(sealed.data, identities=me, trust=config, policy=policy(), now=at)
    signer = identity(OIN).certificate
    newer = replace(config, crls=(config.crls[0], _revoking(signer.serial_number, at, 98)))
    for _ in range(2):
        with pytest.raises(errors.SignerUntrusted) as info:
            open_message(sealed.data, identities=me, trust=newer, policy=policy(), now=at)
        assert info.value.cause_code == errors.CertificateRevoked.code
    # the first config still accepts it (its own cache, its own CRL)
    open_message(sealed.data, identities=me, trust=config, policy=policy(), now=at)
