"""The development PKI: certificate and CRL builders, and the committed ``certs/dev`` set. Pure.

``build_dev_pki`` returns every file of ``certs/dev`` as bytes keyed by file name; the
``oso-gateway pki init-dev`` command writes them. The builders (``make_ca``, ``make_end_entity``,
``make_crl``) are also what tests use to make intentionally bad certificates.

Nothing here is for production: the keys are generated without any ceremony and committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEV_WARNING = "# DEVELOPMENT ONLY — NOT SECRET — DO NOT USE IN PRODUCTION\n"

ROOT_CA_NAME = "OSO Gateway Dev Root CA"
ISSUING_CA_NAME = "OSO Gateway Dev Issuing CA"
DEV_ORGANISATION = "OSO Gateway Development"

ROOT_DAYS = 20 * 365 + 5
ISSUING_DAYS = 10 * 365 + 2
GATEWAY_DAYS = 2 * 365
CRL_DAYS = 365
#: CAs start two years back, so that the expired example certificate lies inside their validity.
CA_BACKDATE = timedelta(days=2 * 365)
#: End-entity certificates start an hour back, to tolerate small clock differences between peers.
EE_BACKDATE = timedelta(hours=1)

SIGN_AND_ENCIPHER = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
GATEWAY_EKU: tuple[x509.ObjectIdentifier, ...] = (
    ExtendedKeyUsageOID.CLIENT_AUTH,
    ExtendedKeyUsageOID.SERVER_AUTH,
)
LOCALHOST_SAN: tuple[x509.GeneralName, ...] = (
    x509.DNSName("localhost"),
    x509.IPAddress(ip_address("127.0.0.1")),
    x509.IPAddress(ip_address("::1")),
)


@dataclass(frozen=True, kw_only=True)
class School:
    brin: str
    vestiging: str


@dataclass(frozen=True, kw_only=True)
class DevIdentity:
    """A demo gateway identity. ``status`` says which example it is: valid, revoked or expired."""

    name: str
    oin: str
    schools: tuple[School, ...] = ()
    status: str = "valid"

    @property
    def key_file(self) -> str:
        return f"gateway-{self.oin}.key.pem"

    @property
    def cert_file(self) -> str:
        return f"gateway-{self.oin}.crt.pem"


#: The fixed demo identities other parts of the project (demo, tests) rely on.
DEV_IDENTITIES: tuple[DevIdentity, ...] = (
    DevIdentity(
        name="Basisschool De Regenboog",
        oin="00000001000000000001",
        schools=(School(brin="00YY", vestiging="00"),),
    ),
    DevIdentity(
        name="Het Dev College",
        oin="00000001000000000002",
        schools=(School(brin="01AB", vestiging="00"),),
    ),
    DevIdentity(
        name="Dev LAS Leverancier",
        oin="00000001000000000003",
        schools=(School(brin="02CD", vestiging="00"), School(brin="03EF", vestiging="00")),
    ),
    DevIdentity(name="Dev Verlopen Gateway", oin="00000001000000000008", status="expired"),
    DevIdentity(name="Dev Ingetrokken Gateway", oin="00000001000000000009", status="revoked"),
)

ROOT_CERT_FILE = "root-ca.crt.pem"
ROOT_KEY_FILE = "root-ca.key.pem"
ROOT_CRL_FILE = "root-ca.crl.pem"
ISSUING_CERT_FILE = "issuing-ca.crt.pem"
ISSUING_KEY_FILE = "issuing-ca.key.pem"
ISSUING_CRL_FILE = "issuing-ca.crl.pem"
CA_BUNDLE_FILE = "ca-bundle.pem"
TLS_CERT_FILE = "tls-localhost.crt.pem"
TLS_KEY_FILE = "tls-localhost.key.pem"
IDENTITIES_FILE = "identities.toml"
README_FILE = "README.md"


@dataclass(frozen=True, kw_only=True)
class Authority:
    """A CA: its certificate and private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass(frozen=True, kw_only=True)
class DevPki:
    """The generated development PKI: every file's bytes by file name, plus the two CAs."""

    files: Mapping[str, bytes]
    root: Authority
    issuing: Authority
    generated_at: datetime
    identities: tuple[DevIdentity, ...] = field(default=DEV_IDENTITIES)


KeyFactory = Callable[[int], rsa.RSAPrivateKey]


def new_rsa_key(bits: int = 3072) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def gateway_name(
    *, organisation: str, oin: str | None, common_name: str | None = None
) -> x509.Name:
    """Subject as in PKIoverheid: C, O, CN and the OIN in serialNumber."""
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name or organisation),
    ]
    if oin is not None:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, oin))
    return x509.Name(attrs)


def make_ca(
    *,
    key: rsa.RSAPrivateKey,
    subject: x509.Name,
    not_before: datetime,
    not_after: datetime,
    issuer: Authority | None = None,
    path_length: int | None = None,
    extended_key_usage: Sequence[x509.ObjectIdentifier] | None = None,
) -> Authority:
    """A CA certificate: self-signed root when ``issuer`` is None, else an intermediate."""
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
        )
    return Authority(certificate=builder.sign(signer_key, hashes.SHA256()), key=key)


