"""The GatewayError tree: every error class of the gateway, one module per area.

Every rejection the gateway makes is one of these classes. Each class has a stable ``code``
("OSO-E…") that appears on the wire (SOAP Fault detail), in the transfer log and in CLI output,
and an HTTP status for the SOAP endpoint.

* ``LocalError``: we misused something or are misconfigured (our fault; the peer is not blamed).
* ``RemoteError``: the peer or the input sent something bad.

Messages must never contain pupil personal data. ``detail`` is for our own log: keep it to
element paths, codes, sizes, digests and certificate fingerprints. ``public_message`` is what a
peer is told; for authentication and decryption failures it is deliberately coarse.

Code ranges (one module of this package each):
  OSO-E1xx  dossier: schema, business rules, minimisation
  OSO-E2xx  secure message: parsing, WS-Security shape, signature, encryption, timestamp
  OSO-E3xx  certificates and trust: path, validity, usage, revocation, OIN binding
  OSO-E4xx  transfer: directory, mandate, replay, receipts, delivery
  OSO-E5xx  local: configuration, store, keys, internal

A new error class goes into the module of its area and is imported here, so that
``from oso_gateway.errors import X`` works for every class and importing this package registers
every code (``describe`` is then a dictionary lookup).
"""

from __future__ import annotations

from oso_gateway.errors.base import (
    GatewayError,
    LocalError,
    RemoteError,
    all_error_classes,
    error_class_for,
)
from oso_gateway.errors.describe import (
    ErrorDescription,
    describe,
    describe_class,
    own_docstring,
    sender_reading,
    side_of,
)
from oso_gateway.errors.dossier import (
    DossierCategoryError,
    DossierError,
    DossierOptOutError,
    DossierParseError,
    DossierRuleError,
    DossierSchemaError,
)
from oso_gateway.errors.local import (
    AtRestDecryptionError,
    ConfigError,
    DatabaseMissing,
    DirectoryFileError,
    ListenFailed,
    LogAnchorInvalid,
    LogEventInvalid,
    SchemaNotCurrent,
    StoreUnavailable,
)
from oso_gateway.errors.message import (
    CipherDataMalformed,
    DataEncryptionRejected,
    DecryptedContentInvalid,
    DecryptionFailed,
    DigestAlgorithmRejected,
    DigestMismatch,
    DuplicateId,
    KeyTransportRejected,
    MessageAuthenticationError,
    NotAddressedToUs,
    RecipientMismatch,
    ReferenceInvalid,
    SealError,
    SecureMessageError,
    SecurityHeaderInvalid,
    SenderOinMismatch,
    SignatureAlgorithmRejected,
    SignatureCountInvalid,
    SignatureInvalid,
    SignedPartMissing,
    SignerTokenInvalid,
    SignerUntrusted,
    TimestampExpired,
    TimestampInFuture,
    TimestampTooLong,
    TooManyReferences,
    TooManyTransforms,
    TransformRejected,
    XmlForbiddenConstruct,
    XmlLimitExceeded,
    XmlParseError,
    XmlTextTooLong,
    XmlTooDeep,
    XmlTooManyAttributes,
    XmlTooManyElements,
    XmlTooManyNamespacedAttributes,
    XmlTooManyNamespaces,
    XmlTooManyNamespacesOnElement,
    XmlTooMuchMarkup,
)
from oso_gateway.errors.pull import (
    AnswerNotAllowed,
    AnswerRequestUnknown,
    DeclineReasonInvalid,
    DeliveryPupilMismatch,
    DeliveryRequestClosed,
    DeliveryRequestOtherSchool,
    DeliveryRequestUnknown,
    InzageMissing,
    InzageWaiverNotAllowed,
    PupilIdentifierInvalid,
    PupilMismatch,
    RequestNotFound,
    RequestPayloadInvalid,
    RequestSchoolMismatch,
    RequestStateInvalid,
)
from oso_gateway.errors.transfer import (
    InternalError,
    MandateMissing,
    MessageIdReused,
    NotMandated,
    PeerFault,
    PeerHttpError,
    PeerUnreachable,
    ReceiptInvalid,
    ReceiptMismatch,
    RecipientUnknown,
    RequestTooLarge,
    UnexpectedAction,
    UnknownSchool,
    UnsupportedMediaType,
)
from oso_gateway.errors.trust import (
    CertificateExpired,
    CertificateIsCa,
    CertificateKeyTooWeak,
    CertificateMalformed,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUntrusted,
    CertificateUsageError,
    CrlInvalid,
    CrlMissing,
    CrlStale,
    KeyMaterialError,
    OinInvalid,
    OinMismatch,
    RecipientCertificateUntrusted,
    TrustError,
)

