"""Review attacks on the hardened parser's byte counts (``security/xmlparse.py``).

``xmlns`` and ``:`` are counted only in a window around each ``=`` (64 bytes before it). A
declaration whose name is longer than that, or that has white space before its ``=``, put its
``xmlns`` (and a qualified attribute its ``:``) outside every window once the ``=`` were spaced
out: the namespace bounds were never checked on the tree, and such a document was accepted.
"""

from __future__ import annotations

import pytest
from _wss_support import OIN2, dev_now, dev_trust, identity, policy, sample_payload, seal_1_to_2

from oso_gateway.errors import GatewayError
from oso_gateway.security import xmlparse
from oso_gateway.security.wss import open_message
from oso_gateway.security.xmlparse import parse_xml

#: text between the declarations, longer than a window, so that each "=" starts a window of its own
_GAP = b"x" * 3000


def _long_prefixes(n: int) -> bytes:
    return b"".join(
        _GAP + b"<e xmlns:p%04d" % i + b"q" * 100 + b'="urn:x%d"/>' % i for i in range(n)
    )


def _space_before_equals(n: int) -> bytes:
    return b"".join(_GAP + b"<e xmlns:p%d" % i + b" " * 100 + b'="urn:x%d"/>' % i for i in range(n))


def _long_local_names(n: int) -> bytes:
    return b"".join(_GAP + b"<e a:" + b"l" * 100 + b'="v"/>' for _ in range(n))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<r>" + _long_prefixes(300) + b"</r>", "OSO-E231"),
        (b"<r>" + _space_before_equals(300) + b"</r>", "OSO-E231"),
        (b'<r xmlns:a="urn:a">' + _long_local_names(300) + b"</r>", "OSO-E239"),
        (
            b'<r xmlns:a="urn:a">'
            + _long_local_names(300).replace(b'="v"', b' \n\t="v"')
            + b"</r>",
            "OSO-E239",
        ),
    ],
    ids=["long-prefix", "space-before-equals", "long-local-name", "long-name-and-space"],
)
def test_names_far_from_their_equals_still_count_towards_the_namespace_bounds(
    body: bytes, code: str
) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_xml(body)
    assert caught.value.code == code


def test_declarations_on_one_element_with_long_prefixes_are_counted_per_element() -> None:
    # 40 declarations on one element, each name longer than a window: E230, not accepted
    decls = b"".join(b" xmlns:p%02d" % i + b"z" * 3000 + b'="urn:x%d"' % i for i in range(40))
    with pytest.raises(GatewayError) as caught:
        parse_xml(b"<r><e" + decls + b"/></r>")
    assert caught.value.code == "OSO-E230"


def test_the_counts_never_fall_below_the_real_declarations_and_qualified_names() -> None:
    raw = b'<r xmlns:a="urn:a">' + _long_prefixes(50) + _long_local_names(50) + b"</r>"
    counts = xmlparse.markup_counts(raw, 100_000)
    assert counts.declarations >= 51
    assert counts.colons >= 100


def test_base64_padding_is_not_taken_for_an_attribute_and_costs_no_extra_count() -> None:
    # "=" followed by "<" (padding at the end of a text) is no attribute's: its window stays
    # 64 bytes back, so "xmlns" in the base64 before it is not counted
    text = b"xmlns" * 1000 + b"QQ=="
    raw = b"<r>" + b"".join(_GAP + b"<a>" + text + b"</a>" for _ in range(40)) + b"</r>"
    counts = xmlparse.markup_counts(raw, 100_000)
    assert counts.equals == 80
    assert counts.declarations < 40 * 20


def test_an_envelope_stuffed_with_far_declarations_is_refused_before_any_crypto() -> None:
    # a peer with no certificate at all: the flood sits in an unsigned header block
    data = seal_1_to_2(sample_payload()).data
    at = data.index(b"</soap:Header>")
    stuffed = data[:at] + b"<f:Flood xmlns:f='urn:f'>" + _long_prefixes(300) + b"</f:Flood>"
    stuffed += data[at:]
    with pytest.raises(GatewayError) as caught:
        open_message(
            stuffed, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
        )
    assert caught.value.code == "OSO-E231"


