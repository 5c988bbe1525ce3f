"""Interop with an independent implementation: the real ``xmlsec1`` (Debian xmlsec1 1.2.x).

(a) xmlsec1 verifies the signature of our sealed message once it is decrypted;
(b) xmlsec1 decrypts our EncryptedData (rsa-oaep-mgf1p, the one key transport 1.2.x knows);
(c) we open a message whose Body content xmlsec1 encrypted from a template, and one whose
    signature xmlsec1 made from our template.
"""

from __future__ import annotations

import base64
import copy
import subprocess
from pathlib import Path

import pytest
from _wss_support import (
    OIN1,
    OIN2,
    decrypted_envelope,
    dev_now,
    dev_trust,
    identity,
    policy,
    sample_payload,
    seal_1_to_2,
)
from cryptography.hazmat.primitives import serialization
from lxml import etree

from oso_gateway.security import primitives
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.namespaces import (
    DS,
    ENC_AES256_GCM,
    ENC_TYPE_CONTENT,
    KT_RSA_OAEP_MGF1P,
    SOAP,
    WSA,
    WSSE,
    WSSE11,
    WSU,
    XENC,
    q,
)
from oso_gateway.security.wss import open_message

pytestmark = pytest.mark.interop

ID_NODES = [
    f"{SOAP}:Body",
    f"{WSU}:Timestamp",
    f"{WSA}:To",
    f"{WSA}:Action",
    f"{WSA}:MessageID",
    f"{WSA}:From",
    f"{WSA}:RelatesTo",
    f"{WSSE11}:SignatureConfirmation",
]


def _id_args() -> list[str]:
    args: list[str] = []
    for node in ID_NODES:
        args += ["--id-attr:Id", node]
    return args


