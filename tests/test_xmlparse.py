"""The hardened parser refuses DTDs, entities, excessive depth and oversize input."""

from __future__ import annotations

from unittest import mock

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
    assert info.value.code == "OSO-E233"
    parse_xml(b"<a>" * 10 + b"</a>" * 10, limits=ParseLimits(max_depth=64))


def test_oversize_input_is_refused_before_parsing() -> None:
    with pytest.raises(xmlparse.XmlLimitExceeded) as info:
        parse_xml(b"<a>" + b"x" * 2000 + b"</a>", limits=ParseLimits(max_bytes=1000))
    assert info.value.code == "OSO-E203"


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
    assert info.value.code == "OSO-E236"


def test_flood_of_attributes_counts_towards_the_markup_bound() -> None:
    attributes = b" ".join(b'a%d=""' % i for i in range(1200))
    with pytest.raises(xmlparse.XmlLimitExceeded):
        parse_xml(b"<r " + attributes + b"/>", limits=ParseLimits(max_markup=1000))


@pytest.mark.parametrize("limit", [10, 100, 1000, 200_000])
def test_markup_count_agrees_with_a_plain_count(limit: int) -> None:
    # the windowed count (memchr between markup) must never let through what a full count refuses
    samples = [
        b"<r>" + b"<a/>" * n + b"</r>" for n in (limit // 2, limit - 2, limit, limit + 1, 3 * limit)
    ] + [
        b"<r " + b" ".join(b'a%d=""' % i for i in range(n)) + b"/>" for n in (limit - 1, limit + 5)
    ]
    samples.append(b"<r>" + b"x" * (10 * limit) + b"</r>")
    samples.append(b"<r>" + (b"x" * 70_000 + b"<a/>") * 3 + b"=" * 70_001 + b"</r>")
    for raw in samples:
        counts = xmlparse.markup_counts(raw, limit)
        plain = raw.count(b"<") + raw.count(b"=")
        assert (counts.tags + counts.equals > limit) is (plain > limit)
        if plain <= limit:
            assert (counts.tags, counts.equals) == (raw.count(b"<"), raw.count(b"="))


def test_markup_count_windows_cover_dense_markup_after_a_long_gap() -> None:
    # dense markup, a long run without any (base64), dense markup again: the windows shrink
    # over the gap and grow again, and every token is still counted
    raw = b"<r>" + b'<a b="1"/>' * 2000 + b"<c>" + b"A" * 300_000 + b"</c>" + b'<a b="1"/>' * 2000
    raw += b"</r>"
    counts = xmlparse.markup_counts(raw, 100_000)
    assert (counts.tags, counts.equals) == (raw.count(b"<"), raw.count(b"="))


@pytest.mark.parametrize("offset", range(0, 24))
def test_every_declaration_is_counted_wherever_the_windows_end(offset: int) -> None:
    # a run of declarations longer than several windows: whichever byte a window ends on, an
    # ``xmlns`` that straddles the end is counted once, none twice
    raw = b"<r" + b" " * offset + _decls(3000) + b"/>"
    counts = xmlparse.markup_counts(raw, 100_000)
    assert counts.declarations == raw.count(b"xmlns") == 3000


def test_few_equals_bound_the_declarations_without_looking_for_them() -> None:
    # fewer "=" than any namespace bound: "=" bounds the declarations and the qualified
    # attributes, so "xmlns" and ":" in text are not counted (and do not refuse the document)
    text = b"xmlns: " * 400
    raw = b'<r xmlns:p="urn:p" p:a="1">' + text + b"</r>"
    counts = xmlparse.markup_counts(raw, 100_000, declarations_above=32, qualified_above=256)
    assert (counts.equals, counts.declarations, counts.colons) == (2, 2, 2)
    assert parse_xml(raw, limits=ParseLimits(max_namespaces=100)).getroot().text == text.decode()
    # one "=" more than the bound: counted near the "=" as before
    many = b"<r" + _decls(5) + b"/>"
    counts = xmlparse.markup_counts(many, 100_000, declarations_above=4, qualified_above=256)
    assert (counts.declarations, counts.colons) == (5, 5)  # colons: bounded by the five "="
    # counted: the five prefixes and the ":" of the values before the last "=" (one after it
    # ends no name: a window stops at its last "=")
    assert xmlparse.markup_counts(many, 100_000, qualified_above=4).colons == 9


# --- one negative test per limit, each with its own code ----------------------------------------


def _decls(n: int, prefix: bytes = b"p") -> bytes:
    return b"".join(b' xmlns:%s%d="urn:%d"' % (prefix, i, i) for i in range(n))


@pytest.mark.parametrize(
    ("data", "limits", "code"),
    [
        (b"<r" + _decls(5) + b"/>", ParseLimits(max_namespaces_per_element=4), "OSO-E230"),
        (
            b"<r>" + b"".join(b"<a" + _decls(3, b"q%d_" % i) + b"/>" for i in range(4)) + b"</r>",
            ParseLimits(max_namespaces=10),
            "OSO-E231",
        ),
        (b'<r a="1" b="2" c="3"/>', ParseLimits(max_attributes_per_element=2), "OSO-E232"),
        (b"<a><a><a/></a></a>", ParseLimits(max_depth=2), "OSO-E233"),
        (b"<r>" + b"<a/>" * 11 + b"</r>", ParseLimits(max_elements=11), "OSO-E234"),
        (b"<r>" + b"x" * 101 + b"</r>", ParseLimits(max_text=100), "OSO-E235"),
        (b"<r>" + b"<a/>" * 11 + b"</r>", ParseLimits(max_markup=11), "OSO-E236"),
        (
            b'<r xmlns:p="urn:p">' + b'<a p:x="1"/>' * 4 + b"</r>",
            ParseLimits(max_namespaced_attributes=3),
            "OSO-E239",
        ),
    ],
)
def test_each_limit_refuses_with_its_own_code(data: bytes, limits: ParseLimits, code: str) -> None:
    with pytest.raises(xmlparse.XmlLimitExceeded) as info:
        parse_xml(data, limits=limits)
    assert info.value.code == code
    assert info.value.http_status == 413


@pytest.mark.parametrize(
    ("data", "limits"),
    [
        (b"<r" + _decls(4) + b"/>", ParseLimits(max_namespaces_per_element=4)),
        (
            b"<r>" + b"".join(b"<a" + _decls(3) + b"/>" for _ in range(3)) + b"</r>",
            ParseLimits(max_namespaces=9),
        ),
        (b'<r a="1" b="2"/>', ParseLimits(max_attributes_per_element=2)),
        (b"<r>" + b"<a/>" * 10 + b"</r>", ParseLimits(max_elements=11)),
        (b"<r>" + b"x" * 100 + b"</r>", ParseLimits(max_text=100)),
        (
            b'<r xmlns:p="urn:p">' + b'<a p:x="1"/>' * 3 + b"</r>",
            ParseLimits(max_namespaced_attributes=3),
        ),
    ],
)
def test_each_limit_is_exact(data: bytes, limits: ParseLimits) -> None:
    assert parse_xml(data, limits=limits).getroot().tag == "r"  # at the limit: still parsed


def test_declarations_are_refused_on_the_bytes_before_the_tree_is_built() -> None:
    data = b"<r" + _decls(300) + b"/>"
    with mock.patch.object(xmlparse.etree, "fromstring", side_effect=AssertionError) as parse:
        with pytest.raises(xmlparse.XmlTooManyNamespaces):
            parse_xml(data)
    assert not parse.called


def test_declarations_beyond_the_per_element_bound_split_over_elements_are_allowed() -> None:
    data = b"<r" + _decls(30) + b"><a" + _decls(30, b"q") + b"/></r>"
    root = parse_xml(data, limits=ParseLimits(max_namespaces_per_element=30)).getroot()
    assert [child.tag for child in root] == ["a"]


def test_every_parse_error_code_is_a_dossier_parse_finding() -> None:
    from oso_gateway.dossier.validate import PARSE_CODES

    codes = {cls.code for cls in _all_subclasses(xmlparse.XmlParseError)}
    assert codes == PARSE_CODES


def _all_subclasses(cls: type) -> set[type]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _all_subclasses(sub)
    return found


def test_the_per_thread_parser_is_not_shared_and_recovers_from_an_error() -> None:
    # each thread reuses its own parser: a refused document leaves nothing behind for the next,
    # and threads parsing at once each get their own tree
    import threading

    with pytest.raises(xmlparse.XmlParseError):
        parse_xml(b"<r><unclosed></r>")
    assert parse_xml(b"<r><a/></r>").getroot()[0].tag == "a"
    results: dict[int, str] = {}

    def work(n: int) -> None:
        for _ in range(200):
            root = parse_xml(b"<r%d>" % n + b"<a/>" * n + b"</r%d>" % n).getroot()
            assert len(root) == n
        results[n] = root.tag

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: f"r{n}" for n in range(1, 6)}
    assert xmlparse._parser() is xmlparse._parser()


