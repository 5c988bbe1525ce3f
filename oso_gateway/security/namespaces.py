"""Namespace and algorithm URIs of the Digikoppeling WUS 2W-be-SE message profile (facts only)."""

from __future__ import annotations

from typing import Final

SOAP: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE11: Final = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
XENC: Final = "http://www.w3.org/2001/04/xmlenc#"
XENC11: Final = "http://www.w3.org/2009/xmlenc11#"
EC: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
XML: Final = "http://www.w3.org/XML/1998/namespace"

#: prefixes we write (the receiver accepts any prefixes)
NSMAP: Final[dict[str, str]] = {
    "soap": SOAP,
    "wsa": WSA,
    "wsse": WSSE,
    "wsu": WSU,
    "wsse11": WSSE11,
    "ds": DS,
    "xenc": XENC,
    "xenc11": XENC11,
}

# --- WS-Security token profile values (OASIS WSS 1.0/1.1, X.509 token profile) -----------------
WSS_SOAP_MSG: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
)
WSS_X509: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
ENCODING_BASE64: Final = WSS_SOAP_MSG + "#Base64Binary"
VALUE_X509V3: Final = WSS_X509 + "#X509v3"
VALUE_SKI: Final = WSS_X509 + "#X509SubjectKeyIdentifier"

# --- algorithms -------------------------------------------------------------------------------
C14N_EXCL: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_EXCL_WITH_COMMENTS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
C14N_INCL: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

SIG_RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SIG_RSA_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SIG_HMAC_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
SIG_HMAC_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"

DIGEST_SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#sha1"

ENC_AES256_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
ENC_AES128_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
ENC_AES256_CBC: Final = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
ENC_AES128_CBC: Final = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
ENC_TYPE_CONTENT: Final = "http://www.w3.org/2001/04/xmlenc#Content"
ENC_TYPE_ELEMENT: Final = "http://www.w3.org/2001/04/xmlenc#Element"

KT_RSA_OAEP: Final = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
KT_RSA_OAEP_MGF1P: Final = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
KT_RSA_1_5: Final = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
MGF1_SHA1: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha1"
MGF1_SHA256: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha256"

WSA_ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"


def q(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` (lxml's tag form)."""
    return f"{{{ns}}}{local}"


def split_clark(name: str) -> tuple[str | None, str]:
    """(namespace, local name) of a Clark name ``{ns}local`` (None: no namespace).

    A namespace name may hold ``}`` (``xmlns="a}b"`` is well-formed XML, and the parser takes
    it), which ``etree.QName`` refuses with a ValueError: an untrusted document made a check
    that named an element crash (found by fuzzing). A local name never holds ``}``, so it is
    what follows the last one.
    """
    if name.startswith("{"):
        namespace, _, local = name[1:].rpartition("}")
        return namespace, local
    return None, name


def local_name(name: str) -> str:
    """The local name of a Clark name (``split_clark``)."""
    return split_clark(name)[1]
