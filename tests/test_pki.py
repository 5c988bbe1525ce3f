"""The development PKI: the committed certs/dev set, the builder, and `oso-gateway pki init-dev`."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from oso_gateway import errors
from oso_gateway.commands import pki as pki_command
from oso_gateway.security import keys, pki
from oso_gateway.security.trust import TrustConfig, verify_certificate

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"


@pytest.fixture(scope="module")
def identities() -> dict[str, object]:
    return tomllib.loads((DEV / "identities.toml").read_text("utf-8"))


def _cert(name: str) -> x509.Certificate:
    return keys.load_certificate((DEV / name).read_bytes())


def _gateways(identities: dict[str, object]) -> list[dict[str, object]]:
    gateways = identities["gateway"]
    assert isinstance(gateways, list)
    return gateways


# --- the committed files ------------------------------------------------------------------------


def test_identities_file_lists_the_fixed_demo_identities(identities: dict[str, object]) -> None:
    listed = {
        g["oin"]: (g["name"], [(s["brin"], s["vestiging"]) for s in g["schools"]], g["status"])  # type: ignore[index]
        for g in _gateways(identities)
    }
    assert listed["00000001000000000001"] == ("Basisschool De Regenboog", [("00YY", "00")], "valid")
    assert listed["00000001000000000002"] == ("Het Dev College", [("01AB", "00")], "valid")
    assert listed["00000001000000000003"] == (
        "Dev LAS Leverancier",
        [("02CD", "00"), ("03EF", "00")],
        "valid",
    )
    assert listed["00000001000000000008"][2] == "expired"
    assert listed["00000001000000000009"][2] == "revoked"
    assert len(listed) == len(pki.DEV_IDENTITIES)
    for ident in pki.DEV_IDENTITIES:
        assert listed[ident.oin][0] == ident.name


def test_every_file_named_in_identities_exists(identities: dict[str, object]) -> None:
    named = [identities[k] for k in ("root_ca", "root_ca_key", "issuing_ca", "issuing_ca_key")]
    named += [identities["ca_bundle"], *identities["crls"]]  # type: ignore[misc]
    tls = identities["tls_server"]
    assert isinstance(tls, dict)
    named += [tls["cert"], tls["key"]]
    for g in _gateways(identities):
        named += [g["cert"], g["key"]]
    for name in named:
        assert isinstance(name, str)
        assert (DEV / name).is_file(), name


def test_committed_gateway_certificates_match_identities_and_profile(
    identities: dict[str, object],
) -> None:
    generated = datetime.fromisoformat(str(identities["generated_at"]))
    for g in _gateways(identities):
        cert = _cert(str(g["cert"]))
        key = keys.load_private_key((DEV / str(g["key"])).read_bytes())
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
        assert key.key_size == 3072
        serials = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        assert [a.value for a in serials] == [g["oin"]]
        orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        assert [a.value for a in orgs] == [g["name"]]
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment
        assert not ku.value.key_cert_sign
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in san.get_values_for_type(x509.DNSName)
        assert ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        if g["status"] == "expired":
            assert cert.not_valid_after_utc < generated
        else:
            lifetime = cert.not_valid_after_utc - generated
            assert timedelta(days=729) <= lifetime <= timedelta(days=731)


def test_committed_cas_are_proper_cas(identities: dict[str, object]) -> None:
    root = _cert(str(identities["root_ca"]))
    issuing = _cert(str(identities["issuing_ca"]))
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == pki.ROOT_CA_NAME
    assert root.issuer == root.subject
    assert issuing.issuer == root.subject
    root_key = root.public_key()
    assert isinstance(root_key, rsa.RSAPublicKey) and root_key.key_size >= 3072
    for ca, pathlen in ((root, None), (issuing, 0)):
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == pathlen
        ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = ca.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest  # type: ignore[arg-type]
        assert aki.key_identifier is not None
    assert root.not_valid_after_utc - root.not_valid_before_utc >= timedelta(days=20 * 365)
    assert issuing.not_valid_after_utc - issuing.not_valid_before_utc >= timedelta(days=10 * 365)


def test_committed_crls_revoke_the_revoked_certificate_and_are_fresh_today(
    identities: dict[str, object],
) -> None:
    # Guards the committed files, so it uses the real date: run `pki refresh-crls` when it fails.
    today = datetime.now(UTC)
    root = _cert(str(identities["root_ca"]))
    issuing = _cert(str(identities["issuing_ca"]))
    root_crl, issuing_crl = (keys.load_crl((DEV / str(n)).read_bytes()) for n in identities["crls"])  # type: ignore[attr-defined]
    assert root_crl.issuer == root.subject and len(list(root_crl)) == 0
    assert issuing_crl.issuer == issuing.subject
    assert root_crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert issuing_crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    for crl in (root_crl, issuing_crl):
        assert crl.signature_hash_algorithm is not None
        assert crl.signature_hash_algorithm.name == "sha256"
        assert crl.next_update_utc is not None
        assert crl.last_update_utc <= today
        assert crl.next_update_utc - today >= timedelta(days=30), (
            "run: oso-gateway pki refresh-crls"
        )
    by_status = {str(g["status"]): g for g in _gateways(identities) if g["status"] != "valid"}
    revoked = _cert(str(by_status["revoked"]["cert"]))
    assert issuing_crl.get_revoked_certificate_by_serial_number(revoked.serial_number)
    listed = {entry.serial_number for entry in issuing_crl}
    assert listed == {revoked.serial_number}


def test_committed_tls_certificate_serves_localhost(identities: dict[str, object]) -> None:
    tls = identities["tls_server"]
    assert isinstance(tls, dict)
    cert = _cert(tls["cert"])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert keys.load_private_key((DEV / tls["key"]).read_bytes()).key_size == 3072


def test_every_committed_private_key_carries_the_development_warning() -> None:
    key_files = sorted(DEV.glob("*.key.pem"))
    assert len(key_files) >= 8
    for path in key_files:
        first = path.read_text("utf-8").splitlines()[0]
        assert "DEVELOPMENT ONLY" in first and "DO NOT USE IN PRODUCTION" in first, path.name
    readme = (DEV / "README.md").read_text("utf-8")
    assert readme == pki.readme_text(pki.DEV_IDENTITIES)
    assert "NEVER USE IN PRODUCTION" in readme
    assert "pki init-dev --out certs/dev --force" in readme


# --- the builder --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reused_keys() -> dict[int, rsa.RSAPrivateKey]:
    """Committed keys stand in for fresh ones, so that building is quick (shape is what counts)."""
    return {
        4096: keys.load_private_key((DEV / "root-ca.key.pem").read_bytes()),
        3072: keys.load_private_key((DEV / "issuing-ca.key.pem").read_bytes()),
    }


@pytest.fixture(scope="module")
def built(reused_keys: dict[int, rsa.RSAPrivateKey]) -> pki.DevPki:
    return pki.build_dev_pki(
        now=datetime(2030, 6, 1, 12, 0, 0, 123456, tzinfo=UTC), key_factory=reused_keys.__getitem__
    )


def test_builder_produces_the_same_file_set_as_committed(built: pki.DevPki) -> None:
    assert set(built.files) == {p.name for p in DEV.iterdir() if p.is_file()}
    assert built.generated_at == datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_built_pki_verifies_valid_and_rejects_revoked_and_expired(built: pki.DevPki) -> None:
    config = TrustConfig.from_pem(
        anchors=[built.files[pki.ROOT_CERT_FILE]],
        intermediates=[built.files[pki.ISSUING_CERT_FILE]],
        crls=[built.files[pki.ROOT_CRL_FILE], built.files[pki.ISSUING_CRL_FILE]],
    )
    at = built.generated_at + timedelta(days=300)
    outcomes: dict[str, str] = {}
    for ident in built.identities:
        cert = keys.load_certificate(built.files[ident.cert_file])
        try:
            outcomes[ident.oin] = verify_certificate(cert, trust=config, now=at).oin or ""
        except errors.TrustError as exc:
            outcomes[ident.oin] = exc.code
    expected = {"expired": "OSO-E302", "revoked": "OSO-E304"}
    assert outcomes == {i.oin: expected.get(i.status, i.oin) for i in built.identities}
    identities = tomllib.loads(built.files[pki.IDENTITIES_FILE].decode("utf-8"))
    assert identities["generated_at"] == "2030-06-01T12:00:00+00:00"


def test_builder_refuses_a_naive_time() -> None:
    with pytest.raises(TypeError):
        pki.build_dev_pki(now=datetime(2030, 1, 1))


# --- the command --------------------------------------------------------------------------------


@click.group()
def main() -> None:
    """Only this module's commands, so other command modules cannot break these tests."""