def make_end_entity(
    *,
    public_key: rsa.RSAPublicKey,
    issuer: Authority,
    subject: x509.Name,
    not_before: datetime,
    not_after: datetime,
    key_usage: x509.KeyUsage | None = SIGN_AND_ENCIPHER,
    extended_key_usage: Sequence[x509.ObjectIdentifier] | None = GATEWAY_EKU,
    san: Sequence[x509.GeneralName] = LOCALHOST_SAN,
    ca: bool = False,
) -> x509.Certificate:
    """An end-entity certificate (``ca=True`` and odd usages only for negative tests)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if extended_key_usage is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


def make_crl(
    *,
    issuer: Authority,
    this_update: datetime,
    next_update: datetime,
    revoked: Sequence[tuple[int, datetime]] = (),
    number: int = 1,
    algorithm: hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None = None,
) -> x509.CertificateRevocationList:
    """A CRL from ``issuer`` listing ``(serial, revocation date)`` pairs; SHA-256 by default."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(issuer.key, algorithm or hashes.SHA256())


def reissue_crl(
    old: x509.CertificateRevocationList, *, issuer: Authority, now: datetime
) -> x509.CertificateRevocationList:
    """The same revocations as ``old``, freshly issued at ``now`` (next number, one year valid)."""
    if now.tzinfo is None:
        raise TypeError("now must be timezone-aware")
    if old.issuer != issuer.certificate.subject:
        raise ValueError("the CRL was not issued by this authority")
    now = now.astimezone(UTC).replace(microsecond=0)
    try:
        number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    except x509.ExtensionNotFound:
        number = 1
    return make_crl(
        issuer=issuer,
        this_update=now,
        next_update=now + timedelta(days=CRL_DAYS),
        revoked=[(entry.serial_number, entry.revocation_date_utc) for entry in old],
        number=number,
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM, preceded by the development-only warning line."""
    body = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DEV_WARNING.encode("utf-8") + body


def build_dev_pki(
    *,
    now: datetime,
    identities: Sequence[DevIdentity] = DEV_IDENTITIES,
    key_factory: KeyFactory = new_rsa_key,
    root_bits: int = 4096,
) -> DevPki:
    """Generate the whole development PKI at ``now``; every file's bytes keyed by file name."""
    if now.tzinfo is None:
        raise TypeError("now must be timezone-aware")
    now = now.astimezone(UTC).replace(microsecond=0)
    files: dict[str, bytes] = {}

    ca_start = now - CA_BACKDATE
    root = make_ca(
        key=key_factory(root_bits),
        subject=ca_name(ROOT_CA_NAME),
        not_before=ca_start,
        not_after=ca_start + timedelta(days=ROOT_DAYS),
    )
    issuing = make_ca(
        key=key_factory(3072),
        subject=ca_name(ISSUING_CA_NAME),
        not_before=ca_start,
        not_after=ca_start + timedelta(days=ISSUING_DAYS),
        issuer=root,
        path_length=0,
    )
    files[ROOT_CERT_FILE] = cert_pem(root.certificate)
    files[ROOT_KEY_FILE] = key_pem(root.key)
    files[ISSUING_CERT_FILE] = cert_pem(issuing.certificate)
    files[ISSUING_KEY_FILE] = key_pem(issuing.key)
    files[CA_BUNDLE_FILE] = cert_pem(issuing.certificate) + cert_pem(root.certificate)

    revoked: list[tuple[int, datetime]] = []
    for ident in identities:
        key = key_factory(3072)
        if ident.status == "expired":
            start, end = now - timedelta(days=395), now - timedelta(days=30)
        else:
            start, end = now - EE_BACKDATE, now + timedelta(days=GATEWAY_DAYS)
        cert = make_end_entity(
            public_key=key.public_key(),
            issuer=issuing,
            subject=gateway_name(organisation=ident.name, oin=ident.oin),
            not_before=start,
            not_after=end,
        )
        if ident.status == "revoked":
            revoked.append((cert.serial_number, now))
        files[ident.key_file] = key_pem(key)
        files[ident.cert_file] = cert_pem(cert)

    tls_key = key_factory(3072)
    tls_cert = make_end_entity(
        public_key=tls_key.public_key(),
        issuer=issuing,
        subject=x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANISATION),
                x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            ]
        ),
        not_before=now - EE_BACKDATE,
        not_after=now + timedelta(days=GATEWAY_DAYS),
        extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    files[TLS_KEY_FILE] = key_pem(tls_key)
    files[TLS_CERT_FILE] = cert_pem(tls_cert)

    next_update = now + timedelta(days=CRL_DAYS)
    files[ISSUING_CRL_FILE] = crl_pem(
        make_crl(issuer=issuing, this_update=now, next_update=next_update, revoked=revoked)
    )
    files[ROOT_CRL_FILE] = crl_pem(make_crl(issuer=root, this_update=now, next_update=next_update))
    files[IDENTITIES_FILE] = identities_toml(identities, generated_at=now).encode("utf-8")
    files[README_FILE] = readme_text(identities).encode("utf-8")
    return DevPki(
        files=files, root=root, issuing=issuing, generated_at=now, identities=tuple(identities)
    )