# --- encodings: the byte counts find markup as ASCII bytes ------------------------------------

_L, _G = "+ADw-", "+AD4-"  # '<' and '>' as UTF-7 writes them (no 0x3C / 0x3E byte at all)
_UTF7 = b'<?xml version="1.0" encoding="UTF-7"?>'


@pytest.mark.parametrize(
    "data",
    [
        # nesting 300 deep, past the 64 bound, padded past the length under which '<' is bounded
        # by the document's length: the one ASCII '<' is the declaration's
        _UTF7
        + (_L + "a" + _G + (_L + "a" + _G) * 300 + "x" * 60_000 + (_L + "/a" + _G) * 301).encode(),
        # 300 000 elements, past both the markup and the element bounds
        _UTF7 + (_L + "r" + _G + (_L + "e/" + _G) * 300_000 + _L + "/r" + _G).encode(),
        # 300 declarations in UTF-16: no ASCII "xmlns" in the bytes
        ("<r>" + "".join(f'<e xmlns:p{i}="urn:x{i}"/>' for i in range(300)) + "</r>").encode(
            "utf-16"
        ),
        ('<?xml version="1.0" encoding="UTF-16"?><r/>').encode("utf-16"),
        ('<?xml version="1.0" encoding="IBM037"?><r/>').encode("cp037"),
        "<r/>".encode("utf-32"),
        # a declaration too long for the check to read: the parser is still told UTF-8, so
        # libxml2 does not switch to the UTF-7 it names either
        b'<?xml version="1.0"'
        + b" " * 600
        + b'encoding="UTF-7"?>'
        + (_L + "r" + _G + (_L + "e/" + _G) * 60_000 + _L + "/r" + _G).encode(),
    ],
    ids=[
        "utf7-deep",
        "utf7-flood",
        "utf16-declarations",
        "utf16-declared",
        "ebcdic",
        "utf32",
        "utf7-unread",
    ],
)
def test_a_document_not_in_utf8_is_refused_not_parsed_past_the_counts(data: bytes) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_xml(data)
    assert caught.value.code == "OSO-E201"


def test_utf8_and_ascii_compatible_encodings_still_parse() -> None:
    for data in (
        "<r>é</r>".encode(),
        b"\xef\xbb\xbf" + '<?xml version="1.0" encoding="UTF-8"?><r>é</r>'.encode(),
        b'<?xml version="1.0" encoding="us-ascii"?><r>e</r>',
        b'<?xml version="1.0" encoding="ISO-8859-1"?><r>\xe9</r>',
        b"<?xml version='1.0' encoding='windows-1252'?><r>\x80</r>",
    ):
        assert parse_xml(data).getroot().tag == "r"


def test_a_utf16_envelope_with_a_declaration_flood_is_refused_before_any_crypto() -> None:
    # a peer without a certificate: the envelope re-encoded as UTF-16 (signatures are over the
    # canonical form, so the encoding alone would not break them), 300 declarations in an
    # unsigned header block that no ASCII "xmlns" byte counted
    data = seal_1_to_2(sample_payload()).data
    at = data.index(b"</soap:Header>")
    decls = b"".join(b'<e xmlns:p%d="urn:x%d"/>' % (i, i) for i in range(300))
    text = (data[:at] + b"<f:F xmlns:f='urn:f'>" + decls + b"</f:F>" + data[at:]).decode()
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2 :]
    with pytest.raises(GatewayError) as caught:
        open_message(
            text.encode("utf-16"),
            identities=[identity(OIN2)],
            trust=dev_trust(),
            policy=policy(),
            now=dev_now(),
        )
    assert caught.value.code == "OSO-E201"
