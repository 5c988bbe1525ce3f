"""The GatewayError tree.

Every rejection the gateway makes is one of these classes. Each class has a stable ``code``
("OSO-E…") that appears on the wire (SOAP Fault detail), in the transfer log and in CLI output,
and an HTTP status for the SOAP endpoint.

* ``LocalError``: we misused something or are misconfigured (our fault; the peer is not blamed).
* ``RemoteError``: the peer or the input sent something bad.

Messages must never contain pupil personal data. ``detail`` is for our own log: keep it to
element paths, codes, sizes, digests and certificate fingerprints. ``public_message`` is what a
peer is told; for authentication and decryption failures it is deliberately coarse.

Code ranges:
  OSO-E1xx  dossier: schema, business rules, minimisation
  OSO-E2xx  secure message: parsing, WS-Security shape, signature, encryption, timestamp
  OSO-E3xx  certificates and trust: path, validity, usage, revocation, OIN binding
  OSO-E4xx  transfer: directory, mandate, replay, receipts, delivery
  OSO-E5xx  local: configuration, store, keys, internal
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    code: ClassVar[str] = "OSO-E000"
    http_status: ClassVar[int] = 500
    #: SOAP 1.1 fault code: "Client" (sender's fault) or "Server" (ours / transient)
    soap_fault: ClassVar[str] = "Server"
    #: True when retrying the same message later may succeed (sender keeps it in the outbox).
    transient: ClassVar[bool] = False
    #: What the peer is told. Coarse on purpose for authentication failures.
    public_message: ClassVar[str] = "The request could not be processed."

    def __init__(self, detail: str = "") -> None:
        self.detail = detail or self.public_message
        super().__init__(f"{self.code}: {self.detail}")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is not None:
            other = _REGISTRY.get(code)
            if other is not None and other is not cls and not cls.__dict__.get("_alias", False):
                raise TypeError(f"duplicate error code {code}: {other.__name__} and {cls.__name__}")
            _REGISTRY[code] = cls


_REGISTRY: dict[str, type[GatewayError]] = {}


def error_class_for(code: str) -> type[GatewayError] | None:
    """The error class registered for a wire code, or None."""
    return _REGISTRY.get(code)


def all_error_classes() -> list[type[GatewayError]]:
    """Every registered error class, sorted by code (for docs and tests)."""
    return [_REGISTRY[c] for c in sorted(_REGISTRY)]


#: Modules never imported for discovery: Alembic scripts run migrations when imported.
_SKIP_PARTS = frozenset({"migrations", "__main__"})


def import_all_modules() -> None:
    """Import every module of the package so that every error class is registered.

    Some modules define their errors and are imported only lazily; a code lookup or the error
    reference must not depend on which of them happen to be loaded. An import failure is raised,
    not skipped: a reference that silently lacks a module's codes would be wrong.
    """
    import oso_gateway

    prefix = oso_gateway.__name__ + "."
    for info in pkgutil.walk_packages(oso_gateway.__path__, prefix):
        if _SKIP_PARTS.intersection(info.name.split(".")):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as exc:
            msg = f"cannot import {info.name} to collect its error classes: {exc}"
            raise ImportError(msg) from exc


@dataclass(frozen=True, kw_only=True)
class ErrorDescription:
    """What a code means, for operators: the one source for the CLI, the console and the docs."""

    code: str
    name: str
    side: str  #: "local" (our side), "remote" (the peer or the input), or "—"
    public_message: str  #: what the peer is told
    explanation: str  #: the class's own docstring (what our log records it for), or "—"
    transient: bool
    http_status: int
    soap_fault: str


def side_of(cls: type[GatewayError]) -> str:
    if issubclass(cls, LocalError):
        return "local"
    if issubclass(cls, RemoteError):
        return "remote"
    return "—"


def own_docstring(cls: type) -> str:
    """The class's own docstring on one line (not an inherited one), or "—"."""
    doc = cls.__dict__.get("__doc__")
    return " ".join(inspect.cleandoc(doc).split()) if doc else "—"


def describe_class(cls: type[GatewayError]) -> ErrorDescription:
    return ErrorDescription(
        code=cls.code,
        name=cls.__name__,
        side=side_of(cls),
        public_message=cls.public_message,
        explanation=own_docstring(cls),
        transient=cls.transient,
        http_status=cls.http_status,
        soap_fault=cls.soap_fault,
    )


