"""Certificate trust verification against the committed development PKI, one test per error code.

Time is fixed relative to the committed files (a day after their CRLs were issued), so these tests
do not depend on the date they run. Bad certificates are made here with the same builders as the
dev PKI, reusing the committed keys (no slow RSA key generation).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from oso_gateway import errors
from oso_gateway.security import keys, pki, trust
from oso_gateway.security.trust import TrustConfig, check_oin, verify_certificate

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
VALID_OINS = ("00000001000000000001", "00000001000000000002", "00000001000000000003")
EXPIRED_OIN = "00000001000000000008"
REVOKED_OIN = "00000001000000000009"


def _read(name: str) -> bytes:
    return (DEV / name).read_bytes()


def _cert(name: str) -> x509.Certificate:
    return keys.load_certificate(_read(name))


def _gateway(oin: str) -> x509.Certificate:
    return _cert(f"gateway-{oin}.crt.pem")


@pytest.fixture(scope="module")
def root() -> pki.Authority:
    return pki.Authority(
        certificate=_cert("root-ca.crt.pem"), key=keys.load_private_key(_read("root-ca.key.pem"))
    )


@pytest.fixture(scope="module")
def issuing() -> pki.Authority:
    return pki.Authority(
        certificate=_cert("issuing-ca.crt.pem"),
        key=keys.load_private_key(_read("issuing-ca.key.pem")),
    )


@pytest.fixture(scope="module")
def spare_key() -> rsa.RSAPrivateKey:
    """A 3072-bit key for the hand-made certificates (the committed TLS key)."""
    return keys.load_private_key(_read("tls-localhost.key.pem"))


@pytest.fixture(scope="module")
def dev_trust() -> TrustConfig:
    return TrustConfig.from_pem(
        anchors=[_read("root-ca.crt.pem")],
        intermediates=[_read("issuing-ca.crt.pem")],
        crls=[_read("root-ca.crl.pem"), _read("issuing-ca.crl.pem")],
    )


@pytest.fixture(scope="module")
def now() -> datetime:
    """A moment inside every committed certificate's validity: a day after the CRLs were made."""
    return keys.load_crl(_read("issuing-ca.crl.pem")).last_update_utc + timedelta(days=1)


def _leaf(
    issuer: pki.Authority,
    public_key: rsa.RSAPublicKey,
    now: datetime,
    *,
    oin: str | None = "00000001000000000077",
    **options: object,
) -> x509.Certificate:
    return pki.make_end_entity(
        public_key=public_key,
        issuer=issuer,
        subject=pki.gateway_name(organisation="Testschool", oin=oin),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
        **options,  # type: ignore[arg-type]
    )


# --- happy path ---------------------------------------------------------------------------------


@pytest.mark.parametrize("oin", VALID_OINS)
@pytest.mark.parametrize("purpose", ["client", "server", "signing", "encryption"])
def test_committed_gateway_certificates_verify_for_every_purpose(
    oin: str, purpose: trust.Purpose, dev_trust: TrustConfig, now: datetime
) -> None:
    cert = _gateway(oin)
    verified = verify_certificate(cert, trust=dev_trust, now=now, purpose=purpose)
    assert verified.certificate == cert
    assert verified.oin == oin
    assert [c.subject for c in verified.chain] == [
        cert.subject,
        _cert("issuing-ca.crt.pem").subject,
        _cert("root-ca.crt.pem").subject,
    ]
    der = cert.public_bytes(serialization.Encoding.DER)
    assert verified.fingerprint_sha256 == hashlib.sha256(der).hexdigest()
    assert verified.fingerprint_sha256 == trust.fingerprint(cert)
    assert verified.not_after == cert.not_valid_after_utc


def test_tls_server_certificate_verifies_for_server_use_and_has_no_oin(
    dev_trust: TrustConfig, now: datetime
) -> None:
    verified = verify_certificate(
        _cert("tls-localhost.crt.pem"), trust=dev_trust, now=now, purpose="server"
    )
    assert verified.oin is None


def test_an_intermediate_sent_by_the_peer_completes_the_path(
    dev_trust: TrustConfig, now: datetime
) -> None:
    bare = replace(dev_trust, intermediates=())
    cert = _gateway(VALID_OINS[0])
    with pytest.raises(errors.CertificateUntrusted):
        verify_certificate(cert, trust=bare, now=now)
    verified = verify_certificate(
        cert, trust=bare, now=now, extra_intermediates=[_cert("issuing-ca.crt.pem")]
    )
    assert len(verified.chain) == 3


