"""The hardened parser refuses DTDs, entities, excessive depth and oversize input."""

from __future__ import annotations

import pytest

from oso_gateway.security import xmlparse
from oso_gateway.security.xmlparse import ParseLimits, parse_xml


def test_plain_document_parses() -> None:
    tree = parse_xml(b"<a xmlns='urn:x'><b>1</b></a>")
    assert tree.getroot().tag == "{urn:x}a"


def test_doctype_is_refused() -> None:
    with pytest.raises(xmlparse.XmlForbiddenConstruct) as info:
        parse_xml(b"<!DOCTYPE a [<!ELEMENT a ANY>]><a/>")
    assert info.value.code == "OSO-E202"


def test_external_entity_is_not_resolved_and_refused() -> None:
    data = b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    with pytest.raises(xmlparse.XmlForbiddenConstruct):
        parse_xml(data)


def test_entity_expansion_bomb_is_refused() -> None:
    bomb = (
        b'<!DOCTYPE a [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><a>&c;&c;&c;</a>'
    )
    with pytest.raises(xmlparse.XmlForbiddenConstruct):
        parse_xml(bomb)


def test_processing_instruction_is_refused() -> None:
    with pytest.raises(xmlparse.XmlForbiddenConstruct):
        parse_xml(b"<a><?evil x?></a>")


def test_excessive_depth_is_refused() -> None:
    deep = b"<a>" * 100 + b"</a>" * 100
    with pytest.raises(xmlparse.XmlLimitExceeded) as info:
        parse_xml(deep, limits=ParseLimits(max_depth=64))
    assert info.value.code == "OSO-E203"
    parse_xml(b"<a>" * 10 + b"</a>" * 10, limits=ParseLimits(max_depth=64))


def test_oversize_input_is_refused_before_parsing() -> None:
    with pytest.raises(xmlparse.XmlLimitExceeded):
        parse_xml(b"<a>" + b"x" * 2000 + b"</a>", limits=ParseLimits(max_bytes=1000))


def test_truncated_input_reports_position_not_content() -> None:
    with pytest.raises(xmlparse.XmlParseError) as info:
        parse_xml(b"<a><naam>Jansen</naam><b>")
    assert info.value.code == "OSO-E201"
    assert "Jansen" not in str(info.value)
    assert "line" in str(info.value)


def test_processing_instruction_outside_the_root_is_refused() -> None:
    with pytest.raises(xmlparse.XmlForbiddenConstruct):
        parse_xml(b"<?evil x?><a/>")
    with pytest.raises(xmlparse.XmlForbiddenConstruct):
        parse_xml(b"<a/><?evil x?>")


def test_depth_limit_is_exact() -> None:
    limits = ParseLimits(max_depth=5)
    parse_xml(b"<a>" * 5 + b"</a>" * 5, limits=limits)
    with pytest.raises(xmlparse.XmlLimitExceeded):
        parse_xml(b"<a>" * 6 + b"</a>" * 6, limits=limits)


def test_whitespace_only_input_is_refused() -> None:
    with pytest.raises(xmlparse.XmlParseError):
        parse_xml(b"   \n  ")


def test_flood_of_tiny_elements_is_refused_before_building_the_tree() -> None:
    limits = ParseLimits(max_markup=1000)
    parse_xml(b"<r>" + b"<a/>" * 900 + b"</r>", limits=limits)
    with pytest.raises(xmlparse.XmlLimitExceeded) as info:
        parse_xml(b"<r>" + b"<a/>" * 1001 + b"</r>", limits=limits)
    assert "markup" in str(info.value)


def test_flood_of_attributes_counts_towards_the_markup_bound() -> None:
    attributes = b" ".join(b'a%d=""' % i for i in range(1200))
    with pytest.raises(xmlparse.XmlLimitExceeded):
        parse_xml(b"<r " + attributes + b"/>", limits=ParseLimits(max_markup=1000))


@pytest.mark.parametrize("limit", [10, 100, 1000])
def test_markup_bound_agrees_with_a_plain_count(limit: int) -> None:
    # the size shortcut must never let through what a full count refuses
    samples = [
        b"<r>" + b"<a/>" * n + b"</r>" for n in (limit // 2, limit - 2, limit, limit + 1, 3 * limit)
    ] + [
        b"<r " + b" ".join(b'a%d=""' % i for i in range(n)) + b"/>" for n in (limit - 1, limit + 5)
    ]
    samples.append(b"<r>" + b"x" * (10 * limit) + b"</r>")
    for raw in samples:
        plain = raw.count(b"<") + raw.count(b"=") > limit
        assert xmlparse._markup_exceeds(raw, limit) is plain
