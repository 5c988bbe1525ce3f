"""Sealing a payload given as its canonical form (no tree), and the lean pieces that make it.

The sender drops a large dossier's tree before sealing: ``canonical(root, consume=True)`` moves
long texts out of the tree into the form, ``seal`` takes the form, and the ciphertext is
encrypted and base64-encoded piece by piece. Each must give exactly the bytes of the plain way.
"""

from __future__ import annotations

import base64
import copy

import pytest
from _wss_support import OIN2, dev_now, dev_trust, identity, policy, sample_payload, seal_1_to_2
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from oso_gateway.security import c14n, primitives
from oso_gateway.security.c14n import (
    Canonical,
    canonical,
    exc_c14n,
    wrapped_c14n_digest,
    wrapped_canonical_digest,
)
from oso_gateway.security.namespaces import SOAP, WSU
from oso_gateway.security.wss import open_message

LONG = c14n.SPLICE_MIN_CHARS + 5


def _tricky(text: str) -> etree._Element:
    root = etree.fromstring(
        b'<d:dossier xmlns:d="urn:d" xmlns:unused="urn:u"><d:a x="1&amp;2">kort</d:a>'
        b"<d:blob/><d:b/><d:blob/></d:dossier>"
    )
    for blob in root.iter("{urn:d}blob"):
        blob.text = text
    return root


@pytest.mark.parametrize(
    "text",
    [
        "QUJD" * (LONG // 4),  # base64, as an attachment
        ("a&b<c>d\re é€ " * (LONG // 14 + 1)),  # everything C14N escapes, and non-ASCII
    ],
)
def test_consuming_canonical_form_equals_the_plain_one(text: str) -> None:
    root = _tricky(text)
    expected = exc_c14n(root)
    form = canonical(copy.deepcopy(root), consume=True)
    assert form.data == expected
    assert canonical(root).data == expected  # not consuming: the plain way, tree untouched
    assert root[1].text == text


def test_a_short_or_non_root_payload_is_canonicalised_the_plain_way() -> None:
    root = _tricky("kort")
    assert canonical(root, consume=True).data == exc_c14n(root)
    child = _tricky("QUJD" * (LONG // 4))[1]
    assert canonical(child, consume=True).data == exc_c14n(child)
    assert child.text == "QUJD" * (LONG // 4)  # a subtree is never consumed


def _body() -> etree._Element:
    envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsu": WSU})
    body = etree.SubElement(envelope, f"{{{SOAP}}}Body")
    body.set(f"{{{WSU}}}Id", "Body-1")
    return body


@pytest.mark.parametrize(
    "payload",
    [
        b'<d:dossier xmlns:d="urn:d"><d:x>t</d:x></d:dossier>',
        # uses the SOAP namespace the Body renders: the careful path
        b'<d:dossier xmlns:d="urn:d" xmlns:s="' + SOAP.encode() + b'"><s:x>t</s:x></d:dossier>',
        # only mentions it in text: the careful path too, same digest
        b'<d:dossier xmlns:d="urn:d">"' + SOAP.encode() + b'"</d:dossier>',
    ],
)
def test_the_body_digest_of_a_canonical_payload_equals_the_tree_one(payload: bytes) -> None:
    root = etree.fromstring(payload)
    form = exc_c14n(root)
    parsed: list[bytes] = []

    def parse(data: bytes) -> etree._Element:
        parsed.append(data)
        return etree.fromstring(data)

    digest = wrapped_canonical_digest(_body(), Canonical(form), parse)
    assert digest == wrapped_c14n_digest(_body(), root, form)
    assert bool(parsed) == (SOAP.encode() in payload)


def test_a_canonical_payload_seals_and_opens_like_its_tree() -> None:
    payload = sample_payload()
    sealed = seal_1_to_2(Canonical(exc_c14n(payload)))  # type: ignore[arg-type]
    opened = open_message(
        sealed.data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
    )
    assert exc_c14n(opened.payload) == exc_c14n(payload)
    assert sealed.payload_digest == primitives.sha256_hex(exc_c14n(payload))


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 3 * 1024 + 1])
def test_piecewise_aes_gcm_gives_iv_ciphertext_and_tag_as_one_call(size: int) -> None:
    key, plaintext = primitives.new_content_key(), bytes(range(256)) * (size // 256 + 1)
    plaintext = plaintext[:size]
    iv, pieces = primitives.aes_gcm_encrypt_pieces(key, plaintext, piece=9)
    joined = b"".join(pieces)
    assert AESGCM(key).decrypt(iv, joined, None) == plaintext
    assert primitives.aes_gcm_decrypt(key, iv + joined) == plaintext


def test_the_sealed_cipher_value_is_one_base64_text() -> None:
    sealed = seal_1_to_2(sample_payload())
    root = etree.fromstring(sealed.data)
    value = root.findtext(".//{http://www.w3.org/2001/04/xmlenc#}CipherValue")
    assert value is not None and base64.b64decode(value, validate=True)