def describe(code: str) -> ErrorDescription | None:
    """The description of ``code`` (imports every module first if it is not yet registered);
    None for a code this gateway version does not know."""
    cls = error_class_for(code)
    if cls is None:
        import_all_modules()
        cls = error_class_for(code)
    return None if cls is None else describe_class(cls)


class LocalError(GatewayError):
    """We misused something or are misconfigured."""

    code = "OSO-E500"
    http_status = 500
    soap_fault = "Server"
    public_message = "Internal error at the receiving gateway."


class RemoteError(GatewayError):
    """The peer or the input sent something bad."""

    code = "OSO-E001"
    http_status = 400
    soap_fault = "Client"
    public_message = "The message was rejected."


# --------------------------------------------------------------------------------------------
# OSO-E1xx dossier (owned by oso_gateway.dossier)
# --------------------------------------------------------------------------------------------


class DossierError(RemoteError):
    """The dossier is not acceptable (schema or business rules)."""

    code = "OSO-E100"
    public_message = "The dossier is not valid."


class DossierParseError(DossierError):
    """The dossier bytes are not well-formed XML, or break the parser's bounds (size, depth,
    markup, DTD)."""

    code = "OSO-E101"
    public_message = "The dossier is not well-formed XML or exceeds the parser limits."


class DossierSchemaError(DossierError):
    """The dossier does not validate against our OSO gegevensset 2019.1 XSD; the detail lists
    element paths and schema finding codes."""

    code = "OSO-E102"
    public_message = "The dossier does not conform to the OSO gegevensset 2019 schema."


class DossierRuleError(DossierError):
    """The dossier breaks one or more business rules (OG/OS/OV/PaO/CL/GW codes); the detail
    lists rule codes and element paths."""

    code = "OSO-E103"
    public_message = "The dossier violates an OSO business rule."


class DossierCategoryError(DossierError):
    """A received dossier carries data of a category that is VERBODEN or that the parents opted
    out of."""

    code = "OSO-E104"
    public_message = "The dossier contains a category that may not be shared."


# --- dossier: further classes below this line ---


# --------------------------------------------------------------------------------------------
# OSO-E2xx secure message (owned by oso_gateway.security)
# --------------------------------------------------------------------------------------------

# --- security: classes below this line ---
# Owned by oso_gateway.security.wss (WS-Security seal/open). Authentication and decryption
# failures all tell the peer the same opaque message; ``detail`` (our log) says exactly why.


class SecureMessageError(RemoteError):
    """Base of the WS-Security message errors (OSO-E204..E299)."""

    public_message = "The secure message was rejected."


class MessageAuthenticationError(SecureMessageError):
    """Base of every authentication / decryption failure: one opaque message for the peer."""

    http_status = 403
    public_message = "Authentication failed."


class SecurityHeaderInvalid(SecureMessageError):
    """The envelope, a WS-Addressing header or the wsse:Security header is missing, duplicated,
    out of profile or malformed (e.g. a MessageID that is not urn:uuid)."""

    code = "OSO-E204"
    public_message = "The SOAP envelope or its WS-Security header is malformed."


class TimestampExpired(SecureMessageError):
    """wsu:Timestamp Expires lies before now minus the allowed clock skew."""

    code = "OSO-E205"
    public_message = "The message timestamp has expired."


class TimestampInFuture(SecureMessageError):
    """wsu:Timestamp Created lies after now plus the allowed clock skew."""

    code = "OSO-E206"
    public_message = "The message timestamp lies in the future (check the sender's clock)."


class TimestampTooLong(SecureMessageError):
    """Expires minus Created exceeds the policy's maximum message lifetime."""

    code = "OSO-E207"
    public_message = "The message lifetime (Expires - Created) is longer than allowed."


class NotAddressedToUs(MessageAuthenticationError):
    """No EncryptedKey is addressed (by SKI or issuer+serial) to any of our identities."""

    code = "OSO-E208"


class KeyTransportRejected(MessageAuthenticationError):
    """The EncryptedKey uses a key-transport algorithm outside the policy (e.g. RSA PKCS#1
    v1.5)."""

    code = "OSO-E209"