@pytest.mark.parametrize(
    "raw",
    [
        b"<r>" + b"<a/>" * 50 + b"</r>",
        b"<r " + b" ".join(b'a%d=""' % i for i in range(40)) + b"/>",
        b"<r>" + b"<a>" * 70 + b"</a>" * 70 + b"</r>",
        b'<r xmlns:p="urn:p" p:a="1">text = 1 &lt; 2</r>',
    ],
    ids=["elements", "attributes", "deep", "mixed"],
)
def test_a_short_document_reports_a_bound_for_its_tags_without_counting_them(raw: bytes) -> None:
    # each "<" and each "=" is a byte of its own: within the bounds, len - equals bounds the
    # tags, and tags + equals stays within the markup limit as the exact counts do
    exact = xmlparse.markup_counts(raw, 100_000)
    short = xmlparse.markup_counts(raw, 100_000, tags_above=len(raw))
    assert short.equals == exact.equals == raw.count(b"=")
    assert short.tags == len(raw) - raw.count(b"=") >= exact.tags == raw.count(b"<")
    assert short.tags + short.equals <= 100_000
    # one byte over the bound (or the markup limit): counted as before
    assert xmlparse.markup_counts(raw, 100_000, tags_above=len(raw) - 1) == exact
    assert xmlparse.markup_counts(raw, len(raw) - 1, tags_above=len(raw)).tags == exact.tags