def _q(value: str) -> str:
    """A TOML basic string (JSON string escaping is valid TOML for these values)."""
    return json.dumps(value, ensure_ascii=False)


def identities_toml(identities: Sequence[DevIdentity], *, generated_at: datetime) -> str:
    """The machine-readable list of ``certs/dev`` (read it with ``tomllib``)."""
    lines = [
        "# Development PKI of oso-gateway: DEVELOPMENT ONLY, NOT SECRET, NEVER USE IN PRODUCTION.",
        "# Generated by `oso-gateway pki init-dev`; paths are relative to this directory.",
        f"generated_at = {_q(generated_at.isoformat())}",
        f"root_ca = {_q(ROOT_CERT_FILE)}",
        f"root_ca_key = {_q(ROOT_KEY_FILE)}",
        f"issuing_ca = {_q(ISSUING_CERT_FILE)}",
        f"issuing_ca_key = {_q(ISSUING_KEY_FILE)}",
        f"ca_bundle = {_q(CA_BUNDLE_FILE)}",
        f"crls = [{_q(ROOT_CRL_FILE)}, {_q(ISSUING_CRL_FILE)}]",
        "",
        "[tls_server]",
        'dns = ["localhost"]',
        'ip = ["127.0.0.1", "::1"]',
        f"cert = {_q(TLS_CERT_FILE)}",
        f"key = {_q(TLS_KEY_FILE)}",
    ]
    for ident in identities:
        schools = ", ".join(
            f"{{ brin = {_q(s.brin)}, vestiging = {_q(s.vestiging)} }}" for s in ident.schools
        )
        lines += [
            "",
            "[[gateway]]",
            f"name = {_q(ident.name)}",
            f"oin = {_q(ident.oin)}",
            f"status = {_q(ident.status)}",
            f"schools = [{schools}]",
            f"cert = {_q(ident.cert_file)}",
            f"key = {_q(ident.key_file)}",
        ]
    return "\n".join(lines) + "\n"


def readme_text(identities: Sequence[DevIdentity]) -> str:
    rows = "\n".join(
        f"| `{i.cert_file}` / `{i.key_file}` | {i.name} | `{i.oin}` | "
        f"{', '.join(s.brin + s.vestiging for s in i.schools) or '—'} | {i.status} |"
        for i in identities
    )
    return f"""# certs/dev — development PKI

# ⚠ DEVELOPMENT ONLY — THESE PRIVATE KEYS ARE PUBLIC — NEVER USE IN PRODUCTION ⚠

Every private key in this directory is committed to a public repository. Anyone can sign and
decrypt with them. A production gateway trusts PKIoverheid (see `docs/pki.md`), never this
root CA. Each key file starts with a warning line before `-----BEGIN`.

## Regenerate

    make pki
    # or: oso-gateway pki init-dev --out certs/dev --force [--now 2026-01-01T00:00:00Z]

This makes new random keys (the shape is always the same, the bytes differ); commit the result.
Anything signed or encrypted with the old keys (test vectors) must then be made again.

The CRLs are valid for one year (`nextUpdate`). To renew only them, keeping every key and
certificate:

    oso-gateway pki refresh-crls --dir certs/dev

## Files

| File | What |
|------|------|
| `{ROOT_CERT_FILE}` / `{ROOT_KEY_FILE}` | "{ROOT_CA_NAME}", RSA-4096, 20 years: the trust anchor |
| `{ISSUING_CERT_FILE}` / `{ISSUING_KEY_FILE}` | "{ISSUING_CA_NAME}", RSA-3072, 10 y, pathlen 0 |
| `{CA_BUNDLE_FILE}` | issuing CA + root CA, for TLS clients (`requests` `verify=`) |
| `{ROOT_CRL_FILE}` | the root's CRL (empty) |
| `{ISSUING_CRL_FILE}` | the issuing CA's CRL: revokes the OIN …0009 certificate |
| `{TLS_CERT_FILE}` / `{TLS_KEY_FILE}` | TLS server cert: `localhost`, `127.0.0.1`, `::1` |
| `{IDENTITIES_FILE}` | machine-readable list of all of the above |

Gateway certificates (RSA-3072, OIN in subject serialNumber, keyUsage digitalSignature +
keyEncipherment, extendedKeyUsage clientAuth + serverAuth, SAN localhost / 127.0.0.1 / ::1,
valid two years):

| Files | Gateway | OIN | Schools (BRIN+vestiging) | Status |
|-------|---------|-----|--------------------------|--------|
{rows}
"""
