"""Certificate trust: path validation, usage, key strength, revocation by CRL, OIN. Pure.

``verify_certificate`` checks, in this order, and raises the first failure as its own typed error:

1. the leaf is well-formed (extensions parse) ................................ OSO-E313
2. the leaf is valid at ``now`` (not before / not after) ...................... OSO-E303 / E302
3. the leaf is not a CA (basicConstraints ca=True or keyCertSign) ............. OSO-E309
4. the leaf's key is RSA of at least 3072 bits ................................ OSO-E310
5. keyUsage / extendedKeyUsage fit the purpose ................................ OSO-E308
6. the subject serialNumber, when present, is a well-formed OIN ................ OSO-E311
7. a path to a trust anchor (``cryptography.x509.verification``) ............... OSO-E301
8. revocation: for every certificate below the anchor, a CRL signed by its
   issuer (E307 if the signature fails), fresh at ``now`` (E306), present
   (E305), and not listing the certificate (E304).

Steps 2-6 run before path building so that each failure gets its own code (the library reports
all of them as one generic error). ``check_oin`` binds a verified certificate to an expected OIN.

Memoisation. A ``TrustConfig`` is immutable, so for one config the outcome of the steps above
for a given leaf (exact DER), purpose and extra intermediates depends on ``now`` only through
the notBefore/notAfter of the chain's certificates and the thisUpdate/nextUpdate of the CRLs
used. Each config keeps a bounded LRU cache of *successes* with that validity window and serves
one only when ``now`` lies inside it; a failure is never cached, so every rejection is computed
afresh. A CRL's signature check against an issuer is cached the same way (a pure function).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from oso_gateway.errors import (
    CertificateExpired,
    CertificateIsCa,
    CertificateKeyTooWeak,
    CertificateMalformed,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUntrusted,
    CertificateUsageError,
    ConfigError,
    CrlInvalid,
    CrlMissing,
    CrlStale,
    OinInvalid,
    OinMismatch,
)
from oso_gateway.security.keys import (
    MIN_RSA_BITS,
    is_valid_oin,
    load_certificates,
    load_crls,
    require_oin,
    subject_serial_numbers,
)

Purpose = Literal["client", "server", "signing", "encryption"]

#: extendedKeyUsage required per purpose. For client/server the EKU must be present and hold the
#: TLS purpose; for signing/encryption an absent EKU is fine, a present one must hold one of these.
_EKU_REQUIRED: dict[str, frozenset[x509.ObjectIdentifier]] = {
    "client": frozenset({ExtendedKeyUsageOID.CLIENT_AUTH}),
    "server": frozenset({ExtendedKeyUsageOID.SERVER_AUTH}),
}
_EKU_IF_PRESENT: dict[str, frozenset[x509.ObjectIdentifier]] = {
    "signing": frozenset(
        {
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning (RFC 9336)
        }
    ),
    "encryption": frozenset(
        {
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
        }
    ),
}
_ANY_EKU = x509.ObjectIdentifier("2.5.29.37.0")
_CRL_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
#: CRL extensions we understand; a CRL with any other critical extension is not used (RFC 5280).
_CRL_KNOWN_CRITICAL = (x509.IssuingDistributionPoint, x509.DeltaCRLIndicator)
#: most entries in each of a TrustConfig's caches (least recently used go first)
CACHE_SIZE = 1024


class _LruCache:
    """A small thread-safe LRU map (pure: no clock, no I/O)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._data: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


