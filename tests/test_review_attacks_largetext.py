"""Review attacks on the cut open path (``security/largetext.py``) and the stored dossier.

A large message's Body CipherValue is decoded from the message's bytes, not from the tree. These
tests put a second, decoy ciphertext where the cut may find it first, move the real one, and hide
the cut's run in places that are not the Body's CipherValue text: each must end exactly as the
whole parse ends (refused with the same code), never opened from the decoy.
"""

from __future__ import annotations

import base64
import re

import pytest
from _wss_support import OIN2, dev_now, dev_trust, identity, policy, seal_1_to_2
from lxml import etree

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import GatewayError
from oso_gateway.security import c14n, largetext, wss
from oso_gateway.security.wss import open_message
from oso_gateway.security.xmlparse import parse_xml


@pytest.fixture(scope="module")
def sealed() -> bytes:
    data = generate_dossier(overstap="POVO", seed=11, now=dev_now(), attachments_kb=1536)
    return seal_1_to_2(etree.fromstring(data)).data


def _outcome(data: bytes, monkeypatch: pytest.MonkeyPatch, *, cut: bool) -> str:
    with monkeypatch.context() as m:
        if not cut:
            m.setattr(wss, "_CUT_MIN", 1 << 40)
        try:
            opened = open_message(
                data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
            )
        except GatewayError as exc:
            return exc.code
        return "ok " + opened.payload_digest


def _span(data: bytes) -> tuple[int, int]:
    match = re.search(rb"<xenc:CipherValue>([^<]{100000,})</xenc:CipherValue>", data)
    assert match is not None
    return match.span(1)


_XENC = b'xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"'


def _decoy(text: bytes) -> bytes:
    """A header block holding a Body/EncryptedData/CipherData/CipherValue chain of ``text``."""
    return (
        b'<d:Decoy xmlns:d="urn:decoy"><soap:Body><xenc:EncryptedData ' + _XENC + b">"
        b"<xenc:CipherData><xenc:CipherValue>" + text + b"</xenc:CipherValue></xenc:CipherData>"
        b"</xenc:EncryptedData></soap:Body></d:Decoy>"
    )


def _in_header(data: bytes, block: bytes) -> bytes:
    at = data.index(b"</soap:Header>")
    return data[:at] + block + data[at:]


def test_a_longer_decoy_ciphertext_in_a_header_is_never_what_is_decrypted(
    sealed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The decoy is the longest run and sits in a Body/EncryptedData chain (inside a header
    # block), so the cut takes it; the Body's own EncryptedData must still be the one decoded.
    start, end = _span(sealed)
    decoy = base64.b64encode(b"\0" * ((end - start) // 4 * 3 + 3000))
    tampered = _in_header(sealed, _decoy(decoy))
    cut = largetext.cut_ciphertext(tampered, min_size=wss._CUT_MIN)
    assert cut is not None and cut.run_end - cut.run_start == len(decoy)
    whole = _outcome(tampered, monkeypatch, cut=False)
    with_cut = _outcome(tampered, monkeypatch, cut=True)
    # the whole parse ignores the unsigned header block and opens the real Body; so does the cut
    # path (the decoy is not in the envelope's Body: the cut is not used): never the decoy
    assert whole.startswith("ok") and with_cut == whole


def test_the_real_ciphertext_moved_to_a_decoy_and_the_body_emptied_is_refused(
    sealed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The signed Body keeps a tiny CipherValue; the real ciphertext is moved into a header
    # decoy. Decrypting the decoy would give the signed payload: it must not be used.
    start, end = _span(sealed)
    real = sealed[start:end]
    tampered = sealed[:start] + b"AAAA" + sealed[end:]
    tampered = _in_header(tampered, _decoy(real))
    for cut in (True, False):
        assert not _outcome(tampered, monkeypatch, cut=cut).startswith("ok")


def test_the_run_hidden_in_a_comment_next_to_the_ciphervalue_is_not_decoded(
    sealed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ">" + the real base64 + "<" inside a comment in the CipherValue: the token would sit in the
    # comment, not in the CipherValue's text; the CipherValue's own text is a short decoy
    start, end = _span(sealed)
    real = sealed[start:end]
    tampered = sealed[:start] + b"AAAA<!-- x>" + real + b"<y -->" + sealed[end:]
    expected = _outcome(tampered, monkeypatch, cut=False)
    assert _outcome(tampered, monkeypatch, cut=True) == expected
    assert not expected.startswith("ok")


def test_a_canonical_check_is_not_fooled_by_a_run_in_a_comment_or_cdata() -> None:
    run = b"QUJD" * 20_000

    def parse(data: bytes) -> etree._Element:
        return parse_xml(data).getroot()

    for document in (
        b"<r><a>x</a><!-- y>" + run + b"<z --></r>",
        b"<r><a><![CDATA[ y>" + run + b"<z ]]></a></r>",
        b"<r><a>" + run + b"</a></r>" + b"<!--" + b" " * 70_000 + b"-->",
    ):
        root = parse(document)
        assert not c14n.is_canonical(document, root, start=0, stop=len(document), parse=parse)


def test_a_dossier_with_many_large_attachments_is_rebuilt_byte_for_byte() -> None:
    # eleven runs or more: token "x1" must not also match "x10" (the rebuild then fell back to
    # serialising the whole tree, three times each attachment in libxml2)
    runs = [base64.b64encode(bytes([i]) * 60_000) for i in range(12)]
    canonical = b"<r>" + b"".join(b"<a>" + run + b"</a>" for run in runs) + b"</r>"

    def parse(data: bytes) -> etree._Element:
        return parse_xml(data).getroot()

    built = largetext.serialise(canonical, parse=parse, min_size=c14n.CUT_TEXT)
    assert built is not None
    expected = etree.tostring(parse(canonical), encoding="utf-8", xml_declaration=True)
    assert built.size == len(expected)
    assert built.build() == expected


_CIPHER_DATA = re.compile(
    rb"<xenc:CipherData><xenc:CipherValue>[^<]*</xenc:CipherValue></xenc:CipherData>"
)
_SHORT = b"<xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData>"


@pytest.mark.parametrize(
    "where", ["decoy CipherData before", "decoy CipherData after", "second CipherValue"]
)
def test_a_second_ciphertext_in_the_body_encrypted_data_is_refused_either_way(
    where: str, sealed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    match = _CIPHER_DATA.search(sealed)
    assert match is not None
    if where == "decoy CipherData before":
        tampered = sealed[: match.start()] + _SHORT + sealed[match.start() :]
    elif where == "decoy CipherData after":
        tampered = sealed[: match.end()] + _SHORT + sealed[match.end() :]
    else:
        extra = b"</xenc:CipherValue><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData>"
        tampered = sealed.replace(b"</xenc:CipherValue></xenc:CipherData>", extra, 1)
    assert _outcome(tampered, monkeypatch, cut=True) == "OSO-E204"
    assert _outcome(tampered, monkeypatch, cut=False) == "OSO-E204"
