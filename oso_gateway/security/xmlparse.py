"""Hardened XML parsing: the only way untrusted bytes become an lxml tree in this project.

The parser resolves no entities, loads no DTD, touches no network, refuses any DOCTYPE, and bounds
what a document may cost before anyone trusts it: its size, its markup tokens (counted on the bytes
before a tree is built), its depth, its element count, the attributes and namespace declarations of
one element and of the whole document, and the length of a text node. Each bound has its own error
code (``docs/security.md`` lists them with their defaults and reasons). Failures raise an
``XmlParseError`` (a ``RemoteError``) whose text names the limit or the line/column, never the
document's content.

Cost: one scan of the bytes at ``memchr`` speed (long runs without markup, such as base64, are
skipped, not counted), libxml2's parse, and checks on the tree that run inside libxml2 and only when
the byte counts do not already prove the bound holds. An ordinary dossier (a few hundred elements,
a dozen attributes) pays almost nothing beyond the parse.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, replace
from typing import cast

from lxml import etree

from oso_gateway.errors import (
    XmlForbiddenConstruct,
    XmlLimitExceeded,
    XmlParseError,
    XmlTextTooLong,
    XmlTooDeep,
    XmlTooManyAttributes,
    XmlTooManyElements,
    XmlTooManyNamespacedAttributes,
    XmlTooManyNamespaces,
    XmlTooManyNamespacesOnElement,
    XmlTooMuchMarkup,
)
from oso_gateway.limits import MAX_DOSSIER_BYTES


@dataclass(frozen=True, kw_only=True)
class ParseLimits:
    """Bounds for one document. Defaults suit the largest allowed dossier (``limits``); each is
    explained in ``docs/security.md``."""

    max_bytes: int = MAX_DOSSIER_BYTES
    max_depth: int = 64
    #: Bound on markup tokens (tags, comments: each ``<``; attributes and declarations: each
    #: ``=``), counted on the bytes before the tree is built, so that a flood of tiny elements
    #: cannot cost ~140 bytes of tree per 4 bytes of input, nor parse ~4x slower per byte than an
    #: ordinary message. The official 175 KB example dossier has about 2 500.
    max_markup: int = 100_000
    max_elements: int = 50_000
    max_attributes_per_element: int = 32
    #: attributes in a namespace (``wsu:Id``, ``xsi:type``...), in all: a dossier has none, an
    #: envelope about ten
    max_namespaced_attributes: int = 256
    max_namespaces_per_element: int = 32
    max_namespaces: int = 256
    #: characters in one text node; an attachment may fill a whole dossier
    max_text: int = MAX_DOSSIER_BYTES


DEFAULT_LIMITS = ParseLimits()

#: The codes the parser raises (a dossier validation finding carries one of them).
PARSE_ERROR_CODES = frozenset(
    cls.code
    for cls in (
        XmlParseError,
        XmlForbiddenConstruct,
        XmlLimitExceeded,
        XmlTooManyNamespacesOnElement,
        XmlTooManyNamespaces,
        XmlTooManyAttributes,
        XmlTooDeep,
        XmlTooManyElements,
        XmlTextTooLong,
        XmlTooMuchMarkup,
        XmlTooManyNamespacedAttributes,
    )
)


#: One parser per thread: lxml parsers must not be shared between threads, and a fresh parser
#: sets up libxml2's parser context again for every document (as much as the parse of a small one).
_PARSERS = threading.local()


#: Encodings a document may declare: those that write every ASCII character as its own byte and
#: no other character with a byte below 0x80. The byte counts find '<', '=', ':' and 'xmlns' as
#: ASCII bytes; UTF-16/32, EBCDIC or UTF-7 ('+ADw-' is '<') do not write them so, and such a
#: document went past every count.
_ENCODINGS = frozenset(
    {"UTF-8", "US-ASCII", "ASCII"}
    | {f"ISO-8859-{n}" for n in (*range(1, 12), *range(13, 16))}
    | {f"WINDOWS-125{n}" for n in range(9)}
)
#: the encoding an XML declaration at the very start names (after a UTF-8 BOM, if any)
_DECLARED = re.compile(
    rb"(?:\xef\xbb\xbf)?<\?xml[ \t\r\n][^>]*?\bencoding[ \t\r\n]*=[ \t\r\n]*[\"']([^\"']*)[\"']"
)


def _encoding(raw: bytes) -> str:
    """The encoding ``raw`` is parsed in: the declared one when it is ASCII-compatible, UTF-8
    when none is declared. The parser is told it, so a BOM or a declaration this does not
    read (libxml2 would) cannot switch to another; anything else is refused."""
    match = _DECLARED.match(raw, 0, 512)
    name = match.group(1).decode("ascii", "replace").upper() if match else "UTF-8"
    if name not in _ENCODINGS:
        raise XmlParseError("the document's encoding is not UTF-8 or an ASCII-compatible one")
    return name


def _parser(encoding: str = "UTF-8") -> etree.XMLParser:
    parsers: dict[str, etree.XMLParser] | None = getattr(_PARSERS, "parsers", None)
    if parsers is None:
        parsers = _PARSERS.parsers = {}
    parser = parsers.get(encoding)
    if parser is None:
        parser = parsers[encoding] = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            remove_comments=False,
            remove_pis=False,
            huge_tree=True,  # large base64 attachments; the limits above bound the rest
            collect_ids=False,
            encoding=encoding,  # whatever a BOM or the declaration says (``_encoding``)
        )
    return parser


@dataclass(frozen=True, kw_only=True)
class Counted:
    """What the parser decides on a document's bytes before a tree exists (``count_markup``)."""

    counts: MarkupCounts
    #: the document's length in bytes
    size: int
    limits: ParseLimits


