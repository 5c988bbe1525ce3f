"""OSO-E2xx: the secure message is rejected (XML parsing, WS-Security shape, signature,
encryption, timestamp).

Authentication and decryption failures all tell the peer the same opaque message; ``detail`` (our
log) says exactly why.
"""

from __future__ import annotations

from oso_gateway.errors.base import LocalError, RemoteError


class XmlParseError(RemoteError):
    """Untrusted bytes are not well-formed XML (the detail gives line and column, never
    content)."""

    code = "OSO-E201"
    public_message = "The message is not well-formed XML or exceeds the parser limits."


class XmlForbiddenConstruct(XmlParseError):
    """The document has a DOCTYPE/DTD, an entity reference or a processing instruction."""

    code = "OSO-E202"
    public_message = "The message contains a forbidden XML construct (DTD, entity or processing)."


class XmlLimitExceeded(XmlParseError):
    """The document is larger than the byte limit (``ParseLimits.max_bytes``); also the base of
    every other parser limit."""

    code = "OSO-E203"
    http_status = 413
    public_message = "The message exceeds the size or depth limits."


class XmlTooManyNamespacesOnElement(XmlLimitExceeded):
    """One element declares more namespaces than ``ParseLimits.max_namespaces_per_element``."""

    code = "OSO-E230"
    public_message = "An element of the message declares too many namespaces."


class XmlTooManyNamespaces(XmlLimitExceeded):
    """The document declares more namespaces in all than ``ParseLimits.max_namespaces``."""

    code = "OSO-E231"
    public_message = "The message declares too many namespaces."


class XmlTooManyAttributes(XmlLimitExceeded):
    """One element carries more attributes than ``ParseLimits.max_attributes_per_element``."""

    code = "OSO-E232"
    public_message = "An element of the message carries too many attributes."


class XmlTooDeep(XmlLimitExceeded):
    """Elements are nested deeper than ``ParseLimits.max_depth``."""

    code = "OSO-E233"
    public_message = "The message is nested too deeply."


class XmlTooManyElements(XmlLimitExceeded):
    """The document holds more elements than ``ParseLimits.max_elements``."""

    code = "OSO-E234"
    public_message = "The message holds too many elements."


class XmlTextTooLong(XmlLimitExceeded):
    """One text node is longer than ``ParseLimits.max_text`` characters."""

    code = "OSO-E235"
    public_message = "A text node of the message is too long."


class XmlTooMuchMarkup(XmlLimitExceeded):
    """The bytes hold more markup tokens (each ``<``, each ``=``) than ``ParseLimits.max_markup``:
    refused before a tree is built."""

    code = "OSO-E236"
    public_message = "The message holds too much markup."


class XmlTooManyNamespacedAttributes(XmlLimitExceeded):
    """The document carries more namespace-qualified attributes in all than
    ``ParseLimits.max_namespaced_attributes`` (each costs exclusive C14N a walk of the namespaces
    rendered so far)."""

    code = "OSO-E239"
    public_message = "The message carries too many namespace-qualified attributes."


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
    sender_reading = (
        "Reported by the receiving gateway: our message was not encrypted to any certificate it "
        "holds a key for. The encryption certificate our directory gives for that gateway is "
        "wrong or outdated: fix the directory, then retry."
    )


class KeyTransportRejected(MessageAuthenticationError):
    """The EncryptedKey uses a key-transport algorithm outside the policy (e.g. RSA PKCS#1
    v1.5)."""

    code = "OSO-E209"


class DecryptionFailed(MessageAuthenticationError):
    """Unwrapping the content key or the AES-GCM decryption failed (one code for both: no
    oracle)."""

    code = "OSO-E210"
    sender_reading = (
        "Reported by the receiving gateway: it could not decrypt our message (unwrapping the "
        "content key or the AES-GCM decryption failed). Usually the encryption certificate our "
        "directory gives for that gateway is not the one whose key it uses, or the key-transport "
        "variant (key_transport) does not match; if we recorded it for a receipt, we could not "
        "decrypt the receipt."
    )


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


class TooManyReferences(SecureMessageError):
    """ds:SignedInfo holds more References than the limit (``xmldsig.MAX_REFERENCES``): refused
    before any is parsed or digested."""

    code = "OSO-E237"
    http_status = 413
    public_message = "The signature holds too many references."


class TooManyTransforms(SecureMessageError):
    """A ds:Reference holds more Transforms than the limit (``xmldsig.MAX_TRANSFORMS``)."""

    code = "OSO-E238"
    http_status = 413
    public_message = "A signature reference holds too many transforms."


class CanonicalizationFailed(SecureMessageError):
    """Exclusive C14N refused the XML (e.g. a relative namespace URI, which canonical XML does
    not allow): found by fuzzing, where it surfaced as an untyped lxml error."""

    code = "OSO-E240"
    public_message = "The message cannot be canonicalised (for example a relative namespace URI)."
