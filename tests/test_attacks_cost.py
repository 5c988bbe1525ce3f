"""Attacks on the receiver's time: messages built to be expensive are refused by a bound (each with
its own code) or cost what their size allows, and the cheapest refusal runs first.

Speed itself is measured by ``make bench`` (``benchmarks/bench_attacks.py``); these tests assert
the behaviour that keeps the cost bounded: which check refuses the message, and that the costly
steps (decryption, digests) are never reached by a forged or untrusted signature.
"""

from __future__ import annotations

import base64
from unittest import mock

import pytest
from _wss_support import (
    OIN2,
    dev_now,
    dev_trust,
    identity,
    policy,
    sample_payload,
    seal_1_to_2,
    special_identity,
)
from lxml import etree
from test_attacks_wss import Msg

from oso_gateway.errors import GatewayError
from oso_gateway.security import primitives, wss, xmldsig
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.namespaces import DS, q
from oso_gateway.security.xmlparse import DEFAULT_LIMITS

ENVELOPE = b"<soap:Envelope "


def _open(data: bytes) -> wss.OpenedMessage:
    return wss.open_message(
        data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
    )


def _code(data: bytes) -> str:
    with pytest.raises(GatewayError) as info:
        _open(data)
    return info.value.code


def _declarations(count: int, prefix: str = "p") -> bytes:
    return b"".join(b' xmlns:%s%d="urn:n:%d"' % (prefix.encode(), i, i) for i in range(count))


def _genuine() -> bytes:
    return seal_1_to_2(sample_payload()).data


# --- namespace declarations ----------------------------------------------------------------


def test_declarations_in_scope_of_the_signed_parts_do_not_change_the_signature() -> None:
    # why the flood works at all: exclusive C14N ignores declarations nobody uses
    data = _genuine().replace(ENVELOPE, ENVELOPE + _declarations(20)[1:] + b" ", 1)
    assert _open(data).to


def test_a_flood_of_declarations_with_a_genuine_signature_is_refused_by_the_document_bound() -> (
    None
):
    data = _genuine().replace(ENVELOPE, ENVELOPE + _declarations(2_000)[1:] + b" ", 1)
    assert _code(data) == "OSO-E231"


def test_a_flood_of_declarations_with_a_forged_signature_is_refused_by_the_same_bound() -> None:
    m = Msg(_genuine())
    m.one("//ds:SignatureValue").text = base64.b64encode(b"\x01" * 384).decode()
    data = m.bytes().replace(ENVELOPE, ENVELOPE + _declarations(2_000)[1:] + b" ", 1)
    assert _code(data) == "OSO-E231"


def test_declarations_spread_over_elements_count_towards_the_document_bound() -> None:
    blocks = b"".join(
        b"<x:D xmlns:x='urn:x'" + _declarations(30, f"b{n}_") + b"/>" for n in range(10)
    )
    data = _genuine().replace(b"</soap:Header>", blocks + b"</soap:Header>", 1)
    assert _code(data) == "OSO-E231"


def test_too_many_declarations_on_one_element_are_refused() -> None:
    per = DEFAULT_LIMITS.max_namespaces_per_element
    block = b"<x:D xmlns:x='urn:x'" + _declarations(per + 1) + b"/>"
    data = _genuine().replace(b"</soap:Header>", block + b"</soap:Header>", 1)
    assert _code(data) == "OSO-E230"


def test_a_payload_full_of_declarations_from_a_trusted_signer_is_refused() -> None:
    # each element re-declares its prefix: exclusive C14N keeps the declarations
    inner = b"".join(b'<p%d:a xmlns:p%d="urn:n:%d"/>' % (i, i, i) for i in range(400))
    payload = etree.fromstring(b"<r>" + inner + b"</r>")
    assert _code(seal_1_to_2(payload).data) == "OSO-E231"


# --- attributes ------------------------------------------------------------------------------


def test_a_flood_of_namespaced_attributes_on_a_signed_header_is_refused_before_parsing() -> None:
    data = _genuine().replace(ENVELOPE, ENVELOPE + _declarations(5_000)[1:] + b" ", 1)
    attrs = b"".join(b' p%d:a="1"' % i for i in range(5_000))
    data = data.replace(b"<wsa:To ", b"<wsa:To" + attrs + b" ", 1)
    assert _code(data) in {"OSO-E231", "OSO-E236"}


def test_too_many_attributes_on_one_element_are_refused() -> None:
    most = DEFAULT_LIMITS.max_attributes_per_element
    attrs = b"".join(b' a%d="1"' % i for i in range(most + 1))
    data = _genuine().replace(b"<wsa:To ", b"<wsa:To" + attrs + b" ", 1)
    assert _code(data) == "OSO-E232"


def test_too_many_namespaced_attributes_in_the_payload_are_refused() -> None:
    most = DEFAULT_LIMITS.max_namespaced_attributes
    inner = b'<a p:x="1"/>' * (most + 1)
    payload = etree.fromstring(b'<p:r xmlns:p="urn:p">' + inner + b"</p:r>")
    assert _code(seal_1_to_2(payload).data) == "OSO-E239"


def test_the_payload_at_the_attribute_bounds_still_opens() -> None:
    most = DEFAULT_LIMITS.max_attributes_per_element
    leaf = b"<l " + b" ".join(b'a%d="1"' % i for i in range(most)) + b"/>"
    inner = b'<c p:x="1">' + leaf * 50 + b"</c>"
    payload = etree.fromstring(b'<r xmlns:p="urn:p">' + inner * 10 + b"</r>")
    opened = _open(seal_1_to_2(payload).data)
    assert len(opened.payload) == 10


# --- elements ----------------------------------------------------------------------------------


