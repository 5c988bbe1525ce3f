"""A large message is opened from its bytes: the Body's CipherValue is cut out of the envelope
before the hardened parse and decoded straight from the message (``security/largetext.py``).

What is checked: the cut path gives the same result and the same error code as parsing the whole
message, for honest messages and for tampered ones; a bytearray handed over is emptied; the
piecewise base64 decoder and the canonical-form check agree with the plain ones.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable

import pytest
from _wss_support import OIN2, dev_now, dev_trust, identity, policy, seal_1_to_2
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import GatewayError
from oso_gateway.security import c14n, largetext, primitives, wss, xmlparse
from oso_gateway.security.wss import OpenedMessage, open_message
from oso_gateway.security.xmlparse import DEFAULT_LIMITS, parse_xml

#: a dossier with 2 MiB of attachments: its CipherValue is well over the cut's minimum
_ATTACHMENTS_KB = 2048


@pytest.fixture(scope="module")
def sealed() -> bytes:
    data = generate_dossier(overstap="POVO", seed=7, now=dev_now(), attachments_kb=_ATTACHMENTS_KB)
    return seal_1_to_2(etree.fromstring(data)).data


def _open(data: bytes | bytearray) -> OpenedMessage:
    return open_message(
        data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
    )


def _outcome(data: bytes, monkeypatch: pytest.MonkeyPatch, *, cut: bool) -> str:
    """'ok <digest>' or the error code, opening with or without the cut."""
    with monkeypatch.context() as m:
        if not cut:
            m.setattr(wss, "_CUT_MIN", 1 << 40)
        try:
            return "ok " + _open(data).payload_digest
        except GatewayError as exc:
            return exc.code


def _cipher_value(data: bytes) -> re.Match[bytes]:
    match = re.search(rb"<xenc:CipherValue>([^<]{100000,})</xenc:CipherValue>", data)
    assert match is not None
    return match


def test_a_large_message_is_cut_and_its_ciphertext_found_where_the_profile_puts_it(
    sealed: bytes,
) -> None:
    cut = largetext.cut_ciphertext(sealed, min_size=wss._CUT_MIN)
    assert cut is not None and len(cut.envelope) < 512 * 1024
    counted = xmlparse.count_markup(sealed, DEFAULT_LIMITS)
    assert counted.size == len(sealed)
    holder = cut.holder(parse_xml(cut.envelope, counted=counted).getroot())
    assert holder is not None and etree.QName(holder).localname == "CipherValue"
    assert (cut.run_start, cut.run_end) == _cipher_value(sealed).span(1)


def test_a_cut_message_opens_to_the_same_verified_payload_as_a_whole_parse(
    sealed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_cut = _open(sealed)
    with monkeypatch.context() as m:
        m.setattr(wss, "_CUT_MIN", 1 << 40)
        whole = _open(sealed)
    assert with_cut.payload_digest == whole.payload_digest
    assert etree.tostring(with_cut.payload) == etree.tostring(whole.payload)
    assert with_cut.message_id == whole.message_id


def test_a_bytearray_handed_over_is_emptied_once_its_ciphertext_is_read(sealed: bytes) -> None:
    body = bytearray(sealed)
    opened = _open(body)
    assert body == bytearray()
    assert opened.payload_digest


def _replace_middle(data: bytes, new: bytes) -> bytes:
    start, end = _cipher_value(data).span(1)
    middle = (start + end) // 2
    return data[:middle] + new + data[middle + len(new) :]


def _insert_middle(data: bytes, new: bytes) -> bytes:
    start, end = _cipher_value(data).span(1)
    middle = (start + end) // 2 // 4 * 4
    return data[:middle] + new + data[middle:]


def _cipher_start(data: bytes, new: bytes) -> bytes:
    start, _end = _cipher_value(data).span(1)
    return data[:start] + new + data[start:]


_TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "a flipped base64 character": lambda d: _replace_middle(
        d, b"B" if d[(_cipher_value(d).start(1) + _cipher_value(d).end(1)) // 2] != 66 else b"C"
    ),
    "a character outside base64": lambda d: _replace_middle(d, b"*"),
    "padding in the middle": lambda d: _replace_middle(d, b"===="),
    "line breaks (as xmlsec1 writes)": lambda d: _insert_middle(d, b"\r\n\n  \t"),
    "a comment inside the CipherValue": lambda d: _insert_middle(d, b"<!--x-->"),
    "a CDATA section inside the CipherValue": lambda d: _insert_middle(d, b"<![CDATA[AAAA]]>"),
    "an entity reference": lambda d: _insert_middle(d, b"&#65;AAA"),
    "a child element": lambda d: _insert_middle(d, b"<x/>"),
    "'xmlns' at the start of the run": lambda d: _cipher_start(d, b"xmlnsxmlns" * 400),
    "one base64 character too many": lambda d: _insert_middle(d, b"A"),
    "truncated": lambda d: (
        d[: _cipher_value(d).start(1) + 5_000_000 // 4] + d[_cipher_value(d).end(1) :]
    ),
}


@pytest.mark.parametrize("name", sorted(_TAMPERINGS))
def test_a_tampered_large_message_gets_the_same_outcome_with_and_without_the_cut(
    name: str, sealed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = _TAMPERINGS[name](sealed)
    assert tampered != sealed
    expected = _outcome(tampered, monkeypatch, cut=False)
    assert _outcome(tampered, monkeypatch, cut=True) == expected
    if name != "line breaks (as xmlsec1 writes)":
        assert not expected.startswith("ok"), "a tampered message must be refused"


def test_a_flipped_ciphertext_byte_is_refused_as_a_decryption_failure(sealed: bytes) -> None:
    start, end = _cipher_value(sealed).span(1)
    middle = (start + end) // 2
    flipped = b"A" if sealed[middle : middle + 1] != b"A" else b"B"
    with pytest.raises(GatewayError) as caught:
        _open(sealed[:middle] + flipped + sealed[middle + 1 :])
    assert caught.value.code == "OSO-E210"


@settings(max_examples=200, deadline=None)
@given(
    raw=st.binary(max_size=64),
    noise=st.lists(
        st.tuples(
            st.integers(0, 200), st.sampled_from([b" ", b"\n", b"\r\n", b"\t", b"=", b"*", b"A"])
        )
    ),
)
def test_the_piecewise_base64_decoder_agrees_with_the_strict_one(
    raw: bytes, noise: list[tuple[int, bytes]]
) -> None:
    text = base64.b64encode(raw)
    for at, what in noise:
        at = min(at, len(text))
        text = text[:at] + what + text[at:]
    try:
        expected: bytes | None = primitives.b64decode(text.decode("ascii"))
    except ValueError:
        expected = None
    for chunk in (4, 8, 12, 4096):
        try:
            got: bytes | None = bytes(largetext.decode_base64(memoryview(text), chunk=chunk))
        except ValueError:
            got = None
        assert got == expected


@pytest.mark.parametrize(
    "document",
    [
        b"<a><b>" + b"QUFB" * 40 + b"</b><c>" + b"QkJC\n" * 30 + b"</c></a>",
        b"<a><b>" + b"QUFB" * 40 + b"</b><c/></a>",  # an empty element: not canonical
        b"<a><b>" + b"QUFB" * 40 + b"\r</b></a>",  # a carriage return: not canonical
        b"<a><!--" + b"QUFB" * 40 + b"--></a>",  # a comment: not canonical
        b'<a xmlns:x="urn:x"><b>' + b"QUFB" * 40 + b"</b></a>",  # an unused declaration
        b"<a><b>" + b"QUFB" * 40 + b"&amp;</b></a>",
    ],
)
def test_the_canonical_check_on_a_cut_document_agrees_with_the_whole_one(
    document: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = parse_xml(document).getroot()
    expected = c14n.exc_c14n(root) == document
    monkeypatch.setattr(c14n, "CUT_TEXT", 64)

    def parse(data: bytes) -> etree._Element:
        return parse_xml(data).getroot()

    assert c14n.is_canonical(document, root, start=0, stop=len(document), parse=parse) is expected


def _parse(data: bytes) -> etree._Element:
    return parse_xml(data).getroot()


@pytest.mark.parametrize("attachments_kb", [0, 2048, 5000])
def test_a_dossier_serialised_from_its_cut_canonical_form_is_what_lxml_writes(
    attachments_kb: int,
) -> None:
    data = generate_dossier(overstap="POVO", seed=5, now=dev_now(), attachments_kb=attachments_kb)
    root = etree.fromstring(data)
    canonical = c14n.exc_c14n(root)
    expected = etree.tostring(_parse(canonical), encoding="utf-8", xml_declaration=True)
    made = largetext.serialise(canonical, parse=_parse, min_size=64 * 1024)
    if attachments_kb == 0:
        assert made is None  # nothing long enough to cut: the caller serialises the tree
        return
    assert made is not None and made.size == len(expected)
    assert made.build() == expected


def test_serialising_puts_each_cut_run_back_in_its_own_place() -> None:
    runs = [b"QUFB" * 50, b"QkJC\n" * 40, b"Q0ND\t " * 30]
    canonical = b'<a xmlns="urn:a"><b>' + runs[0] + b"</b><c>" + runs[1] + b"</c>"
    canonical += b'<d k="v">' + runs[2] + b"</d><e></e></a>"
    made = largetext.serialise(canonical, parse=_parse, min_size=64)
    assert made is not None
    expected = etree.tostring(_parse(canonical), encoding="utf-8", xml_declaration=True)
    assert made.build() == expected and made.size == len(expected)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300).map(lambda b: bytes(b"<a"[x % 2] for x in b)))
def test_the_long_gaps_are_every_stretch_between_tags_of_at_least_the_size(data: bytes) -> None:
    for min_size in (1, 2, 5, 17):
        tags = [i for i, byte in enumerate(data) if byte == ord("<")]
        naive = [(a, b) for a, b in itertools.pairwise(tags) if b - a >= min_size]
        assert list(largetext._long_gaps(data, min_size)) == naive


def test_the_cut_keeps_the_strict_decode_that_checked_its_run_and_only_then(
    sealed: bytes,
) -> None:
    # No white space in the run: the strict decode is the check, and the ciphertext's one decode.
    cut = largetext.cut_ciphertext(sealed, min_size=wss._CUT_MIN)
    assert cut is not None
    assert cut.decoded == base64.b64decode(_cipher_value(sealed).group(1), validate=True)
    # White space (checked and decoded piecewise later) or padding in the middle (base64
    # characters only, so still cut; refused when decoded, E206): nothing is kept.
    for name in ("line breaks (as xmlsec1 writes)", "padding in the middle"):
        tampered = largetext.cut_ciphertext(_TAMPERINGS[name](sealed), min_size=wss._CUT_MIN)
        assert tampered is not None and tampered.decoded is None, name
    outside = _TAMPERINGS["a character outside base64"](sealed)
    assert largetext.cut_ciphertext(outside, min_size=wss._CUT_MIN) is None


def test_the_kept_decode_is_handed_over_once_and_let_go_with_the_message(sealed: bytes) -> None:
    root, message = wss._parse_envelope(sealed, DEFAULT_LIMITS)
    assert message.cut is not None and message.cut.decoded is None  # held by the message only
    assert message.decoded is not None and message.holder is not None
    raw = message.ciphertext(message.holder)
    assert raw == base64.b64decode(_cipher_value(sealed).group(1)) and message.decoded is None
    with pytest.raises(GatewayError) as refused:  # only the cut CipherValue is read
        message.ciphertext(root)
    assert refused.value.code == "OSO-E204"
    _root, unread = wss._parse_envelope(sealed, DEFAULT_LIMITS)
    assert unread.decoded is not None
    unread.release()
    assert unread.data is None and unread.decoded is None
