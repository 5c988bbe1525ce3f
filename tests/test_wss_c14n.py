"""The Body digest computed without copying the payload equals the real exclusive C14N digest.

Vectors: ``tests/vectors/wss/payloads/*.xml`` (namespaces, comments, CDATA, undeclarations,
non-UTF-8 input, and a payload that uses the envelope's own namespaces, which forces the exact
fallback path).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
from _wss_support import OIN2, dev_now, dev_trust, identity, policy, seal_1_to_2
from lxml import etree

from oso_gateway.security.c14n import deep_copy, exc_c14n, wrapped_c14n_digest
from oso_gateway.security.namespaces import SOAP, WSU, q
from oso_gateway.security.wss import open_message
from oso_gateway.security.xmlparse import parse_xml

VECTORS = sorted((Path(__file__).parent / "vectors" / "wss" / "payloads").glob("*.xml"))


def _envelope_body() -> etree._Element:
    envelope = etree.Element(q(SOAP, "Envelope"), nsmap={"soap": SOAP, "wsu": WSU, "x": "urn:x"})
    etree.SubElement(envelope, q(SOAP, "Header"))
    body = etree.SubElement(envelope, q(SOAP, "Body"))
    body.set(q(WSU, "Id"), "Body-1")
    return body


def _real_digest(
    body: etree._Element, payload: etree._Element, before: str, after: str, prefixes: list[str]
) -> bytes:
    clone = copy.deepcopy(body)
    clone.text = before or None
    inner = copy.deepcopy(payload)
    inner.tail = after or None
    clone.append(inner)
    body.addnext(clone)  # same document context
    try:
        return hashlib.sha256(exc_c14n(clone, inclusive_prefixes=prefixes)).digest()
    finally:
        body.getparent().remove(clone)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("before", "after", "prefixes"),
    [("", "", []), ("\n  ", "\n", []), ("", "", ["soap", "x"])],
    ids=["bare", "whitespace", "inclusive-prefixes"],
)
def test_wrapped_digest_equals_canonicalising_the_real_body(
    path: Path, before: str, after: str, prefixes: list[str]
) -> None:
    payload = parse_xml(path.read_bytes()).getroot()
    body = _envelope_body()
    got = wrapped_c14n_digest(
        body,
        payload,
        exc_c14n(payload),
        before=before,
        after=after,
        inclusive_prefixes=prefixes,
    )
    assert got == _real_digest(body, payload, before, after, prefixes)
    assert len(body) == 0 and body.text is None  # the wrapper is left as it was


def test_wrapped_digest_refuses_non_whitespace_around_the_payload() -> None:
    with pytest.raises(ValueError):
        wrapped_c14n_digest(_envelope_body(), etree.Element("a"), b"<a></a>", before="x")


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.name)
def test_vector_payloads_round_trip(path: Path) -> None:
    payload = parse_xml(path.read_bytes()).getroot()
    sealed = seal_1_to_2(payload)
    opened = open_message(
        sealed.data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
    )
    assert exc_c14n(opened.payload) == exc_c14n(payload)
    assert opened.payload_digest == sealed.payload_digest


def test_deep_copy_copies_the_whole_subtree_and_shares_nothing() -> None:
    root = etree.fromstring(b'<r xmlns:a="urn:a"><a:b x="1">t<c/>u</a:b>tail</r>')
    original = root[0]
    clone = deep_copy(original)
    assert clone is not original and clone.getparent() is None
    assert etree.tostring(clone, method="c14n") == etree.tostring(original, method="c14n")
    clone[0].set("y", "2")
    clone.text = "changed"
    assert original[0].get("y") is None and original.text == "t"


def test_a_document_shorter_than_a_cut_run_is_returned_as_it_is() -> None:
    from oso_gateway.security import largetext

    run = b"QUJD" * 300  # 1200 bytes of base64 text
    data = b"<r><a>" + run + b"</a></r>"
    short = largetext.cut_texts(data, min_size=len(data) + 1)
    assert short.document is data and short.tokens == ()
    cut = largetext.cut_texts(data, min_size=len(run))
    assert len(cut.tokens) == 1 and run not in cut.document and len(cut.document) < len(data)


@pytest.mark.parametrize(
    "xml",
    [
        b'<p xmlns="urn:p"><q>"' + SOAP.encode() + b'"</q></p>',  # the URI quoted, in a text
        b'<p xmlns="urn:p" note="' + WSU.encode() + b'"/>',  # in an attribute value
        b'<s:p xmlns:s="' + SOAP.encode() + b'"/>',  # the payload uses the wrapper's namespace
        b'<p xmlns:w="' + WSU.encode() + b'" w:Id="x"/>',  # and its attribute's
        b'<p xml:lang="nl"/>',
    ],
    ids=["text", "value", "element", "attribute", "xml-lang"],
)
def test_the_bytes_test_of_the_wrapper_namespaces_gives_the_real_digest(xml: bytes) -> None:
    """The canonical form is searched for the wrapper's namespaces before the tree is walked:
    a mention (a false alarm or a real use) takes the exact path, so every case still
    digests like the real Body, from bytes and from a view of them alike."""
    payload = parse_xml(xml).getroot()
    body = _envelope_body()
    form = exc_c14n(payload)
    expected = _real_digest(body, payload, "", "", [])
    assert wrapped_c14n_digest(body, payload, form) == expected
    assert wrapped_c14n_digest(body, payload, memoryview(form)) == expected


def test_the_bytes_test_is_a_safe_negative_only() -> None:
    from oso_gateway.security.c14n import XML_NAMESPACE, _mentions

    form = b'<p xmlns="urn:p"></p>'
    assert not _mentions(form, frozenset({SOAP, WSU}))
    assert _mentions(b'<s:p xmlns:s="' + SOAP.encode() + b'"></s:p>', frozenset({SOAP}))
    assert _mentions(form, None)  # an unprefixed wrapper: always the exact path
    assert _mentions(form, frozenset({XML_NAMESPACE}))  # never declared: never found in bytes
    assert _mentions(form, frozenset({'urn:a"b'}))  # escaped in a canonical value: not found


def test_the_parse_limits_made_once_per_policy_follow_each_policy() -> None:
    # the limits are kept per policy (a frozen value): one opened with a tighter envelope
    # bound refuses what the default accepts, whichever was opened first
    from oso_gateway.errors import XmlTooMuchMarkup

    sealed = seal_1_to_2(etree.fromstring(b"<p>x</p>"))

    def open_with(**overrides: object) -> str | None:
        return open_message(
            sealed.data,
            identities=[identity(OIN2)],
            trust=dev_trust(),
            policy=policy(**overrides),
            now=dev_now(),
        ).payload.text

    assert open_with() == "x"
    with pytest.raises(XmlTooMuchMarkup):
        open_with(max_envelope_markup=50)
    assert open_with() == "x"
    with pytest.raises(XmlTooMuchMarkup):
        open_with(max_envelope_markup=50)
