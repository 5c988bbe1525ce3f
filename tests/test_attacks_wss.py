"""Attacks on the sealed message: each is rejected with its own code, nothing is returned, and no
error text carries payload data.

Every attack starts from a genuine message school 1 sealed for school 2 around a payload full of
marker strings, and changes it the way an attacker (or a weak peer) could: the attacker knows
every public certificate, and for "re-encrypt and forward" holds school 2's key.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from _wss_support import (
    ENDPOINT2,
    MARKERS,
    OIN1,
    OIN2,
    OIN3,
    OIN_EXPIRED,
    OIN_REVOKED,
    dev_now,
    dev_trust,
    identity,
    policy,
    sample_payload,
    seal_1_to_2,
    special_identity,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from oso_gateway.errors import GatewayError
from oso_gateway.security import xmlenc
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.namespaces import (
    C14N_INCL,
    DIGEST_SHA1,
    DS,
    ENC_AES256_CBC,
    ENVELOPED,
    KT_RSA_1_5,
    KT_RSA_OAEP,
    KT_RSA_OAEP_MGF1P,
    SIG_HMAC_SHA256,
    SIG_RSA_SHA1,
    SOAP,
    WSA,
    WSSE,
    WSU,
    XENC,
    q,
)
from oso_gateway.security.wss import Identity, open_message

WSU_ID = q(WSU, "Id")


class Msg:
    """A sealed message as an attacker edits it (parsed with a plain test-side parser)."""

    def __init__(self, data: bytes) -> None:
        self.root = etree.fromstring(data)

    def one(self, path: str) -> etree._Element:
        found = self.root.xpath(path, namespaces=NS)
        assert len(found) == 1, path
        return found[0]

    @property
    def header(self) -> etree._Element:
        return self.one("/soap:Envelope/soap:Header")

    @property
    def security(self) -> etree._Element:
        return self.one("//wsse:Security")

    @property
    def body(self) -> etree._Element:
        return self.one("/soap:Envelope/soap:Body")

    @property
    def signed_info(self) -> etree._Element:
        return self.one("//ds:SignedInfo")

    def reference_to(self, el: etree._Element) -> etree._Element:
        return self.one(f"//ds:Reference[@URI='#{el.get(WSU_ID)}']")

    def bytes(self) -> bytes:
        return etree.tostring(self.root)

    def resign(self, identity_: Identity | None = None, *, sha1: bool = False) -> None:
        """Re-sign SignedInfo as the genuine sender (valid signature over an edited SignedInfo)."""
        key = (identity_ or identity(OIN1)).private_key
        digest = hashes.SHA1() if sha1 else hashes.SHA256()  # noqa: S303 - downgrade under test
        value = key.sign(exc_c14n(self.signed_info), padding.PKCS1v15(), digest)
        self.one("//ds:SignatureValue").text = base64.b64encode(value).decode()

    def content_key(self, holder: str = OIN2) -> bytes:
        parsed = xmlenc.parse_encrypted_key(
            self.one("//xenc:EncryptedKey"), allowed=frozenset({KT_RSA_OAEP, KT_RSA_OAEP_MGF1P})
        )
        return xmlenc.unwrap_key(parsed, identity(holder).private_key)

    @property
    def cipher_value(self) -> etree._Element:
        return self.one(
            "/soap:Envelope/soap:Body/xenc:EncryptedData/xenc:CipherData/xenc:CipherValue"
        )

    def ciphertext(self) -> bytes:
        return base64.b64decode(self.cipher_value.text or "")

    def set_ciphertext(self, raw: bytes) -> None:
        self.cipher_value.text = base64.b64encode(raw).decode()

    def plaintext(self) -> bytes:
        raw = self.ciphertext()
        return AESGCM(self.content_key()).decrypt(raw[:12], raw[12:], None)

    def reencrypt(
        self,
        plaintext: bytes,
        *,
        recipient: str = OIN2,
        key_transport: str = KT_RSA_OAEP,
        cbc: bool = False,
        rsa15: bool = False,
    ) -> None:
        """Replace the Body ciphertext and the EncryptedKey (anyone can encrypt to school 2)."""
        key = os.urandom(32)
        if cbc:
            iv = os.urandom(16)
            padder = sym_padding.PKCS7(128).padder()
            padded = padder.update(plaintext) + padder.finalize()
            enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
            self.set_ciphertext(iv + enc.update(padded) + enc.finalize())
            self.one("/soap:Envelope/soap:Body/xenc:EncryptedData/xenc:EncryptionMethod").set(
                "Algorithm", ENC_AES256_CBC
            )
        else:
            iv = os.urandom(12)
            self.set_ciphertext(iv + AESGCM(key).encrypt(iv, plaintext, None))
        old = self.one("//xenc:EncryptedKey")
        new = xmlenc.build_encrypted_key(
            key_id=old.get("Id") or "EK",
            recipient=identity(recipient).certificate,
            content_key=key,
            data_ids=(self.one("/soap:Envelope/soap:Body/xenc:EncryptedData").get("Id") or "",),
            key_transport=key_transport,
        )
        if rsa15:
            method = new.find(q(XENC, "EncryptionMethod"))
            assert method is not None
            for child in list(method):
                method.remove(child)
            method.set("Algorithm", KT_RSA_1_5)
            wrapped = (
                identity(recipient)
                .certificate.public_key()
                .encrypt(  # type: ignore[union-attr]
                    key, padding.PKCS1v15()
                )
            )
            value = new.find(f"{q(XENC, 'CipherData')}/{q(XENC, 'CipherValue')}")
            assert value is not None
            value.text = base64.b64encode(wrapped).decode()
        old.getparent().replace(old, new)  # type: ignore[union-attr]


NS = {"soap": SOAP, "wsa": WSA, "wsse": WSSE, "wsu": WSU, "ds": DS, "xenc": XENC}


@dataclass
class Attack:
    data: bytes
    code: str
    open_kw: dict[str, object] = field(default_factory=dict)
    cause_code: str | None = None


def _marked() -> etree._Element:
    return sample_payload(marker=MARKERS[0])


def _sealed(**kw: object) -> Msg:
    return Msg(seal_1_to_2(_marked(), **kw).data)


ATTACKS: dict[str, Callable[[], Attack]] = {}


def attack(fn: Callable[[], Attack]) -> Callable[[], Attack]:
    ATTACKS[fn.__name__] = fn
    return fn


# --- signature wrapping -----------------------------------------------------------------------


@attack
def body_moved_into_header_with_forged_body() -> Attack:
    m = _sealed()
    original = m.body
    wrapper = etree.SubElement(m.header, "{urn:evil}Wrapper")
    m.root.remove(original)
    wrapper.append(original)
    forged = etree.SubElement(m.root, q(SOAP, "Body"))
    forged.append(copy.deepcopy(original[0]))
    m.reencrypt(b"<dossier xmlns='urn:forged'><leerling>Forged</leerling></dossier>")
    return Attack(m.bytes(), "OSO-E215")


@attack
def forged_body_carries_the_signed_body_id() -> Attack:
    m = _sealed()
    original = m.body
    wrapper = etree.SubElement(m.header, "{urn:evil}Wrapper")
    m.root.remove(original)
    wrapper.append(original)
    forged = etree.SubElement(m.root, q(SOAP, "Body"))
    forged.set(WSU_ID, original.get(WSU_ID) or "")
    forged.append(copy.deepcopy(original[0]))
    m.reencrypt(b"<dossier xmlns='urn:forged'/>")
    return Attack(m.bytes(), "OSO-E217")


@attack
def duplicate_wsu_id_on_a_second_to_header() -> Attack:
    m = _sealed()
    to = m.one("//wsa:To")
    decoy = etree.SubElement(m.header, "{urn:evil}Routing")
    clone = copy.deepcopy(to)
    clone.text = "https://evil.example/"
    decoy.append(clone)
    return Attack(m.bytes(), "OSO-E217")


@attack
def second_signature_in_the_security_header() -> Attack:
    m = _sealed()
    sig = m.one("//ds:Signature")
    sig.addnext(copy.deepcopy(sig))
    return Attack(m.bytes(), "OSO-E218")


@attack
def signed_to_moved_out_of_place_with_forged_to() -> Attack:
    m = _sealed()
    to = m.one("//wsa:To")
    wrapper = etree.SubElement(m.header, "{urn:evil}Wrapper")
    forged = etree.Element(q(WSA, "To"))
    forged.text = "https://evil.example/"
    to.addprevious(forged)
    wrapper.append(to)
    return Attack(m.bytes(), "OSO-E215")


@attack
def reference_to_the_encrypted_key_instead_of_timestamp() -> Attack:
    m = _sealed()
    ref = m.reference_to(m.one("//wsu:Timestamp"))
    ref.set("URI", "#" + (m.one("//xenc:EncryptedKey").get("Id") or ""))
    m.resign()
    return Attack(m.bytes(), "OSO-E215")


@attack
def reference_that_resolves_to_nothing() -> Attack:
    m = _sealed()
    m.reference_to(m.one("//wsa:Action")).set("URI", "#nowhere")
    m.resign()
    return Attack(m.bytes(), "OSO-E215")


# --- re-encrypt and forward, tampering, wrong keys ---------------------------------------------


@attack
def reencrypted_to_another_recipient_and_forwarded() -> Attack:
    m = _sealed()
    # school 2 decrypts the key and forwards the untouched signed message to school 3
    content_key = m.content_key(OIN2)
    old = m.one("//xenc:EncryptedKey")
    new = xmlenc.build_encrypted_key(
        key_id=old.get("Id") or "EK",
        recipient=identity(OIN3).certificate,
        content_key=content_key,
        data_ids=(m.one("//xenc:EncryptedData").get("Id") or "",),
        key_transport=KT_RSA_OAEP,
    )
    old.getparent().replace(old, new)  # type: ignore[union-attr]
    return Attack(
        m.bytes(),
        "OSO-E223",
        {"identities": [identity(OIN3)], "policy": policy(expected_to="https://gw3.example/")},
    )


@attack
def tampered_ciphertext() -> Attack:
    m = _sealed()
    raw = bytearray(m.ciphertext())
    raw[20] ^= 0x01
    m.set_ciphertext(bytes(raw))
    return Attack(m.bytes(), "OSO-E210")


@attack
def gcm_tag_cut_off() -> Attack:
    m = _sealed()
    m.set_ciphertext(m.ciphertext()[:-16])
    return Attack(m.bytes(), "OSO-E210")


@attack
def ciphertext_shorter_than_iv_and_tag() -> Attack:
    m = _sealed()
    m.set_ciphertext(m.ciphertext()[:20])
    return Attack(m.bytes(), "OSO-E211")


@attack
def malformed_base64_in_the_ciphertext() -> Attack:
    m = _sealed()
    m.cipher_value.text = "!!not*base64!!" + (m.cipher_value.text or "")
    return Attack(m.bytes(), "OSO-E211")


@attack
def key_not_addressed_to_any_of_our_identities() -> Attack:
    return Attack(_sealed().bytes(), "OSO-E208", {"identities": [identity(OIN3)]})


@attack
def wrong_private_key_for_the_addressed_certificate() -> Attack:
    wrong = Identity(
        oin=OIN2, private_key=identity(OIN3).private_key, certificate=identity(OIN2).certificate
    )
    return Attack(_sealed().bytes(), "OSO-E210", {"identities": [wrong]})


@attack
def forged_payload_under_the_genuine_signature() -> Attack:
    m = _sealed()
    m.reencrypt(m.plaintext().replace(b"Jansen", b"Pietersen"))
    return Attack(m.bytes(), "OSO-E214")


@attack
def decrypted_content_is_not_well_formed() -> Attack:
    m = _sealed()
    m.reencrypt(b"<dossier><unclosed></dossier>")
    return Attack(m.bytes(), "OSO-E225")


@attack
def decrypted_content_carries_a_dtd() -> Attack:
    m = _sealed()
    m.reencrypt(b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>')
    return Attack(m.bytes(), "OSO-E202")


# --- algorithm downgrades ---------------------------------------------------------------------


@attack
def aes_cbc_data_encryption() -> Attack:
    m = _sealed()
    m.reencrypt(m.plaintext(), cbc=True)
    return Attack(m.bytes(), "OSO-E212")


@attack
def rsa_1_5_key_transport() -> Attack:
    m = _sealed()
    m.reencrypt(m.plaintext(), rsa15=True)
    return Attack(m.bytes(), "OSO-E209")


@attack
def key_transport_outside_the_policy() -> Attack:
    return Attack(
        _sealed(key_transport=KT_RSA_OAEP_MGF1P).bytes(),
        "OSO-E209",
        {"policy": policy(key_transports=frozenset({KT_RSA_OAEP}))},
    )


@attack
def rsa_sha1_signature() -> Attack:
    m = _sealed()
    m.one("//ds:SignatureMethod").set("Algorithm", SIG_RSA_SHA1)
    m.resign(sha1=True)
    return Attack(m.bytes(), "OSO-E219")


@attack
def hmac_signature() -> Attack:
    m = _sealed()
    m.one("//ds:SignatureMethod").set("Algorithm", SIG_HMAC_SHA256)
    mac = hmac.new(b"guessable", exc_c14n(m.signed_info), hashlib.sha256).digest()
    m.one("//ds:SignatureValue").text = base64.b64encode(mac).decode()
    return Attack(m.bytes(), "OSO-E219")


@attack
def sha1_reference_digest() -> Attack:
    m = _sealed()
    to = m.one("//wsa:To")
    ref = m.reference_to(to)
    ref.find(q(DS, "DigestMethod")).set("Algorithm", DIGEST_SHA1)  # type: ignore[union-attr]
    ref.find(q(DS, "DigestValue")).text = base64.b64encode(  # type: ignore[union-attr]
        hashlib.sha1(exc_c14n(to)).digest()  # noqa: S324 - the downgrade under test
    ).decode()
    m.resign()
    return Attack(m.bytes(), "OSO-E220")


@attack
def inclusive_c14n_transform() -> Attack:
    m = _sealed()
    transform = m.reference_to(m.one("//wsa:To")).find(
        f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}"
    )
    transform.set("Algorithm", C14N_INCL)  # type: ignore[union-attr]
    m.resign()
    return Attack(m.bytes(), "OSO-E226")


@attack
def enveloped_signature_transform_added() -> Attack:
    m = _sealed()
    transforms = m.reference_to(m.one("//wsa:To")).find(q(DS, "Transforms"))
    etree.SubElement(transforms, q(DS, "Transform"), Algorithm=ENVELOPED)  # type: ignore[arg-type]
    m.resign()
    return Attack(m.bytes(), "OSO-E226")


# --- unsigned parts, integrity ----------------------------------------------------------------


@attack
def unsigned_timestamp() -> Attack:
    m = _sealed()
    ref = m.reference_to(m.one("//wsu:Timestamp"))
    ref.getparent().remove(ref)  # type: ignore[union-attr]
    m.resign()
    return Attack(m.bytes(), "OSO-E216")


@attack
def unsigned_wsa_action() -> Attack:
    m = _sealed()
    ref = m.reference_to(m.one("//wsa:Action"))
    ref.getparent().remove(ref)  # type: ignore[union-attr]
    m.resign()
    return Attack(m.bytes(), "OSO-E216")


@attack
def unsigned_relates_to_injected() -> Attack:
    m = _sealed()
    relates = etree.Element(q(WSA, "RelatesTo"))
    relates.text = "urn:uuid:00000000-0000-4000-8000-00000000dead"
    m.one("//wsa:MessageID").addnext(relates)
    return Attack(m.bytes(), "OSO-E216")


@attack
def signed_action_changed() -> Attack:
    m = _sealed()
    m.one("//wsa:Action").text = "urn:oso:delete-everything"
    return Attack(m.bytes(), "OSO-E214")


@attack
def signature_value_altered() -> Attack:
    m = _sealed()
    value = bytearray(base64.b64decode(m.one("//ds:SignatureValue").text or ""))
    value[5] ^= 0x80
    m.one("//ds:SignatureValue").text = base64.b64encode(bytes(value)).decode()
    return Attack(m.bytes(), "OSO-E213")


@attack
def signed_by_another_key_than_the_token() -> Attack:
    m = _sealed()
    m.resign(identity(OIN3))
    return Attack(m.bytes(), "OSO-E213")


@attack
def key_info_points_elsewhere() -> Attack:
    m = _sealed()
    m.one("//ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference").set(
        "URI", "#" + (m.one("//wsu:Timestamp").get(WSU_ID) or "")
    )
    return Attack(m.bytes(), "OSO-E224")


# --- timestamps -------------------------------------------------------------------------------


@attack
def stale_timestamp() -> Attack:
    return Attack(_sealed().bytes(), "OSO-E205", {"now": dev_now() + timedelta(minutes=8)})


@attack
def timestamp_in_the_future() -> Attack:
    return Attack(_sealed().bytes(), "OSO-E206", {"now": dev_now() - timedelta(minutes=3)})


@attack
def timestamp_lifetime_too_long() -> Attack:
    return Attack(_sealed(ttl=timedelta(hours=2)).bytes(), "OSO-E207")


# --- the signer's certificate (trust is the PKI module's; open maps it to E221) ---------------


def _signed_by(ident: Identity) -> bytes:
    return seal_1_to_2(_marked(), sender=ident).data


@attack
def expired_signer_certificate() -> Attack:
    return Attack(_signed_by(identity(OIN_EXPIRED)), "OSO-E221", cause_code="OSO-E302")


@attack
def revoked_signer_certificate() -> Attack:
    return Attack(_signed_by(identity(OIN_REVOKED)), "OSO-E221", cause_code="OSO-E304")


@attack
def not_yet_valid_signer_certificate() -> Attack:
    return Attack(_signed_by(special_identity("future")), "OSO-E221", cause_code="OSO-E303")


@attack
def untrusted_self_signed_signer() -> Attack:
    return Attack(_signed_by(special_identity("selfsigned")), "OSO-E221", cause_code="OSO-E301")


@attack
def ca_certificate_used_as_signer() -> Attack:
    return Attack(_signed_by(special_identity("ca")), "OSO-E221", cause_code="OSO-E309")


@attack
def signer_certificate_without_digital_signature_usage() -> Attack:
    return Attack(_signed_by(special_identity("usage")), "OSO-E221", cause_code="OSO-E308")


@attack
def from_oin_differs_from_the_signer_certificate() -> Attack:
    liar = Identity(
        oin=OIN3, private_key=identity(OIN1).private_key, certificate=identity(OIN1).certificate
    )
    return Attack(_signed_by(liar), "OSO-E222")


# --- the envelope and the parser --------------------------------------------------------------


@attack
def second_security_header() -> Attack:
    m = _sealed()
    m.security.addnext(etree.Element(q(WSSE, "Security")))
    return Attack(m.bytes(), "OSO-E204")


@attack
def unknown_element_in_the_security_header() -> Attack:
    m = _sealed()
    etree.SubElement(m.security, q(WSSE, "UsernameToken"))
    return Attack(m.bytes(), "OSO-E204")


@attack
def security_header_not_must_understand() -> Attack:
    m = _sealed()
    del m.security.attrib[q(SOAP, "mustUnderstand")]
    return Attack(m.bytes(), "OSO-E204")


@attack
def xml_with_a_dtd() -> Attack:
    data = _sealed().bytes()
    return Attack(b"<!DOCTYPE Envelope [<!ELEMENT Envelope ANY>]>" + data, "OSO-E202")


@attack
def xml_with_an_external_entity() -> Attack:
    data = _sealed().bytes().replace(b">urn:oso:deliver<", b">&xxe;<", 1)
    return Attack(b'<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + data, "OSO-E202")


@attack
def xml_entity_expansion() -> Attack:
    bomb = b'<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    data = _sealed().bytes().replace(b">urn:oso:deliver<", b">&b;&b;&b;<", 1)
    return Attack(bomb + data, "OSO-E202")


@attack
def excessive_depth() -> Attack:
    m = _sealed()
    deep = etree.SubElement(m.header, "{urn:evil}d")
    for _ in range(100):
        deep = etree.SubElement(deep, "{urn:evil}d")
    return Attack(m.bytes(), "OSO-E233")


@attack
def oversize_input() -> Attack:
    data = _sealed().bytes()
    return Attack(data, "OSO-E203", {"policy": policy(max_bytes=len(data) - 1)})


@attack
def truncated_input() -> Attack:
    data = _sealed().bytes()
    return Attack(data[: len(data) // 2], "OSO-E201")


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_rejected_with_its_own_code_and_leaks_no_payload(name: str) -> None:
    case = ATTACKS[name]()
    args: dict[str, object] = {
        "identities": [identity(OIN2)],
        "trust": dev_trust(),
        "policy": policy(),
        "now": dev_now(),
    }
    args.update(case.open_kw)
    with pytest.raises(GatewayError) as info:
        open_message(case.data, **args)  # type: ignore[arg-type]
    error = info.value
    assert error.code == case.code, f"{name}: {error!s}"
    if case.cause_code is not None:
        assert getattr(error, "cause_code", None) == case.cause_code
    texts = [str(error), error.detail, error.public_message, repr(error.args)]
    cause = error.__cause__
    while cause is not None:
        texts.append(str(cause))
        cause = cause.__cause__
    for marker in MARKERS:
        assert all(marker not in text for text in texts), f"{name} leaks payload data"


def test_the_genuine_message_used_by_the_attacks_opens() -> None:
    """Control: without the attack, the same message and options are accepted."""
    opened = open_message(
        _sealed().bytes(),
        identities=[identity(OIN2)],
        trust=dev_trust(),
        policy=policy(),
        now=dev_now(),
    )
    assert MARKERS[0] in (opened.payload[0][0].text or "")
    assert opened.to == ENDPOINT2


def test_authentication_failures_tell_the_peer_one_opaque_message() -> None:
    messages = set()
    for name in ("tampered_ciphertext", "signature_value_altered", "unsigned_timestamp"):
        case = ATTACKS[name]()
        with pytest.raises(GatewayError) as info:
            open_message(
                case.data,
                identities=[identity(OIN2)],
                trust=dev_trust(),
                policy=policy(),
                now=dev_now(),
            )
        messages.add(info.value.public_message)
    assert messages == {"Authentication failed."}