class DecryptionFailed(MessageAuthenticationError):
    """Unwrapping the content key or the AES-GCM decryption failed (one code for both: no
    oracle)."""

    code = "OSO-E210"


class CipherDataMalformed(MessageAuthenticationError):
    """CipherValue is not valid base64 or is too short to hold IV and tag."""

    code = "OSO-E211"


class DataEncryptionRejected(MessageAuthenticationError):
    """The EncryptedData uses an algorithm other than AES-256-GCM (e.g. CBC),
    or gives parameters with it."""

    code = "OSO-E212"


class SignatureInvalid(MessageAuthenticationError):
    """The RSA-SHA256 SignatureValue does not verify with the signer's certificate."""

    code = "OSO-E213"


class DigestMismatch(MessageAuthenticationError):
    """A signed part's SHA-256 digest does not match its Reference (the part was changed)."""

    code = "OSO-E214"


class ReferenceInvalid(MessageAuthenticationError):
    """A Reference URI is not a bare #id, does not resolve to exactly one element, or points
    outside its expected place (signature wrapping)."""

    code = "OSO-E215"


class SignedPartMissing(MessageAuthenticationError):
    """A part the profile requires to be signed (Body, Timestamp, WS-Addressing headers,
    SignatureConfirmation) is not referenced exactly once."""

    code = "OSO-E216"


class DuplicateId(MessageAuthenticationError):
    """Two elements share an ID value (wsu:Id, Id, ID, id or xml:id) anywhere in the envelope or
    payload."""

    code = "OSO-E217"


class SignatureCountInvalid(MessageAuthenticationError):
    """The Security header holds no ds:Signature or more than one."""

    code = "OSO-E218"


class SignatureAlgorithmRejected(MessageAuthenticationError):
    """SignedInfo names a signature algorithm other than RSA-SHA256 (e.g.
    RSA-SHA1, HMAC), or gives parameters with it."""

    code = "OSO-E219"


class DigestAlgorithmRejected(MessageAuthenticationError):
    """A Reference uses a digest other than SHA-256."""

    code = "OSO-E220"


class SignerUntrusted(MessageAuthenticationError):
    """The signer's certificate failed trust checks; ``cause_code`` is the trust error's code."""

    code = "OSO-E221"

    def __init__(self, detail: str = "", *, cause_code: str = "") -> None:
        self.cause_code = cause_code
        super().__init__(detail)


class SenderOinMismatch(MessageAuthenticationError):
    """The OIN in the signer certificate's serialNumber differs from the OIN in wsa:From."""

    code = "OSO-E222"


class RecipientMismatch(MessageAuthenticationError):
    """The signed wsa:To is not this gateway's endpoint (a message re-encrypted and forwarded)."""

    code = "OSO-E223"


class SignerTokenInvalid(MessageAuthenticationError):
    """The BinarySecurityToken is missing, not a base64 X.509v3 token, or holds no usable RSA
    key; or KeyInfo does not reference it."""

    code = "OSO-E224"


class DecryptedContentInvalid(MessageAuthenticationError):
    """The decrypted Body content is not one well-formed element within the parse limits."""

    code = "OSO-E225"


class TransformRejected(MessageAuthenticationError):
    """A Reference uses a transform other than exclusive C14N (e.g. XSLT, enveloped-signature)."""

    code = "OSO-E226"


class SealError(LocalError):
    """``seal`` was called with unusable arguments (our misuse, not the peer's)."""

    code = "OSO-E227"
    public_message = "Internal error while sealing a message."


# --------------------------------------------------------------------------------------------
# OSO-E3xx certificates and trust (owned by oso_gateway.security.trust)
# --------------------------------------------------------------------------------------------

# --- trust: classes below this line ---
# Certificate problems are the peer's (Client); CRL problems are ours (Server, 503 for a missing or
# stale CRL so that a sender retries after we refreshed it). The peer is told one opaque message.


class TrustError(RemoteError):
    """The peer's certificate is not acceptable (base of OSO-E301..E313)."""

    code = "OSO-E300"
    http_status = 403
    public_message = "Authentication failed."


class CertificateUntrusted(TrustError):
    """No valid path from the certificate to a configured trust anchor."""

    code = "OSO-E301"


class CertificateExpired(TrustError):
    """The certificate's notAfter lies before the verification time."""

    code = "OSO-E302"