def test_a_short_document_gets_every_shape_check_the_counted_one_gets() -> None:
    # below the bounds the "<" count is not made: the checks it decides on (elements, depth)
    # run on the bound instead, and refuse what they refused (more elements than the bound
    # needs more bytes than it, so the count is made then)
    deep = b"<r>" + b"<a>" * 70 + b"</a>" * 70 + b"</r>"
    with pytest.raises(xmlparse.XmlTooDeep):
        parse_xml(deep)
    many = b"<r>" + b"<a/>" * 60 + b"</r>"
    with pytest.raises(xmlparse.XmlTooManyElements):
        parse_xml(many, limits=ParseLimits(max_elements=50))
    assert parse_xml(many, limits=ParseLimits(max_elements=61)).getroot().tag == "r"


def _spread(names: list[bytes], gap: int) -> bytes:
    return b" ".join(name + b" " * gap + b'= "v"' for name in names)


@pytest.mark.parametrize("gap", [0, 70, 3000])
def test_a_declaration_is_counted_however_long_its_prefix_and_the_space_before_its_equals(
    gap: int,
) -> None:
    # a name is not bounded in length, nor the white space before its "=": the scan looks
    # for "xmlns" from the start tag's "<" (or the last window) on, not a fixed distance back
    decls = [b"xmlns:" + b"p" * 70 + b"%d" % i for i in range(40)]
    raw = b"<r " + _spread(decls, gap) + b"/>"
    counts = xmlparse.markup_counts(raw, 100_000, declarations_above=32)
    assert counts.declarations >= 40
    with pytest.raises(xmlparse.XmlTooManyNamespacesOnElement):
        parse_xml(raw)
    spread = b"<r>" + b"".join(b"<e " + _spread(decls[i : i + 1], gap) + b"/>" for i in range(40))
    with pytest.raises(xmlparse.XmlTooManyNamespaces):
        parse_xml(spread + b"</r>", limits=ParseLimits(max_namespaces=39))