@dataclass(frozen=True, kw_only=True)
class TrustConfig:
    """What we trust: anchors (root CAs), known issuing CAs, and the CRLs to check against."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    #: fail closed when a CRL for an issuer is missing or stale
    require_crl: bool = True
    #: most intermediates between leaf and anchor
    max_chain_depth: int = 4
    #: verification results of this very object (never shared with another TrustConfig, not
    #: copied by ``dataclasses.replace``, not part of equality)
    _verified: _LruCache = field(
        init=False, repr=False, compare=False, hash=False, default_factory=_LruCache
    )
    _crl_signatures: _LruCache = field(
        init=False, repr=False, compare=False, hash=False, default_factory=_LruCache
    )

    def __post_init__(self) -> None:
        # Tuples whatever was passed: the config (and so its caches) must not change afterwards.
        for name in ("anchors", "intermediates", "crls"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.anchors:
            raise ConfigError("trust configuration has no trust anchors")

    @classmethod
    def from_pem(
        cls,
        *,
        anchors: Sequence[bytes],
        intermediates: Sequence[bytes] = (),
        crls: Sequence[bytes] = (),
        require_crl: bool = True,
    ) -> TrustConfig:
        """Build from PEM bytes; each item may hold several blocks. CRLs may also be DER."""
        return cls(
            anchors=tuple(c for item in anchors for c in load_certificates(item)),
            intermediates=tuple(c for item in intermediates for c in load_certificates(item)),
            crls=tuple(c for item in crls for c in load_crls(item)),
            require_crl=require_crl,
        )


@dataclass(frozen=True, kw_only=True)
class VerifiedCertificate:
    """A certificate that passed ``verify_certificate``; use only what this says was verified."""

    certificate: x509.Certificate
    #: leaf first, up to and including the anchor
    chain: tuple[x509.Certificate, ...]
    oin: str | None
    fingerprint_sha256: str
    not_after: datetime


def fingerprint(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER (for logs and pinning)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def oin_of(cert: x509.Certificate) -> str | None:
    """The OIN in the subject serialNumber, None when absent; ``OinInvalid`` when malformed."""
    values = subject_serial_numbers(cert)
    if not values:
        return None
    if len(values) > 1 or not is_valid_oin(values[0]):
        raise OinInvalid(f"subject serialNumber is not one 20-digit OIN ({_fp(cert)})")
    return values[0]


def check_oin(verified: VerifiedCertificate, expected_oin: str) -> None:
    """Raise ``OinMismatch`` (E312) unless the verified certificate carries ``expected_oin``."""
    require_oin(expected_oin)
    if verified.oin is None:
        raise OinInvalid(f"certificate carries no OIN ({verified.fingerprint_sha256})")
    if verified.oin != expected_oin:
        raise OinMismatch(
            f"certificate OIN {verified.oin} is not the expected {expected_oin} "
            f"({verified.fingerprint_sha256})"
        )


def verify_certificate(
    cert: x509.Certificate,
    *,
    trust: TrustConfig,
    now: datetime,
    purpose: Purpose = "signing",
    extra_intermediates: Sequence[x509.Certificate] = (),
) -> VerifiedCertificate:
    """Verify ``cert`` for ``purpose`` at ``now`` against ``trust``; raise a ``TrustError``.

    A success for the same DER, purpose and extra intermediates under the same ``trust`` object
    is reused while ``now`` stays inside its validity window (see the module docstring).
    """
    now = _utc(now)
    key = (der_of(cert), purpose, tuple(der_of(c) for c in extra_intermediates))
    cached = trust._verified.get(key)
    if isinstance(cached, _Window) and cached.not_before <= now < cached.not_after:
        return cached.result
    result, window = _verify_uncached(
        cert, trust=trust, now=now, purpose=purpose, extra_intermediates=extra_intermediates
    )
    if window is not None:
        trust._verified.put(key, window)
    return result


#: The DER of certificates seen lately, by object: ``public_bytes`` encodes the certificate again on
#: every call (about 14 µs, as much as an RSA verification). An entry holds its certificate, so
#: the object's id cannot be taken by another while the entry lives; a certificate never changes.
_DER_BY_OBJECT = _LruCache()


def der_of(cert: x509.Certificate) -> bytes:
    """``cert``'s DER encoding (remembered for the same object)."""
    entry = _DER_BY_OBJECT.get(id(cert))
    if isinstance(entry, tuple) and entry[0] is cert:
        der: bytes = entry[1]
        return der
    der = cert.public_bytes(Encoding.DER)
    _DER_BY_OBJECT.put(id(cert), (cert, der))
    return der


@dataclass(frozen=True)
class _Window:
    """A verification success and the half-open interval of ``now`` in which it holds."""

    result: VerifiedCertificate
    not_before: datetime
    not_after: datetime


