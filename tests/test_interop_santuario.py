"""Interop with a second independent implementation: Apache Santuario (Debian libxml-security-java).

xmlsec1 1.2.x only knows rsa-oaep-mgf1p; Santuario also speaks xmlenc11 rsa-oaep with SHA-256 and
MGF1-SHA256 (our default key transport) and AES-256-GCM. Our peer program
``tests/interop/santuario/OsoInterop.java`` is compiled with javac once per session.

(a) Santuario decrypts our sealed message (both key transports) and verifies our signature;
(b) we open a message Santuario signed and encrypted (rsa-oaep + SHA-256 + MGF1-SHA256).
"""

from __future__ import annotations

import hashlib
import shutil
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
from conftest import require
from cryptography.hazmat.primitives import serialization
from lxml import etree

from oso_gateway.security import primitives
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.namespaces import (
    DIGEST_SHA1,
    DIGEST_SHA256,
    DS,
    ENC_AES256_GCM,
    KT_RSA_OAEP,
    KT_RSA_OAEP_MGF1P,
    MGF1_SHA1,
    MGF1_SHA256,
    SOAP,
    WSSE,
    XENC,
    XENC11,
    q,
)
from oso_gateway.security.wss import open_message

pytestmark = pytest.mark.interop

SOURCE = Path(__file__).resolve().parent / "interop" / "santuario" / "OsoInterop.java"
JAVA_LIB = Path("/usr/share/java")
JARS = ("xmlsec.jar", "commons-codec.jar", "slf4j-api.jar", "slf4j-nop.jar")