pki_command.register(main)


def test_init_dev_writes_a_usable_pki_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    runner = CliRunner()
    first = runner.invoke(
        main, ["pki", "init-dev", "--out", str(out), "--now", "2031-02-03T04:05:06Z"]
    )
    assert first.exit_code == 0, first.output
    assert {p.name for p in out.iterdir()} == {p.name for p in DEV.iterdir() if p.is_file()}
    crl = keys.load_crl((out / pki.ISSUING_CRL_FILE).read_bytes())
    assert crl.last_update_utc == datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert keys.load_private_key((out / "gateway-00000001000000000001.key.pem").read_bytes())

    again = runner.invoke(main, ["pki", "init-dev", "--out", str(out)])
    assert again.exit_code == 2
    assert "--force" in again.output


def test_init_dev_rejects_a_malformed_time(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["pki", "init-dev", "--out", str(tmp_path), "--now", "yesterday"]
    )
    assert result.exit_code == 2
    assert not list(tmp_path.iterdir())


def _verify_args(cert: str, *extra: str) -> list[str]:
    crl = keys.load_crl((DEV / pki.ISSUING_CRL_FILE).read_bytes())
    at = (crl.last_update_utc + timedelta(days=1)).isoformat()
    return [
        "pki",
        "verify",
        str(DEV / cert),
        "--anchor",
        str(DEV / pki.ROOT_CERT_FILE),
        "--intermediate",
        str(DEV / pki.ISSUING_CERT_FILE),
        "--crl",
        str(DEV / pki.ROOT_CRL_FILE),
        "--crl",
        str(DEV / pki.ISSUING_CRL_FILE),
        "--now",
        at,
        *extra,
    ]