def _verify_uncached(
    cert: x509.Certificate,
    *,
    trust: TrustConfig,
    now: datetime,
    purpose: Purpose,
    extra_intermediates: Sequence[x509.Certificate],
) -> tuple[VerifiedCertificate, _Window | None]:
    """Run every check; the result and its validity window (None: do not cache)."""
    _check_well_formed(cert)
    _check_validity(cert, now)
    _check_not_ca(cert)
    _check_key(cert)
    _check_usage(cert, purpose)
    oin = oin_of(cert)
    chain = _build_path(cert, trust=trust, now=now, purpose=purpose, extra=extra_intermediates)
    lower = [c.not_valid_before_utc for c in chain]
    upper = [c.not_valid_after_utc for c in chain]
    cacheable = True
    for child, issuer in itertools.pairwise(chain):
        crl = _check_revocation(child, issuer, trust=trust, now=now)
        next_update = crl.next_update_utc if crl is not None else None
        if crl is None or next_update is None:
            cacheable = False  # no CRL or a stale one accepted (require_crl=False): recompute
        else:
            lower.append(crl.last_update_utc)
            upper.append(next_update)
    result = VerifiedCertificate(
        certificate=cert,
        chain=chain,
        oin=oin,
        fingerprint_sha256=fingerprint(cert),
        not_after=cert.not_valid_after_utc,
    )
    # The checks accept notBefore <= now <= notAfter (likewise for a CRL's update times); the
    # window is the intersection, kept half-open so its end is always re-verified.
    window = _Window(result, max(lower), min(upper)) if cacheable else None
    return result, window


# --- the steps ----------------------------------------------------------------------------------


def _fp(cert: x509.Certificate) -> str:
    return "sha256:" + fingerprint(cert)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise TypeError("now must be timezone-aware")
    return now.astimezone(UTC)


def _check_well_formed(cert: x509.Certificate) -> None:
    try:
        if cert.version is not x509.Version.v3:
            raise CertificateMalformed(f"not an X.509 v3 certificate ({_fp(cert)})")
        _ = cert.extensions
        _ = cert.public_key()
        # decoded lazily too: a subject or issuer that does not parse failed later, untyped
        # (found by fuzzing open_message)
        _ = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        _ = cert.not_valid_before_utc, cert.not_valid_after_utc
    except CertificateMalformed:
        raise
    except Exception as exc:  # cryptography raises ValueError, DuplicateExtension, Unsupported…
        raise CertificateMalformed(
            f"certificate cannot be decoded: {type(exc).__name__} ({_fp(cert)})"
        ) from None


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValid(
            f"certificate is valid from {cert.not_valid_before_utc.isoformat()} ({_fp(cert)})"
        )
    if now > cert.not_valid_after_utc:
        raise CertificateExpired(
            f"certificate expired at {cert.not_valid_after_utc.isoformat()} ({_fp(cert)})"
        )


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_not_ca(cert: x509.Certificate) -> None:
    bc = _ext(cert, x509.BasicConstraints)
    ku = _ext(cert, x509.KeyUsage)
    if (isinstance(bc, x509.BasicConstraints) and bc.ca) or (
        isinstance(ku, x509.KeyUsage) and ku.key_cert_sign
    ):
        raise CertificateIsCa(f"a CA certificate is used as an end-entity ({_fp(cert)})")


def _check_key(cert: x509.Certificate) -> None:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateKeyTooWeak(f"key type {type(key).__name__} is not allowed ({_fp(cert)})")
    if key.key_size < MIN_RSA_BITS:
        raise CertificateKeyTooWeak(
            f"RSA key of {key.key_size} bits is below {MIN_RSA_BITS} ({_fp(cert)})"
        )


def _check_usage(cert: x509.Certificate, purpose: Purpose) -> None:
    ku = _ext(cert, x509.KeyUsage)
    if not isinstance(ku, x509.KeyUsage):
        raise CertificateUsageError(f"certificate has no keyUsage ({_fp(cert)})")
    needed = "key_encipherment" if purpose == "encryption" else "digital_signature"
    if not getattr(ku, needed):
        raise CertificateUsageError(f"keyUsage lacks {needed} for {purpose} ({_fp(cert)})")
    eku = _ext(cert, x509.ExtendedKeyUsage)
    usages = set(eku) if isinstance(eku, x509.ExtendedKeyUsage) else None
    if purpose in _EKU_REQUIRED:
        if usages is None or not usages & _EKU_REQUIRED[purpose]:
            raise CertificateUsageError(
                f"extendedKeyUsage does not allow {purpose} TLS use ({_fp(cert)})"
            )
    elif usages is not None and not usages & _EKU_IF_PRESENT[purpose]:
        raise CertificateUsageError(f"extendedKeyUsage does not allow {purpose} ({_fp(cert)})")