def test_trust_from_pem_reads_bundles_and_der_crls(dev_trust: TrustConfig, now: datetime) -> None:
    crl_der = keys.load_crl(_read("issuing-ca.crl.pem")).public_bytes(serialization.Encoding.DER)
    config = TrustConfig.from_pem(
        anchors=[_read("root-ca.crt.pem")],
        intermediates=[_read("ca-bundle.pem")],  # issuing + root in one item
        crls=[_read("root-ca.crl.pem"), crl_der],
    )
    assert len(config.intermediates) == 2
    assert len(config.crls) == 2
    assert verify_certificate(_gateway(VALID_OINS[1]), trust=config, now=now).oin == VALID_OINS[1]


def test_trust_config_without_anchors_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigError):
        TrustConfig(anchors=())


def test_naive_now_is_refused(dev_trust: TrustConfig, now: datetime) -> None:
    with pytest.raises(TypeError):
        verify_certificate(_gateway(VALID_OINS[0]), trust=dev_trust, now=now.replace(tzinfo=None))


# --- one negative test per code -----------------------------------------------------------------


def test_certificate_from_an_unknown_root_is_untrusted_e301(
    dev_trust: TrustConfig, now: datetime, spare_key: rsa.RSAPrivateKey
) -> None:
    rogue = pki.make_ca(
        key=spare_key,
        subject=pki.ca_name(pki.ROOT_CA_NAME),  # same name as ours, different key
        not_before=now - timedelta(days=10),
        not_after=now + timedelta(days=100),
    )
    cert = _leaf(rogue, spare_key.public_key(), now)
    with pytest.raises(errors.CertificateUntrusted) as caught:
        verify_certificate(cert, trust=dev_trust, now=now)
    assert caught.value.code == "OSO-E301"
    assert caught.value.public_message == "Authentication failed."


def test_expired_certificate_is_rejected_e302(dev_trust: TrustConfig, now: datetime) -> None:
    with pytest.raises(errors.CertificateExpired) as caught:
        verify_certificate(_gateway(EXPIRED_OIN), trust=dev_trust, now=now)
    assert caught.value.code == "OSO-E302"


def test_certificate_before_its_validity_is_rejected_e303(dev_trust: TrustConfig) -> None:
    cert = _gateway(VALID_OINS[0])
    early = cert.not_valid_before_utc - timedelta(minutes=1)
    with pytest.raises(errors.CertificateNotYetValid) as caught:
        verify_certificate(cert, trust=dev_trust, now=early)
    assert caught.value.code == "OSO-E303"


def test_revoked_certificate_is_rejected_e304(dev_trust: TrustConfig, now: datetime) -> None:
    with pytest.raises(errors.CertificateRevoked) as caught:
        verify_certificate(_gateway(REVOKED_OIN), trust=dev_trust, now=now)
    assert caught.value.code == "OSO-E304"


def test_revoked_issuing_ca_rejects_its_leaves_e304(
    dev_trust: TrustConfig, now: datetime, root: pki.Authority, issuing: pki.Authority
) -> None:
    root_crl = pki.make_crl(
        issuer=root,
        this_update=now - timedelta(hours=1),
        next_update=now + timedelta(days=7),
        revoked=[(issuing.certificate.serial_number, now - timedelta(hours=1))],
        number=2,
    )
    config = replace(dev_trust, crls=(root_crl, *dev_trust.crls[1:]))
    with pytest.raises(errors.CertificateRevoked):
        verify_certificate(_gateway(VALID_OINS[0]), trust=config, now=now)


def test_missing_crl_fails_closed_e305(dev_trust: TrustConfig, now: datetime) -> None:
    only_root_crl = replace(dev_trust, crls=dev_trust.crls[:1])
    with pytest.raises(errors.CrlMissing) as caught:
        verify_certificate(_gateway(VALID_OINS[0]), trust=only_root_crl, now=now)
    assert caught.value.code == "OSO-E305"
    assert caught.value.transient is True


def test_missing_crls_are_tolerated_only_when_not_required(
    dev_trust: TrustConfig, now: datetime
) -> None:
    lenient = replace(dev_trust, crls=(), require_crl=False)
    assert verify_certificate(_gateway(VALID_OINS[0]), trust=lenient, now=now).oin is not None