def test_pki_verify_reports_oin_and_chain_of_a_good_certificate() -> None:
    result = CliRunner().invoke(main, _verify_args("gateway-00000001000000000002.crt.pem"))
    assert result.exit_code == 0, result.output
    assert "OIN 00000001000000000002" in result.output
    assert pki.ROOT_CA_NAME in result.output


def test_pki_verify_exits_1_with_the_code_of_a_rejected_certificate() -> None:
    revoked = CliRunner().invoke(main, _verify_args("gateway-00000001000000000009.crt.pem"))
    assert revoked.exit_code == 1
    assert revoked.output.startswith("REJECTED OSO-E304")
    tls_as_client = CliRunner().invoke(
        main, _verify_args("tls-localhost.crt.pem", "--purpose", "client")
    )
    assert tls_as_client.exit_code == 1
    assert "OSO-E308" in tls_as_client.output


def test_pki_verify_without_crls_fails_closed_unless_told_otherwise() -> None:
    args = [a for a in _verify_args("gateway-00000001000000000001.crt.pem") if "crl.pem" not in a]
    args = [a for a in args if a != "--crl"]
    strict = CliRunner().invoke(main, args)
    assert strict.exit_code == 1 and "OSO-E305" in strict.output
    lenient = CliRunner().invoke(main, [*args, "--no-require-crl"])
    assert lenient.exit_code == 0, lenient.output


def test_refresh_crls_renews_them_with_the_same_revocations_and_keys(tmp_path: Path) -> None:
    for path in DEV.iterdir():
        if path.is_file():
            (tmp_path / path.name).write_bytes(path.read_bytes())
    old = keys.load_crl((DEV / pki.ISSUING_CRL_FILE).read_bytes())
    result = CliRunner().invoke(
        main, ["pki", "refresh-crls", "--dir", str(tmp_path), "--now", "2040-01-01T00:00:00Z"]
    )
    assert result.exit_code == 0, result.output
    new = keys.load_crl((tmp_path / pki.ISSUING_CRL_FILE).read_bytes())
    assert new.last_update_utc == datetime(2040, 1, 1, tzinfo=UTC)
    assert new.next_update_utc == datetime(2040, 1, 1, tzinfo=UTC) + timedelta(days=pki.CRL_DAYS)
    assert {e.serial_number for e in new} == {e.serial_number for e in old}
    assert new.is_signature_valid(_cert(pki.ISSUING_CERT_FILE).public_key())  # type: ignore[arg-type]
    number = new.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    root_crl = keys.load_crl((tmp_path / pki.ROOT_CRL_FILE).read_bytes())
    assert root_crl.last_update_utc == new.last_update_utc
    for name in (pki.ROOT_KEY_FILE, pki.ISSUING_CERT_FILE, "identities.toml"):
        assert (tmp_path / name).read_bytes() == (DEV / name).read_bytes()


def test_refresh_crls_refuses_a_crl_from_another_issuer(tmp_path: Path) -> None:
    for path in DEV.iterdir():
        if path.is_file():
            (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / pki.ISSUING_CRL_FILE).write_bytes((DEV / pki.ROOT_CRL_FILE).read_bytes())
    result = CliRunner().invoke(main, ["pki", "refresh-crls", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "not issued by this authority" in result.output
