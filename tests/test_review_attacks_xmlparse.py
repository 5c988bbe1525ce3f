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