def test_crl_past_its_next_update_is_stale_e306(dev_trust: TrustConfig, now: datetime) -> None:
    crl = dev_trust.crls[1]
    assert crl.next_update_utc is not None
    later = crl.next_update_utc + timedelta(minutes=1)
    with pytest.raises(errors.CrlStale) as caught:
        verify_certificate(_gateway(VALID_OINS[0]), trust=dev_trust, now=later)
    assert caught.value.code == "OSO-E306"


def test_crl_issued_after_now_is_stale(dev_trust: TrustConfig) -> None:
    crl = dev_trust.crls[1]
    before = crl.last_update_utc - timedelta(minutes=1)
    with pytest.raises(errors.CrlStale):
        verify_certificate(_gateway(VALID_OINS[0]), trust=dev_trust, now=before)


def test_stale_crl_still_proves_revocation_when_freshness_is_not_required(
    dev_trust: TrustConfig,
) -> None:
    crl = dev_trust.crls[1]
    assert crl.next_update_utc is not None
    later = crl.next_update_utc + timedelta(days=1)
    lenient = replace(dev_trust, require_crl=False)
    assert verify_certificate(_gateway(VALID_OINS[0]), trust=lenient, now=later).oin
    with pytest.raises(errors.CertificateRevoked):
        verify_certificate(_gateway(REVOKED_OIN), trust=lenient, now=later)


def test_crl_not_signed_by_the_issuer_is_rejected_e307(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority, root: pki.Authority
) -> None:
    # Claims to come from the issuing CA (its name) but is signed with the root's key, and
    # lists nothing: accepting it would un-revoke the revoked certificate.
    forged = pki.make_crl(
        issuer=pki.Authority(certificate=issuing.certificate, key=root.key),
        this_update=now - timedelta(hours=1),
        next_update=now + timedelta(days=7),
    )
    config = replace(dev_trust, crls=(dev_trust.crls[0], forged))
    with pytest.raises(errors.CrlInvalid) as caught:
        verify_certificate(_gateway(REVOKED_OIN), trust=config, now=now)
    assert caught.value.code == "OSO-E307"


def test_newest_validly_signed_crl_is_used(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority, root: pki.Authority
) -> None:
    forged_newer = pki.make_crl(
        issuer=pki.Authority(certificate=issuing.certificate, key=root.key),
        this_update=now,
        next_update=now + timedelta(days=7),
    )
    config = replace(dev_trust, crls=(*dev_trust.crls, forged_newer))
    with pytest.raises(errors.CertificateRevoked):
        verify_certificate(_gateway(REVOKED_OIN), trust=config, now=now)


def _key_usage(**changes: bool) -> x509.KeyUsage:
    base = pki.SIGN_AND_ENCIPHER
    fields = {
        "digital_signature": base.digital_signature,
        "content_commitment": base.content_commitment,
        "key_encipherment": base.key_encipherment,
        "data_encipherment": base.data_encipherment,
        "key_agreement": False,
        "key_cert_sign": base.key_cert_sign,
        "crl_sign": base.crl_sign,
        "encipher_only": False,
        "decipher_only": False,
    }
    fields.update(changes)
    return x509.KeyUsage(**fields)


@pytest.mark.parametrize(
    ("purpose", "options"),
    [
        pytest.param("signing", {"key_usage": None}, id="keyUsage-absent"),
        pytest.param(
            "signing", {"key_usage": _key_usage(digital_signature=False)}, id="sign-no-ds"
        ),
        pytest.param(
            "encryption", {"key_usage": _key_usage(key_encipherment=False)}, id="encrypt-no-ke"
        ),
        pytest.param(
            "client", {"extended_key_usage": (ExtendedKeyUsageOID.SERVER_AUTH,)}, id="client-eku"
        ),
        pytest.param(
            "server", {"extended_key_usage": (ExtendedKeyUsageOID.CLIENT_AUTH,)}, id="server-eku"
        ),
        pytest.param("client", {"extended_key_usage": None}, id="client-eku-absent"),
        pytest.param(
            "signing", {"extended_key_usage": (ExtendedKeyUsageOID.CODE_SIGNING,)}, id="sign-eku"
        ),
    ],
)
def test_wrong_key_usage_for_the_purpose_is_rejected_e308(
    purpose: trust.Purpose,
    options: dict[str, object],
    dev_trust: TrustConfig,
    now: datetime,
    issuing: pki.Authority,
    spare_key: rsa.RSAPrivateKey,
) -> None:
    cert = _leaf(issuing, spare_key.public_key(), now, **options)
    with pytest.raises(errors.CertificateUsageError) as caught:
        verify_certificate(cert, trust=dev_trust, now=now, purpose=purpose)
    assert caught.value.code == "OSO-E308"