def test_a_flood_of_elements_in_an_ignored_header_is_refused_by_the_envelope_bound() -> None:
    most = wss.OpenPolicy().max_envelope_elements
    block = b"<f:Flood xmlns:f='urn:flood'>" + b"<a/>" * most + b"</f:Flood>"
    data = _genuine().replace(b"</soap:Header>", block + b"</soap:Header>", 1)
    assert _code(data) == "OSO-E234"


def test_an_ignored_header_within_the_envelope_bound_is_ignored() -> None:
    block = b"<f:Note xmlns:f='urn:flood'>" + b"<a/>" * 100 + b"</f:Note>"
    data = _genuine().replace(b"</soap:Header>", block + b"</soap:Header>", 1)
    assert _open(data).to


# --- the signature's own size --------------------------------------------------------------------


def test_too_many_references_are_refused_before_any_is_parsed() -> None:
    m = Msg(_genuine())
    info = m.signed_info
    reference = info.find(q(DS, "Reference"))
    assert reference is not None
    for _ in range(xmldsig.MAX_REFERENCES):
        info.append(etree.fromstring(etree.tostring(reference)))
    m.resign()
    assert _code(m.bytes()) == "OSO-E237"


def test_too_many_transforms_are_refused_before_any_is_read() -> None:
    m = Msg(_genuine())
    transforms = m.signed_info.find(f"{q(DS, 'Reference')}/{q(DS, 'Transforms')}")
    assert transforms is not None
    for _ in range(xmldsig.MAX_TRANSFORMS):
        transforms.append(etree.fromstring(etree.tostring(transforms[0])))
    m.resign()
    assert _code(m.bytes()) == "OSO-E238"


# --- the cheapest refusal first ----------------------------------------------------------------


def test_a_forged_signature_is_refused_before_decryption_and_digests() -> None:
    m = Msg(_genuine())
    m.set_ciphertext(b"\0" * 64)  # would fail decryption (E210) if it were reached
    m.one("//ds:SignatureValue").text = base64.b64encode(b"\x01" * 384).decode()
    with (
        mock.patch.object(wss, "_unwrap_and_decrypt", side_effect=AssertionError) as decrypt,
        mock.patch.object(primitives, "sha256", side_effect=AssertionError) as digest,
    ):
        assert _code(m.bytes()) == "OSO-E213"
    assert not decrypt.called and not digest.called


def test_an_untrusted_signer_is_refused_before_decryption() -> None:
    stranger = special_identity("selfsigned")
    data = seal_1_to_2(sample_payload(), sender=stranger).data
    with mock.patch.object(wss, "_unwrap_and_decrypt", side_effect=AssertionError) as decrypt:
        assert _code(data) == "OSO-E221"
    assert not decrypt.called


def test_a_genuine_signature_over_a_tampered_ciphertext_still_fails_decryption() -> None:
    m = Msg(_genuine())
    raw = bytearray(m.ciphertext())
    raw[20] ^= 1
    m.set_ciphertext(bytes(raw))
    assert _code(m.bytes()) == "OSO-E210"


# --- canonicalisation in context, linear in the declarations in scope --------------------------


@pytest.mark.parametrize("prefixes", [(), ("p",), ("#default",), ("q", "r", "soap")])
def test_c14n_of_a_detached_copy_equals_c14n_in_context(prefixes: tuple[str, ...]) -> None:
    docs = [
        _genuine(),
        b"<a xmlns='urn:d' xmlns:p='urn:p' xmlns:q='urn:q' xml:lang='nl'><!--c--><b p:x='1'"
        b" xml:space='preserve'>t<c xmlns=''><d q:y='2'/></c></b>tail<p:e xmlns:p='urn:p2'/></a>",
        b"<p:a xmlns:p='urn:p' xmlns='urn:d'><b xmlns:r='urn:r'><c/></b></p:a>",
    ]
    for data in docs:
        for el in etree.fromstring(data).iter(etree.Element):
            in_context = etree.tostring(
                el,
                method="c14n",
                exclusive=True,
                with_comments=False,
                inclusive_ns_prefixes=list(prefixes) or None,
            )
            assert exc_c14n(el, inclusive_prefixes=prefixes) == in_context


def test_open_message_steps_are_each_under_a_hundred_lines() -> None:
    import inspect

    own = [
        (n, f)
        for n, f in inspect.getmembers(wss, inspect.isfunction)
        if f.__module__ == wss.__name__
    ]
    assert any(name == "open_message" for name, _ in own)
    for name, fn in own:
        assert len(inspect.getsource(fn).splitlines()) <= 100, name


# --- found by fuzzing -----------------------------------------------------------------------------


def test_a_relative_namespace_uri_in_a_signed_header_is_a_typed_refusal() -> None:
    # libxml2's C14N refuses relative namespace URIs: it used to surface as an untyped lxml error
    data = _genuine().replace(b"<wsa:Action ", b'<wsa:Action xmlns:r="relative/ns" r:x="1" ', 1)
    assert _code(data) == "OSO-E240"


def test_a_relative_namespace_uri_in_the_decrypted_payload_is_a_typed_refusal() -> None:
    m = Msg(_genuine())
    m.reencrypt(b'<d xmlns="docs.example-2.0.xsd"><a>1</a></d>')
    assert _code(m.bytes()) == "OSO-E240"


def test_sealing_a_payload_with_a_relative_namespace_uri_is_a_typed_error() -> None:
    payload = etree.fromstring(b'<d xmlns:w="rel.xsd" w:Id="x"/>')
    with pytest.raises(GatewayError) as info:
        seal_1_to_2(payload)
    assert info.value.code == "OSO-E240"