@pytest.mark.parametrize("gap", [0, 70, 3000])
def test_a_qualified_attribute_is_counted_however_long_its_name(gap: int) -> None:
    names = [b"p:" + b"a" * 70 + b"%d" % i for i in range(40)]
    elements = b"".join(b"<e " + _spread([name], gap) + b"/>" + b" " * 2000 for name in names)
    raw = b'<r xmlns:p="urn:p">' + elements + b"</r>"
    assert xmlparse.markup_counts(raw, 100_000).colons >= 40
    with pytest.raises(xmlparse.XmlTooManyNamespacedAttributes):
        parse_xml(raw, limits=ParseLimits(max_namespaced_attributes=39))


def test_base64_padding_far_from_any_tag_does_not_widen_the_name_scan() -> None:
    # an "=" that no quote follows ends no attribute name: the long text before it is not
    # searched for "xmlns" (the scan stays at memchr speed over a long base64 run)
    run = b"QUJD" * 50_000 + b"QQ=="
    raw = b"<r><a>" + run + b"</a></r>"
    assert xmlparse.markup_counts(raw, 100_000).declarations == 0
    assert xmlparse._names_start(raw, 0, raw.index(b"=")) == raw.index(b"=")


@pytest.mark.parametrize("depth", [1, 2, 5, 64])
def test_the_depth_walk_is_spared_only_where_the_tag_count_rules_the_depth_out(depth: int) -> None:
    # depth + 1 nested elements take 2 * depth + 1 "<" at the fewest (the innermost empty):
    # refused; the deepest document with 2 * depth "<" is accepted
    limits = ParseLimits(max_depth=depth)
    too_deep = b"<a>" * depth + b"<a/>" + b"</a>" * depth
    assert too_deep.count(b"<") == 2 * depth + 1
    with pytest.raises(xmlparse.XmlTooDeep):
        parse_xml(too_deep, limits=limits)
    deepest = b"<a>" * depth + b"</a>" * depth
    assert parse_xml(deepest, limits=limits).getroot().tag == "a"


@pytest.mark.parametrize("gap", [100, 2_000, 5_000, 70_000])
def test_words_that_read_xmlns_in_a_text_are_no_declarations_wherever_the_equals_lie(
    gap: int,
) -> None:
    # 300 "xmlns" words in texts, each near an "=" or far from one: the count near the "=" may
    # take them for declarations; a document is refused (E231) only for what has a declaration's
    # form, so the outcome does not depend on how the "=" are spread (found in review)
    dense = b'<a b="1" c="2"/>' * 600
    spread = b"".join(b"<t>xmlns " + b"x" * gap + b"=</t>" for _ in range(300))
    crowded = b"<t>=" + b"xmlns " * 300 + b"y" * gap + b"=</t>"
    for document in (b"<r>" + spread + b"</r>", b"<r>" + dense + crowded + b"</r>"):
        assert parse_xml(document).getroot().tag == "r"


def test_a_flood_of_real_declarations_is_still_refused_before_the_parse() -> None:
    flood = b"<r>" + b"".join(b'<a xmlns:p%d="urn:%d"/>' % (i, i) for i in range(300)) + b"</r>"
    with pytest.raises(xmlparse.XmlTooManyNamespaces) as refused:
        xmlparse.count_markup(flood, ParseLimits())
    assert refused.value.code == "OSO-E231"
