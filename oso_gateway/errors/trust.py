"""OSO-E3xx: certificates and trust (path, validity, usage, revocation, OIN binding), and our
own key material.

Certificate problems are the peer's (Client); CRL problems are ours (Server, 503 for a missing or
stale CRL so that a sender retries after we refreshed it). The peer is told one opaque message.
"""

from __future__ import annotations

from oso_gateway.errors.base import LocalError, RemoteError


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


class RecipientCertificateUntrusted(KeyMaterialError):
    """The encryption certificate the directory gives for the receiving school's gateway is not
    trusted for encryption (chain, revocation, validity) or does not carry that gateway's OIN;
    nothing is sealed for it. Check the directory (``oso-gateway directory check``)."""

    code = "OSO-E321"