def _run(xmlsec1: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([xmlsec1, *args], capture_output=True, timeout=30, check=False)


def _pem_cert(path: Path, oin: str) -> str:
    path.write_bytes(identity(oin).certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _pem_key(path: Path, oin: str) -> str:
    path.write_bytes(
        identity(oin).private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def _body(root: etree._Element) -> etree._Element:
    body = root.find(q(SOAP, "Body"))
    assert body is not None
    return body


def _encrypted_key(root: etree._Element) -> etree._Element:
    ek = root.find(f"{q(SOAP, 'Header')}/{q(WSSE, 'Security')}/{q(XENC, 'EncryptedKey')}")
    assert ek is not None
    return ek


def _open(data: bytes) -> bytes:
    opened = open_message(
        data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
    )
    return exc_c14n(opened.payload)


# --- (a) -------------------------------------------------------------------------------------


@pytest.mark.parametrize("receipt", [False, True], ids=["request", "receipt"])
def test_xmlsec1_verifies_our_signature_after_decryption(
    xmlsec1: str, tmp_path: Path, receipt: bool
) -> None:
    extra: dict[str, object] = {}
    if receipt:  # RelatesTo and SignatureConfirmation are signed too
        extra = {
            "relates_to": "urn:uuid:11111111-2222-4333-8444-555555555555",
            "signature_confirmation": b"\x01" * 384,
        }
    sealed = seal_1_to_2(sample_payload(), **extra)
    doc = tmp_path / "decrypted.xml"
    doc.write_bytes(etree.tostring(decrypted_envelope(sealed.data)))
    cert = _pem_cert(tmp_path / "signer.pem", OIN1)
    result = _run(xmlsec1, "--verify", "--pubkey-cert-pem", cert, *_id_args(), str(doc))
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    expected = 8 if receipt else 6
    assert f"SignedInfo References (ok/all): {expected}/{expected}" in result.stderr.decode()


def test_xmlsec1_rejects_our_signature_when_the_body_was_changed(
    xmlsec1: str, tmp_path: Path
) -> None:
    """Control for (a): xmlsec1 really checks the Body digest we computed without the Body."""
    root = decrypted_envelope(seal_1_to_2(sample_payload()).data)
    leaf = next(el for el in _body(root).iter() if el.text == "Jansen")
    leaf.text = "Pietersen"
    doc = tmp_path / "tampered.xml"
    doc.write_bytes(etree.tostring(root))
    cert = _pem_cert(tmp_path / "signer.pem", OIN1)
    result = _run(xmlsec1, "--verify", "--pubkey-cert-pem", cert, *_id_args(), str(doc))
    assert result.returncode != 0


# --- (b) -------------------------------------------------------------------------------------


def test_xmlsec1_decrypts_our_encrypted_body_content(xmlsec1: str, tmp_path: Path) -> None:
    payload = sample_payload()
    root = etree.fromstring(seal_1_to_2(payload, key_transport=KT_RSA_OAEP_MGF1P).data)
    # xmlsec1 finds the key in EncryptedData/KeyInfo/EncryptedKey (WS-Security puts it in the
    # header and names the recipient by SKI, which xmlsec1 does not resolve): move it there.
    ek = copy.deepcopy(_encrypted_key(root))
    for local, ns in (("KeyInfo", DS), ("ReferenceList", XENC)):
        child = ek.find(q(ns, local))
        assert child is not None
        ek.remove(child)
    body = _body(root)
    key_info = etree.Element(q(DS, "KeyInfo"))
    key_info.append(ek)
    body[0].insert(1, key_info)
    doc = tmp_path / "encrypted-body.xml"
    doc.write_bytes(etree.tostring(body))
    key = _pem_key(tmp_path / "recipient.key", OIN2)
    result = _run(xmlsec1, "--decrypt", "--privkey-pem", key, str(doc))
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    decrypted = etree.fromstring(result.stdout)
    assert len(decrypted) == 1
    assert exc_c14n(decrypted[0]) == exc_c14n(payload)


# --- (c) -------------------------------------------------------------------------------------

ENC_TEMPLATE = f"""<xenc:EncryptedData xmlns:xenc="{XENC}" xmlns:ds="{DS}"
    Id="ED-xmlsec1" Type="{ENC_TYPE_CONTENT}">
  <xenc:EncryptionMethod Algorithm="{ENC_AES256_GCM}"/>
  <ds:KeyInfo>
    <xenc:EncryptedKey Id="EK-xmlsec1">
      <xenc:EncryptionMethod Algorithm="{KT_RSA_OAEP_MGF1P}"/>
      <xenc:CipherData><xenc:CipherValue/></xenc:CipherData>
    </xenc:EncryptedKey>
  </ds:KeyInfo>
  <xenc:CipherData><xenc:CipherValue/></xenc:CipherData>
</xenc:EncryptedData>
"""


def _xmlsec1_encrypt_body(xmlsec1: str, tmp_path: Path, envelope: etree._Element) -> bytes:
    """Encrypt the Body content of a signed, plaintext envelope with xmlsec1; wire it as WSS."""
    data = tmp_path / "plain-envelope.xml"
    data.write_bytes(etree.tostring(envelope))
    template = tmp_path / "template.xml"
    template.write_text(ENC_TEMPLATE, encoding="utf-8")
    cert = _pem_cert(tmp_path / "recipient.pem", OIN2)
    result = _run(
        xmlsec1,
        "--encrypt",
        "--pubkey-cert-pem",
        cert,
        "--session-key",
        "aes-256",
        "--xml-data",
        str(data),
        "--node-name",
        f"{SOAP}:Body",
        str(template),
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    root = etree.fromstring(result.stdout)
    ed = _body(root)[0]
    assert ed.tag == q(XENC, "EncryptedData")
    # WS-Security: the EncryptedKey lives in the Security header, names the recipient's
    # certificate by SKI and lists the EncryptedData it unlocks.
    key_info = ed.find(q(DS, "KeyInfo"))
    assert key_info is not None
    their_ek = key_info[0]
    ed.remove(key_info)
    ours = _encrypted_key(root)
    wired = copy.deepcopy(ours)
    for tag in (q(XENC, "EncryptionMethod"), q(XENC, "CipherData")):
        old = wired.find(tag)
        new = their_ek.find(tag)
        assert old is not None and new is not None
        wired.replace(old, new)
    ref = wired.find(f"{q(XENC, 'ReferenceList')}/{q(XENC, 'DataReference')}")
    assert ref is not None
    ref.set("URI", "#ED-xmlsec1")
    ours.getparent().replace(ours, wired)  # type: ignore[union-attr]
    return etree.tostring(root)


def test_we_open_a_body_encrypted_by_xmlsec1(xmlsec1: str, tmp_path: Path) -> None:
    payload = sample_payload()
    sealed = seal_1_to_2(payload, key_transport=KT_RSA_OAEP_MGF1P)
    data = _xmlsec1_encrypt_body(xmlsec1, tmp_path, decrypted_envelope(sealed.data))
    assert b"Jansen" not in data
    assert _open(data) == exc_c14n(payload)


def test_we_open_a_message_signed_and_encrypted_by_xmlsec1(xmlsec1: str, tmp_path: Path) -> None:
    payload = sample_payload()
    root = decrypted_envelope(seal_1_to_2(payload, key_transport=KT_RSA_OAEP_MGF1P).data)
    # our envelope as a signing template: xmlsec1 computes every DigestValue and the signature
    for value in root.iter(q(DS, "DigestValue"), q(DS, "SignatureValue")):
        value.text = ""
    template = tmp_path / "sign-template.xml"
    template.write_bytes(etree.tostring(root))
    key = _pem_key(tmp_path / "signer.key", OIN1)
    result = _run(xmlsec1, "--sign", "--privkey-pem", key, *_id_args(), str(template))
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    signed = etree.fromstring(result.stdout)
    values = [v.text for v in signed.iter(q(DS, "DigestValue"))]
    assert values and all(values)
    signature_value = signed.find(f".//{q(DS, 'SignatureValue')}")
    assert signature_value is not None and signature_value.text
    data = _xmlsec1_encrypt_body(xmlsec1, tmp_path, signed)
    opened = open_message(
        data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
    )
    assert exc_c14n(opened.payload) == exc_c14n(payload)
    assert opened.signature_value == base64.b64decode(signature_value.text)
    assert opened.payload_digest == primitives.sha256_hex(exc_c14n(payload))