def test_signing_certificate_without_extended_key_usage_is_accepted(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority, spare_key: rsa.RSAPrivateKey
) -> None:
    cert = _leaf(issuing, spare_key.public_key(), now, extended_key_usage=None)
    assert verify_certificate(cert, trust=dev_trust, now=now, purpose="signing").oin


def test_tls_server_certificate_cannot_act_as_client(dev_trust: TrustConfig, now: datetime) -> None:
    with pytest.raises(errors.CertificateUsageError):
        verify_certificate(
            _cert("tls-localhost.crt.pem"), trust=dev_trust, now=now, purpose="client"
        )


def test_ca_certificate_used_as_leaf_is_rejected_e309(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority, spare_key: rsa.RSAPrivateKey
) -> None:
    cert = _leaf(issuing, spare_key.public_key(), now, ca=True)
    with pytest.raises(errors.CertificateIsCa) as caught:
        verify_certificate(cert, trust=dev_trust, now=now)
    assert caught.value.code == "OSO-E309"


def test_the_issuing_ca_itself_is_no_gateway_certificate(
    dev_trust: TrustConfig, now: datetime
) -> None:
    with pytest.raises(errors.CertificateIsCa):
        verify_certificate(_cert("issuing-ca.crt.pem"), trust=dev_trust, now=now)


def test_rsa_2048_certificate_is_too_weak_e310(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority
) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _leaf(issuing, small.public_key(), now)
    with pytest.raises(errors.CertificateKeyTooWeak) as caught:
        verify_certificate(cert, trust=dev_trust, now=now)
    assert caught.value.code == "OSO-E310"


def test_non_rsa_certificate_key_is_refused(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority
) -> None:
    ec_key = ec.generate_private_key(ec.SECP384R1())
    cert = _leaf(issuing, ec_key.public_key(), now)  # type: ignore[arg-type]
    with pytest.raises(errors.CertificateKeyTooWeak):
        verify_certificate(cert, trust=dev_trust, now=now)


@pytest.mark.parametrize("bad_oin", ["12345", "0000000100000000000A", "000000010000000000011"])
def test_malformed_oin_in_subject_is_rejected_e311(
    bad_oin: str,
    dev_trust: TrustConfig,
    now: datetime,
    issuing: pki.Authority,
    spare_key: rsa.RSAPrivateKey,
) -> None:
    cert = _leaf(issuing, spare_key.public_key(), now, oin=bad_oin)
    with pytest.raises(errors.OinInvalid) as caught:
        verify_certificate(cert, trust=dev_trust, now=now)
    assert caught.value.code == "OSO-E311"


def test_check_oin_on_a_certificate_without_oin_is_rejected(
    dev_trust: TrustConfig, now: datetime
) -> None:
    verified = verify_certificate(
        _cert("tls-localhost.crt.pem"), trust=dev_trust, now=now, purpose="server"
    )
    with pytest.raises(errors.OinInvalid):
        check_oin(verified, VALID_OINS[0])


def test_check_oin_accepts_the_certificate_oin_and_rejects_another_e312(
    dev_trust: TrustConfig, now: datetime
) -> None:
    verified = verify_certificate(_gateway(VALID_OINS[0]), trust=dev_trust, now=now)
    check_oin(verified, VALID_OINS[0])
    with pytest.raises(errors.OinMismatch) as caught:
        check_oin(verified, VALID_OINS[1])
    assert caught.value.code == "OSO-E312"
    with pytest.raises(errors.OinInvalid):
        check_oin(verified, "not-an-oin")