__all__ = [
    "AnswerNotAllowed",
    "AnswerRequestUnknown",
    "AtRestDecryptionError",
    "CertificateExpired",
    "CertificateIsCa",
    "CertificateKeyTooWeak",
    "CertificateMalformed",
    "CertificateNotYetValid",
    "CertificateRevoked",
    "CertificateUntrusted",
    "CertificateUsageError",
    "CipherDataMalformed",
    "ConfigError",
    "CrlInvalid",
    "CrlMissing",
    "CrlStale",
    "DataEncryptionRejected",
    "DatabaseMissing",
    "DeclineReasonInvalid",
    "DecryptedContentInvalid",
    "DecryptionFailed",
    "DeliveryPupilMismatch",
    "DeliveryRequestClosed",
    "DeliveryRequestOtherSchool",
    "DeliveryRequestUnknown",
    "DigestAlgorithmRejected",
    "DigestMismatch",
    "DirectoryFileError",
    "DossierCategoryError",
    "DossierError",
    "DossierOptOutError",
    "DossierParseError",
    "DossierRuleError",
    "DossierSchemaError",
    "DuplicateId",
    "ErrorDescription",
    "GatewayError",
    "InternalError",
    "InzageMissing",
    "InzageWaiverNotAllowed",
    "KeyMaterialError",
    "KeyTransportRejected",
    "ListenFailed",
    "LocalError",
    "LogAnchorInvalid",
    "LogEventInvalid",
    "MandateMissing",
    "MessageAuthenticationError",
    "MessageIdReused",
    "NotAddressedToUs",
    "NotMandated",
    "OinInvalid",
    "OinMismatch",
    "PeerFault",
    "PeerHttpError",
    "PeerUnreachable",
    "PupilIdentifierInvalid",
    "PupilMismatch",
    "ReceiptInvalid",
    "ReceiptMismatch",
    "RecipientCertificateUntrusted",
    "RecipientMismatch",
    "RecipientUnknown",
    "ReferenceInvalid",
    "RemoteError",
    "RequestNotFound",
    "RequestPayloadInvalid",
    "RequestSchoolMismatch",
    "RequestStateInvalid",
    "RequestTooLarge",
    "SchemaNotCurrent",
    "SealError",
    "SecureMessageError",
    "SecurityHeaderInvalid",
    "SenderOinMismatch",
    "SignatureAlgorithmRejected",
    "SignatureCountInvalid",
    "SignatureInvalid",
    "SignedPartMissing",
    "SignerTokenInvalid",
    "SignerUntrusted",
    "StoreUnavailable",
    "TimestampExpired",
    "TimestampInFuture",
    "TimestampTooLong",
    "TooManyReferences",
    "TooManyTransforms",
    "TransformRejected",
    "TrustError",
    "UnexpectedAction",
    "UnknownSchool",
    "UnsupportedMediaType",
    "XmlForbiddenConstruct",
    "XmlLimitExceeded",
    "XmlParseError",
    "XmlTextTooLong",
    "XmlTooDeep",
    "XmlTooManyAttributes",
    "XmlTooManyElements",
    "XmlTooManyNamespacedAttributes",
    "XmlTooManyNamespaces",
    "XmlTooManyNamespacesOnElement",
    "XmlTooMuchMarkup",
    "all_error_classes",
    "describe",
    "describe_class",
    "error_class_for",
    "own_docstring",
    "sender_reading",
    "side_of",
]


def _document_under_the_package_name(cls: type[GatewayError] = GatewayError) -> None:
    """Each class is imported, named and documented as ``oso_gateway.errors.<Name>``; which area
    module holds its source is an arrangement of this package, not part of its name."""
    for sub in cls.__subclasses__():
        if sub.__module__.startswith(__name__ + "."):
            sub.__module__ = __name__
        _document_under_the_package_name(sub)


_document_under_the_package_name()