class CertificateNotYetValid(TrustError):
    """The certificate's notBefore lies after the verification time."""

    code = "OSO-E303"


class CertificateRevoked(TrustError):
    """A CRL of the issuer lists the certificate (or a CA in its chain)."""

    code = "OSO-E304"


class CrlMissing(TrustError):
    """No CRL from an issuer in the chain is configured (fail closed)."""

    code = "OSO-E305"
    http_status = 503
    soap_fault = "Server"
    transient = True
    public_message = "The receiving gateway cannot check revocation right now; try again later."


class CrlStale(TrustError):
    """The issuer's CRL is not current (now outside thisUpdate..nextUpdate)."""

    code = "OSO-E306"
    http_status = 503
    soap_fault = "Server"
    transient = True
    public_message = "The receiving gateway cannot check revocation right now; try again later."


class CrlInvalid(TrustError):
    """The CRL for an issuer is not validly signed by it or cannot be used."""

    code = "OSO-E307"
    http_status = 500
    soap_fault = "Server"
    public_message = "The receiving gateway cannot check revocation."


class CertificateUsageError(TrustError):
    """keyUsage / extendedKeyUsage do not allow the purpose (signing, TLS, ...)."""

    code = "OSO-E308"


class CertificateIsCa(TrustError):
    """A CA certificate is presented as an end-entity certificate."""

    code = "OSO-E309"


class CertificateKeyTooWeak(TrustError):
    """The certificate key is not RSA of at least 3072 bits."""

    code = "OSO-E310"


class OinInvalid(TrustError):
    """The subject serialNumber is not one 20-digit OIN, or no OIN where one is needed."""

    code = "OSO-E311"


class OinMismatch(TrustError):
    """The certificate's OIN is not the OIN the message claims or the directory expects."""

    code = "OSO-E312"


class CertificateMalformed(TrustError):
    """The certificate cannot be parsed or decoded."""

    code = "OSO-E313"


class KeyMaterialError(LocalError):
    """Our own key, certificate or CRL file cannot be used (unreadable, wrong type, too weak)."""

    code = "OSO-E320"
    public_message = "The gateway is misconfigured."


# --------------------------------------------------------------------------------------------
# OSO-E4xx transfer (owned by oso_gateway.transfer)
# --------------------------------------------------------------------------------------------

# --- transfer: classes below this line ---


# directory and mandate (oso_gateway.transfer.directory): OSO-E430..E439
class UnknownSchool(RemoteError):
    """The school (BRIN + vestiging) is not in our directory file."""

    code = "OSO-E430"
    http_status = 404
    public_message = "The school is not known to this gateway's directory."


class MandateMissing(RemoteError):
    """The signing OIN is not mandated for the sending school (or the school is unknown)."""

    code = "OSO-E431"
    http_status = 403
    public_message = "The sending gateway is not mandated for the sending school."


# --------------------------------------------------------------------------------------------
# OSO-E5xx local (configuration, store, keys)
# --------------------------------------------------------------------------------------------


class ConfigError(LocalError):
    """The configuration file, environment or a file it names is missing or invalid; the detail
    names file and key, never a secret."""

    code = "OSO-E501"
    public_message = "The gateway is misconfigured."


class StoreUnavailable(LocalError):
    """The database cannot be reached or is locked past the busy timeout; nothing was stored,
    try again."""

    code = "OSO-E502"
    http_status = 503
    transient = True
    public_message = "The receiving gateway is temporarily unavailable; try again later."


# --- local: further classes below this line ---


class SchemaNotCurrent(LocalError):
    """The database schema is behind this version (run `oso-gateway db upgrade`) or ahead of it."""

    code = "OSO-E503"
    http_status = 503
    public_message = "The receiving gateway is temporarily unavailable; try again later."


class AtRestDecryptionError(LocalError):
    """Stored data cannot be decrypted: wrong storage key, or the row was altered or swapped."""

    code = "OSO-E504"


class DirectoryFileError(ConfigError):
    """The directory file is malformed; ``problems`` lists every problem found."""

    code = "OSO-E505"

    def __init__(self, detail: str = "", problems: tuple[str, ...] = ()) -> None:
        self.problems = problems or (detail,)
        super().__init__(detail or "; ".join(problems))