def test_certificate_with_undecodable_extension_is_malformed_e313(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority, spare_key: rsa.RSAPrivateKey
) -> None:
    cert = (
        x509.CertificateBuilder()
        .subject_name(pki.gateway_name(organisation="Testschool", oin=VALID_OINS[0]))
        .issuer_name(issuing.certificate.subject)
        .public_key(spare_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, b"\x04\x02garbage"), critical=True
        )
        .sign(issuing.key, hashes.SHA256())
    )
    with pytest.raises(errors.CertificateMalformed) as caught:
        verify_certificate(cert, trust=dev_trust, now=now)
    assert caught.value.code == "OSO-E313"


def test_unparseable_certificate_bytes_are_malformed() -> None:
    with pytest.raises(errors.CertificateMalformed):
        keys.load_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(errors.CertificateMalformed):
        keys.load_certificates(b"\x30\x03\x02\x01\x00")
    with pytest.raises(errors.CertificateMalformed):
        keys.load_certificate(_read("ca-bundle.pem"))  # two, where one was expected


def test_a_certificate_with_an_invalid_version_is_malformed_not_a_crash() -> None:
    # cryptography raises InvalidVersion (no ValueError) for a version other than v1 / v3
    der = _cert("gateway-00000001000000000001.crt.pem").public_bytes(serialization.Encoding.DER)
    version = der.index(b"\xa0\x03\x02\x01\x02")  # [0] EXPLICIT INTEGER 2 (v3)
    tampered = der[: version + 4] + b"\x12" + der[version + 5 :]
    with pytest.raises(x509.InvalidVersion):
        x509.load_der_x509_certificate(tampered)
    with pytest.raises(errors.CertificateMalformed) as caught:
        keys.load_certificates(tampered)
    assert caught.value.code == "OSO-E313"


def test_every_trust_rejection_tells_the_peer_the_same_opaque_message() -> None:
    peer_facing = [
        cls
        for cls in errors.all_error_classes()
        if issubclass(cls, errors.TrustError) and cls.soap_fault == "Client"
    ]
    assert len(peer_facing) >= 10
    assert {cls.public_message for cls in peer_facing} == {"Authentication failed."}
    codes = {cls.code for cls in errors.all_error_classes() if issubclass(cls, errors.TrustError)}
    assert all("OSO-E300" <= code <= "OSO-E349" for code in codes)


# --- CA constraints and CRL scope ---------------------------------------------------------------


def _sub_ca(
    root: pki.Authority,
    key: rsa.RSAPrivateKey,
    now: datetime,
    eku: tuple[x509.ObjectIdentifier, ...],
) -> pki.Authority:
    return pki.make_ca(
        key=key,
        subject=pki.ca_name("Test Restricted Issuing CA"),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=100),
        issuer=root,
        path_length=0,
        extended_key_usage=eku,
    )


def test_ca_whose_extended_key_usage_excludes_the_purpose_cannot_vouch_for_it(
    dev_trust: TrustConfig, now: datetime, root: pki.Authority, spare_key: rsa.RSAPrivateKey
) -> None:
    ca = _sub_ca(root, spare_key, now, (ExtendedKeyUsageOID.SERVER_AUTH,))
    leaf = _leaf(ca, spare_key.public_key(), now)
    crl = pki.make_crl(issuer=ca, this_update=now, next_update=now + timedelta(days=1))
    config = replace(dev_trust, intermediates=(ca.certificate,), crls=(*dev_trust.crls, crl))
    assert verify_certificate(leaf, trust=config, now=now, purpose="server").oin
    with pytest.raises(errors.CertificateUntrusted):
        verify_certificate(leaf, trust=config, now=now, purpose="client")


def test_crl_limited_to_ca_certificates_does_not_cover_a_leaf(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority
) -> None:
    idp = x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=True,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuing.certificate.subject)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=1))
        .add_extension(idp, critical=True)
        .sign(issuing.key, hashes.SHA256())
    )
    config = replace(dev_trust, crls=(dev_trust.crls[0], crl))
    with pytest.raises(errors.CrlMissing):
        verify_certificate(_gateway(VALID_OINS[0]), trust=config, now=now)


def test_crl_with_an_unknown_critical_extension_is_not_used(
    dev_trust: TrustConfig, now: datetime, issuing: pki.Authority
) -> None:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuing.certificate.subject)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"),
            critical=True,
        )
        .sign(issuing.key, hashes.SHA256())
    )
    config = replace(dev_trust, crls=(dev_trust.crls[0], crl))
    with pytest.raises(errors.CrlInvalid):
        verify_certificate(_gateway(VALID_OINS[0]), trust=config, now=now)