def count_markup(data: bytes | bytearray, limits: ParseLimits) -> Counted:
    """Count ``data``'s markup under ``limits`` and refuse it when the counts alone exceed them
    (E-codes of too much markup, too many declarations), as ``parse_xml`` does first."""
    scanned = cast(bytes, data)  # the scan only finds and counts: a bytearray serves as it is
    counts = markup_counts(
        scanned,
        limits.max_markup,
        declarations_above=min(limits.max_namespaces_per_element, limits.max_namespaces),
        qualified_above=limits.max_namespaced_attributes,
        tags_above=min(limits.max_markup, limits.max_elements),
    )
    if counts.tags + counts.equals > limits.max_markup:
        raise XmlTooMuchMarkup(f"more than {limits.max_markup} markup tokens")
    if counts.declarations > limits.max_namespaces:
        # The count near each "=" is a bound that plain words ("xmlns" in a text) can swell,
        # and by how the "=" lie: before refusing, count what has a declaration's form.
        declared = _declaration_forms(scanned, cap=limits.max_namespaces)
        if declared > limits.max_namespaces:
            raise XmlTooManyNamespaces(f"more than {limits.max_namespaces} declarations")
        counts = replace(counts, declarations=declared)
    return Counted(counts=counts, size=len(data), limits=limits)


#: what a namespace declaration looks like in the bytes: ``xmlns`` or ``xmlns:prefix``, an
#: ``=`` and the opening quote of its value (XML white space allowed around the ``=``)
_DECLARATION_FORM = re.compile(rb"xmlns(?::[^\s=<>\"'/]+)?[ \t\r\n]*=[ \t\r\n]*[\"']")


def _declaration_forms(raw: bytes, *, cap: int) -> int:
    """How many strings in ``raw`` have a namespace declaration's form (at most ``cap + 1``:
    a flood stops the search there): every declaration is one, wherever the ``=`` signs lie, so
    this bounds them without depending on the layout (a search through the document, made only
    when the cheap count near the ``=`` is over)."""
    found = 0
    for _match in _DECLARATION_FORM.finditer(raw):
        found += 1
        if found > cap:
            break
    return found