def _build_path(
    cert: x509.Certificate,
    *,
    trust: TrustConfig,
    now: datetime,
    purpose: Purpose,
    extra: Sequence[x509.Certificate],
) -> tuple[x509.Certificate, ...]:
    # The end-entity extension policy is permissive on purpose: usage was checked above for the
    # purpose at hand (the library's client verifier would otherwise demand clientAuth and SANs).
    # CAs get the library's web-PKI profile, except that an extendedKeyUsage on a CA (which
    # constrains what it may issue for) is checked against our purpose instead of clientAuth.
    allowed = _EKU_REQUIRED.get(purpose) or _EKU_IF_PRESENT[purpose]

    def ca_eku(_policy: Policy, ca: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
        if eku is not None and not (set(eku) & (allowed | {_ANY_EKU})):
            raise ValueError(f"CA extendedKeyUsage excludes {purpose}")

    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, ca_eku
    )
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust.anchors)))
        .time(now)
        .max_chain_depth(trust.max_chain_depth)
        .extension_policies(
            ca_policy=ca_policy,
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(cert, [*trust.intermediates, *extra])
    except VerificationError as exc:
        raise CertificateUntrusted(
            f"no valid path to a trust anchor: {_short(str(exc))} ({_fp(cert)})"
        ) from None
    return tuple(verified.chain)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_revocation(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    trust: TrustConfig,
    now: datetime,
) -> x509.CertificateRevocationList | None:
    """Raise unless ``cert`` is not revoked; the fresh CRL relied on (None: none or stale)."""
    candidates = [
        crl
        for crl in trust.crls
        if crl.issuer == issuer.subject and _crl_is_complete_for(crl, cert)
    ]
    if not candidates:
        if trust.require_crl:
            raise CrlMissing(f"no CRL from issuer {issuer.subject.rfc4514_string()}")
        return None
    good = [crl for crl in candidates if _crl_signed_by_cached(crl, issuer, trust)]
    if not good:
        raise CrlInvalid(
            f"CRL for issuer {issuer.subject.rfc4514_string()} is not validly signed by it"
        )
    crl = max(good, key=lambda c: c.last_update_utc)
    next_update = crl.next_update_utc
    fresh = crl.last_update_utc <= now and next_update is not None and now <= next_update
    if not fresh:
        if trust.require_crl:
            raise CrlStale(
                f"CRL of {issuer.subject.rfc4514_string()} is not current "
                f"(thisUpdate {crl.last_update_utc.isoformat()}, nextUpdate "
                f"{next_update.isoformat() if next_update else 'absent'})"
            )
        # Not required to be fresh: an old CRL still proves what it lists as revoked.
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        raise CertificateRevoked(
            f"certificate revoked at {entry.revocation_date_utc.isoformat()} ({_fp(cert)})"
        )
    return crl if fresh else None


def _crl_is_complete_for(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> bool:
    """A full (not delta, not partitioned) CRL whose scope includes ``cert``."""
    if _ext_crl(crl, x509.DeltaCRLIndicator) is not None:
        return False
    idp = _ext_crl(crl, x509.IssuingDistributionPoint)
    if isinstance(idp, x509.IssuingDistributionPoint):
        bc = _ext(cert, x509.BasicConstraints)
        is_ca = isinstance(bc, x509.BasicConstraints) and bc.ca
        if (
            idp.indirect_crl
            or idp.only_some_reasons is not None
            or idp.only_contains_attribute_certs
            or (idp.only_contains_user_certs and is_ca)
            or (idp.only_contains_ca_certs and not is_ca)
        ):
            return False
    return True


def _ext_crl(
    crl: x509.CertificateRevocationList, kind: type[x509.ExtensionType]
) -> x509.ExtensionType | None:
    try:
        return crl.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _crl_signed_by_cached(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate, trust: TrustConfig
) -> bool:
    """``_crl_signed_by``, remembered per (CRL, issuer DER): a pure function of the two."""
    # The CRL object is held by ``trust`` (its identity is stable while the cache lives).
    key = (id(crl), der_of(issuer))
    cached = trust._crl_signatures.get(key)
    if isinstance(cached, bool):
        return cached
    valid = _crl_signed_by(crl, issuer)
    trust._crl_signatures.put(key, valid)
    return valid


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    """Signed by ``issuer`` (allowed to sign CRLs), strong hash, no unknown critical extension."""
    try:
        extensions = list(crl.extensions)
    except Exception:  # an undecodable extension
        return False
    if any(e.critical and not isinstance(e.value, _CRL_KNOWN_CRITICAL) for e in extensions):
        return False
    ku = _ext(issuer, x509.KeyUsage)
    if isinstance(ku, x509.KeyUsage) and not ku.crl_sign:
        return False
    if not isinstance(crl.signature_hash_algorithm, _CRL_HASHES):
        return False
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        return crl.is_signature_valid(key)
    except (InvalidSignature, ValueError, TypeError):
        return False