@pytest.fixture(scope="session")
def santuario(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that runs our Santuario peer (compiled once, cached by source hash)."""
    javac, java = shutil.which("javac"), shutil.which("java")
    missing = [jar for jar in JARS if not (JAVA_LIB / jar).is_file()]
    require(
        "santuario",
        javac is not None and java is not None and not missing,
        "install the Debian packages libxml-security-java and default-jdk-headless",
    )
    assert javac is not None and java is not None
    classpath = ":".join(str(JAVA_LIB / jar) for jar in JARS)
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    build = tmp_path_factory.getbasetemp() / f"santuario-{digest}"
    if not (build / "OsoInterop.class").is_file():
        build.mkdir(exist_ok=True)
        result = subprocess.run(
            [javac, "-d", str(build), "-cp", classpath, str(SOURCE)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return [java, "-cp", f"{build}:{classpath}", "OsoInterop"]


def _run(santuario: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*santuario, *args], capture_output=True, text=True, timeout=60, check=False
    )


def _pem_cert(path: Path, oin: str) -> str:
    path.write_bytes(identity(oin).certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _pk8_key(path: Path, oin: str) -> str:
    path.write_bytes(
        identity(oin).private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def _decrypt_verify(
    santuario: list[str], tmp_path: Path, data: bytes, *extra: str
) -> subprocess.CompletedProcess[str]:
    message = tmp_path / "sealed.xml"
    message.write_bytes(data)
    key = _pk8_key(tmp_path / "recipient.pk8", OIN2)
    cert = _pem_cert(tmp_path / "signer.pem", OIN1)
    return _run(santuario, "decrypt-verify", str(message), key, cert, *extra)


def _encrypted_key(root: etree._Element) -> etree._Element:
    ek = root.find(f"{q(SOAP, 'Header')}/{q(WSSE, 'Security')}/{q(XENC, 'EncryptedKey')}")
    assert ek is not None
    return ek


# --- (a) -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_transport", "receipt"),
    [(KT_RSA_OAEP, False), (KT_RSA_OAEP_MGF1P, False), (KT_RSA_OAEP, True)],
    ids=["rsa-oaep-sha256", "rsa-oaep-mgf1p", "receipt"],
)
def test_santuario_decrypts_our_message_and_verifies_our_signature(
    santuario: list[str], tmp_path: Path, key_transport: str, receipt: bool
) -> None:
    extra: dict[str, object] = {}
    if receipt:  # RelatesTo and SignatureConfirmation are signed too
        extra = {
            "relates_to": "urn:uuid:11111111-2222-4333-8444-555555555555",
            "signature_confirmation": b"\x01" * 384,
        }
    payload = sample_payload()
    sealed = seal_1_to_2(payload, key_transport=key_transport, **extra)
    decrypted = tmp_path / "decrypted.xml"
    result = _decrypt_verify(santuario, tmp_path, sealed.data, "--out", str(decrypted))
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    expected = 8 if receipt else 6
    assert result.stdout.strip() == f"OK {expected} references"
    body = etree.parse(str(decrypted)).getroot().find(q(SOAP, "Body"))
    assert body is not None and len(body) == 1
    assert exc_c14n(body[0]) == exc_c14n(payload)


def test_santuario_rejects_our_signature_when_the_decrypted_body_was_changed(
    santuario: list[str], tmp_path: Path
) -> None:
    """Control for (a): Santuario really checks the Body digest we computed before encrypting."""
    sealed = seal_1_to_2(sample_payload())
    result = _decrypt_verify(santuario, tmp_path, sealed.data, "--tamper")
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL")
    assert "failed references: #Body-" in result.stdout


def test_santuario_refuses_our_key_for_another_recipient(
    santuario: list[str], tmp_path: Path
) -> None:
    """Control for (a): the EncryptedKey really is bound to the recipient's key pair."""
    sealed = seal_1_to_2(
        sample_payload(), recipient_certificate=identity("00000001000000000003").certificate
    )
    result = _decrypt_verify(santuario, tmp_path, sealed.data)
    assert result.returncode == 1
    assert "Unwrapping failed" in result.stdout


@pytest.mark.parametrize(
    ("local", "ns", "wrong"),
    [("MGF", XENC11, MGF1_SHA1), ("DigestMethod", DS, DIGEST_SHA1)],
    ids=["mgf1sha1", "sha1-digest"],
)
def test_santuario_applies_the_oaep_parameters_our_encrypted_key_declares(
    santuario: list[str], tmp_path: Path, local: str, ns: str, wrong: str
) -> None:
    """Control for (a): Santuario unwraps with the declared SHA-256 / MGF1-SHA256, not a default."""
    root = etree.fromstring(seal_1_to_2(sample_payload(), key_transport=KT_RSA_OAEP).data)
    method = _encrypted_key(root).find(f"{q(XENC, 'EncryptionMethod')}/{q(ns, local)}")
    assert method is not None
    method.set("Algorithm", wrong)
    result = _decrypt_verify(santuario, tmp_path, etree.tostring(root))
    assert result.returncode == 1
    assert "Unwrapping failed" in result.stdout


# --- (b) -------------------------------------------------------------------------------------


def _santuario_seal(santuario: list[str], tmp_path: Path, template: etree._Element) -> bytes:
    """Santuario signs ``template`` afresh, encrypts its Body content and wraps the key for 2."""
    path = tmp_path / "template.xml"
    path.write_bytes(etree.tostring(template))
    out = tmp_path / "santuario-sealed.xml"
    result = _run(
        santuario,
        "seal",
        str(path),
        _pk8_key(tmp_path / "signer.pk8", OIN1),
        _pem_cert(tmp_path / "signer.pem", OIN1),
        _pem_cert(tmp_path / "recipient.pem", OIN2),
        str(out),
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    return out.read_bytes()


def _template(payload: etree._Element, **extra: object) -> etree._Element:
    """Our envelope in plaintext without its EncryptedKey; Santuario replaces the signature."""
    root = decrypted_envelope(seal_1_to_2(payload, **extra).data)
    ek = _encrypted_key(root)
    ek.getparent().remove(ek)  # type: ignore[union-attr]
    for value in root.iter(q(DS, "DigestValue"), q(DS, "SignatureValue")):
        value.text = ""
    return root


@pytest.mark.parametrize("receipt", [False, True], ids=["request", "receipt"])
def test_we_open_a_message_signed_and_encrypted_by_santuario(
    santuario: list[str], tmp_path: Path, receipt: bool
) -> None:
    extra: dict[str, object] = {}
    if receipt:
        extra = {
            "relates_to": "urn:uuid:11111111-2222-4333-8444-555555555555",
            "signature_confirmation": b"\x02" * 384,
        }
    payload = sample_payload()
    data = _santuario_seal(santuario, tmp_path, _template(payload, **extra))
    root = etree.fromstring(data)
    assert b"Jansen" not in data
    # it really is Santuario's key transport and its signature, not ours
    method = _encrypted_key(root).find(q(XENC, "EncryptionMethod"))
    assert method is not None and method.get("Algorithm") == KT_RSA_OAEP
    digest = method.find(q(DS, "DigestMethod"))
    mgf = method.find(q(XENC11, "MGF"))
    assert digest is not None and digest.get("Algorithm") == DIGEST_SHA256
    assert mgf is not None and mgf.get("Algorithm") == MGF1_SHA256
    ed = root.find(f"{q(SOAP, 'Body')}/{q(XENC, 'EncryptedData')}")
    assert ed is not None and ed.get("Id") == "ED-santuario"
    ed_method = ed.find(q(XENC, "EncryptionMethod"))
    assert ed_method is not None and ed_method.get("Algorithm") == ENC_AES256_GCM
    signature_value = root.find(f".//{q(DS, 'SignatureValue')}")
    assert signature_value is not None and signature_value.text

    opened = open_message(
        data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
    )
    assert exc_c14n(opened.payload) == exc_c14n(payload)
    assert opened.signature_value == primitives.b64decode(signature_value.text)
    assert opened.payload_digest == primitives.sha256_hex(exc_c14n(payload))