def parse_xml(
    data: bytes | bytearray | memoryview,
    *,
    limits: ParseLimits = DEFAULT_LIMITS,
    counted: Counted | None = None,
) -> etree._ElementTree:
    """Parse untrusted bytes into a tree, or raise an ``XmlParseError`` subclass.

    ``counted``: the ``count_markup`` of a document with exactly ``data``'s markup whose text
    may be longer (a message before ``largetext`` cut its large ciphertext out). The decisions
    taken on the bytes (the refusals on the counts, and which tree walks the counts cannot
    spare) are then that document's: the whole document's outcome, at the cost of the short one.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml takes bytes")
    if len(data) > limits.max_bytes:
        raise XmlLimitExceeded(
            f"input of {len(data)} bytes exceeds the limit of {limits.max_bytes}"
        )
    if not data or (bytes(data[:64]).isspace() and bytes(data).isspace()):
        raise XmlParseError("empty input")
    raw = bytes(data)
    if counted is None:
        counted = count_markup(raw, limits)
    elif counted.limits != limits or counted.size < len(raw):
        raise ValueError("the counts are of another document or under other limits")
    try:
        tree = etree.ElementTree(etree.fromstring(raw, parser=_parser(_encoding(raw))))
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (0, 0)
        raise XmlParseError(f"not well-formed XML at line {line}, column {column}") from None
    docinfo = tree.docinfo
    if (
        getattr(docinfo, "doctype", "")
        or docinfo.internalDTD is not None
        or docinfo.externalDTD is not None
    ):
        raise XmlForbiddenConstruct("a DOCTYPE / DTD is not allowed")
    root = tree.getroot()
    _check_forbidden_nodes(root)
    _check_shape_limits(root, limits, counted.counts, size=counted.size)
    return tree


#: Spans of the markup count: a stretch of bytes where the markup is dense is counted at once
#: (``bytes.count``, C speed but a few GB/s); the gaps between markup (base64, long text) are
#: skipped by ``bytes.find`` / ``bytes.rfind`` (memchr, several times faster). A span ends where
#: ``_MIN_WINDOW`` bytes hold no occurrence, or after ``_MAX_WINDOW`` bytes, so a short envelope
#: before a long base64 run, or the padding ``=`` of each attachment, is not counted with the run.
_MIN_WINDOW = 1 << 12
_MAX_WINDOW = 1 << 16
#: an occurrence with another this close after it starts a dense span
_NEAR = 1 << 10


def _span_end(raw: bytes, byte: bytes, hit: int) -> int:
    """Just after the dense run of ``byte`` that starts with the occurrence at ``hit``: its last
    occurrence that follows the one before it within ``_MIN_WINDOW`` bytes (found with memrchr,
    a window at a time; each step advances at least half a window), at most ``_MAX_WINDOW``
    bytes on."""
    last, limit = hit, min(hit + _MAX_WINDOW, len(raw))
    while last + 1 < limit:
        later = raw.rfind(byte, last + 1, min(last + 1 + _MIN_WINDOW, limit))
        if later < 0:
            break
        last = later
    return last + 1


def _count_capped(raw: bytes, byte: bytes, cap: int) -> int:
    """Occurrences of ``byte`` in ``raw``; may stop early once the count exceeds ``cap``.

    Find the next occurrence (memchr). When another one follows within ``_NEAR`` bytes, count
    the dense span that starts there (``_span_end``) at once; else count it alone and go on. Each
    round counts at least one occurrence, so there are at most ``cap + 1``, and the bytes between
    markup are crossed at memchr speed (a dossier's few ``=``, kilobytes apart, cost a search
    each, not a count of everything between them).
    """
    find, count = raw.find, raw.count
    found = pos = 0
    while True:
        hit = find(byte, pos)
        if hit < 0:
            return found
        if find(byte, hit + 1, hit + 1 + _NEAR) < 0:
            found, pos = found + 1, hit + 1
        else:
            pos = _span_end(raw, byte, hit)
            found += count(byte, hit, pos)
        if found > cap:
            return found


@dataclass(frozen=True)
class MarkupCounts:
    """What the bytes hold, counted before parsing (exact while within the markup bound)."""

    tags: int  #: ``<``: every element, comment and processing instruction opens with one
    equals: int  #: ``=``: every attribute and namespace declaration has one
    #: ``xmlns`` near an ``=`` (bounds the namespace declarations), or ``equals`` (see below)
    declarations: int
    #: ``:`` near an ``=`` (bounds the namespace-qualified attributes), or ``equals``
    colons: int


def markup_counts(
    raw: bytes,
    limit: int,
    *,
    declarations_above: int = 0,
    qualified_above: int = 0,
    tags_above: int = 0,
) -> MarkupCounts:
    """Count ``raw``'s markup in one cheap scan (see ``_count_capped``); the counts bound the
    elements, the attributes and the declarations before a tree exists.

    Each declaration and each qualified attribute has its own ``=``: ``xmlns`` is looked for only
    when there are more than ``declarations_above`` ``=``, and ``:`` only when there are more than
    ``qualified_above``; otherwise ``equals`` is reported for them (it bounds them). A dossier
    has a few dozen ``=`` (its attachments' padding), an envelope a few dozen attributes.

    Likewise each ``<`` and each ``=`` is a byte of its own: when ``raw`` is no longer than
    ``limit`` and ``tags_above`` (the bound the ``<`` count decides on), ``<`` is not counted and
    ``tags`` is reported as ``len(raw) - equals``, which bounds it; ``tags + equals`` is then
    ``len(raw)``, within ``limit``, as the exact counts are.
    """
    if len(raw) <= min(limit, tags_above):
        equals = _count_capped(raw, b"=", limit)  # at most len(raw): never capped
        tags = len(raw) - equals
    else:
        tags = _count_capped(raw, b"<", limit)
        if tags > limit:
            return MarkupCounts(tags, 0, 0, 0)
        equals = _count_capped(raw, b"=", limit - tags)
        if equals > limit - tags:  # refused on the count alone
            return MarkupCounts(tags, equals, 0, 0)
    declarations, colons = _count_names(
        raw, xmlns=equals > declarations_above, colons=equals > qualified_above
    )
    return MarkupCounts(
        tags,
        equals,
        equals if declarations is None else declarations,
        equals if colons is None else colons,
    )


#: XML white space, as ``Eq`` (``S? '=' S?``) allows it around an attribute's ``=``
_SPACE_RUN = re.compile(rb"[ \t\r\n]*")


def _names_start(raw: bytes, pos: int, hit: int) -> int:
    """Where the names that end at the ``=`` at ``hit`` can start, no further back than ``pos``
    (the end of the last span; ``raw[pos:hit]`` holds no ``=``).

    A declaration's ``xmlns`` or an attribute's prefix sits a name's length (and any white space)
    before its ``=``, and a name is not bounded in length: it starts after the ``<`` of its start
    tag. A short gap is counted whole; a longer one from the last ``<`` in it, or not at all when
    this ``=`` is not an attribute's (no quote follows it: base64 padding, an ``=`` in text), as
    then no name ends here and the gap's ``xmlns`` and ``:`` belong to no attribute.
    """
    if hit - pos <= 64:
        return pos
    match = _SPACE_RUN.match(raw, hit + 1)
    after = match.end() if match else hit + 1
    if after >= len(raw) or raw[after] not in b"\"'":
        return hit
    return max(pos, raw.rfind(b"<", pos, hit))


def _count_names(raw: bytes, *, xmlns: bool, colons: bool) -> tuple[int | None, int | None]:
    """Occurrences of ``xmlns`` and of ``:`` (each when asked for, else None) in the spans of
    ``=`` (``_span_end``), each from the attribute name before its first ``=`` on
    (``_names_start``). An ``xmlns`` that straddles the end of a span is counted in it."""
    if not (xmlns or colons):
        return None, None
    declarations = found_colons = pos = 0
    end = len(raw)
    while pos < end:
        hit = raw.find(b"=", pos)
        if hit < 0:
            break
        # A name after the span's last "=" ends at a later one, so the next span reaches back to
        # it (``_names_start``): the span stops there, not in the text after it.
        start, stop = _names_start(raw, pos, hit), _span_end(raw, b"=", hit)
        if xmlns:
            declarations += raw.count(b"xmlns", start, min(stop + 4, end))
        if colons:
            found_colons += raw.count(b":", start, stop)
        pos = stop
    return (declarations if xmlns else None), (found_colons if colons else None)


def _check_forbidden_nodes(root: etree._Element) -> None:
    """Refuse entity references and processing instructions (inside libxml2's iterators)."""
    for node in root.itersiblings(preceding=True):
        if isinstance(node, etree._ProcessingInstruction):
            raise XmlForbiddenConstruct("processing instructions are not allowed")
    for node in root.itersiblings():
        if isinstance(node, etree._ProcessingInstruction):
            raise XmlForbiddenConstruct("processing instructions are not allowed")
    for node in root.iter(etree.Entity, etree.ProcessingInstruction):
        if isinstance(node, etree._Entity):
            raise XmlForbiddenConstruct("entity references are not allowed")
        raise XmlForbiddenConstruct("processing instructions are not allowed")


@functools.lru_cache(maxsize=64)
def _xpath(expression: str) -> etree.XPath:
    """A compiled XPath (the limits' expressions are few and fixed: compile each once)."""
    return etree.XPath(expression)


@functools.lru_cache(maxsize=8)
def _deeper_than(depth: int) -> etree.XPath:
    """True when an element lies deeper than ``depth`` below the document (compiled once)."""
    return etree.XPath("boolean(" + "/*" * (depth + 1) + ")")


def _check_shape_limits(
    root: etree._Element, limits: ParseLimits, counts: MarkupCounts, *, size: int
) -> None:
    """Element count, depth, attributes, namespace declarations and text length.

    Each walk runs inside libxml2 (XPath, an element iterator) and only when the byte counts do
    not already prove the bound: there are at most ``tags`` elements, at most ``equals``
    attributes, at most ``declarations`` declarations, and no text node is longer than the
    document.
    """
    equals = counts.equals
    if counts.tags > limits.max_elements:
        count = _xpath("count(descendant-or-self::*)")(root)
        assert isinstance(count, float)
        if count > limits.max_elements:
            raise XmlTooManyElements(f"more than {limits.max_elements} elements")
    # a chain of n nested elements needs 2n - 1 "<": n start tags, and an end tag for each of
    # the n - 1 that hold another (only the innermost may be empty, "<a/>")
    if counts.tags > 2 * limits.max_depth and _deeper_than(limits.max_depth)(root):
        raise XmlTooDeep(f"element nesting deeper than {limits.max_depth}")
    most = limits.max_attributes_per_element
    if equals > most and _xpath(f"boolean(descendant-or-self::*[@*[{most + 1}]])")(root):
        raise XmlTooManyAttributes(f"an element carries more than {most} attributes")
    qualified = limits.max_namespaced_attributes
    if counts.colons > qualified and _xpath(
        f"boolean((descendant-or-self::*/@*[namespace-uri() != ''])[{qualified + 1}])"
    )(root):
        raise XmlTooManyNamespacedAttributes(f"more than {qualified} namespaced attributes")
    if counts.declarations > min(limits.max_namespaces_per_element, limits.max_namespaces):
        _check_namespace_declarations(root, limits)
    if size > limits.max_text and _xpath(
        f"boolean(descendant-or-self::text()[string-length() > {limits.max_text}])"
    )(root):
        raise XmlTextTooLong(f"a text node is longer than {limits.max_text} characters")


def _check_namespace_declarations(root: etree._Element, limits: ParseLimits) -> None:
    """Count namespace declarations, in all and per element (one walk each, in lxml's C loop)."""
    total = 0
    for _event, _declared in etree.iterwalk(root, events=("start-ns",)):
        total += 1
        if total > limits.max_namespaces:
            raise XmlTooManyNamespaces(f"more than {limits.max_namespaces} declarations")
    if total <= limits.max_namespaces_per_element:
        return
    # Declarations come as start-ns events just before their element's start event.
    run = 0
    for event, _node in etree.iterwalk(root, events=("start-ns", "start")):
        if event == "start":
            run = 0
            continue
        run += 1
        if run > limits.max_namespaces_per_element:
            raise XmlTooManyNamespacesOnElement(
                f"an element declares more than {limits.max_namespaces_per_element} namespaces"
            )
