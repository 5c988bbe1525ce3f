"""Hardened XML parsing: the only way untrusted bytes become an lxml tree in this project.

The parser resolves no entities, loads no DTD, touches no network, refuses any DOCTYPE, and bounds
the input size and the element depth. Failures raise ``XmlParseError`` (a ``RemoteError``) whose
text names the limit or the line/column, never the document's content.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from oso_gateway.errors import XmlForbiddenConstruct, XmlLimitExceeded, XmlParseError


@dataclass(frozen=True, kw_only=True)
class ParseLimits:
    """Bounds for one document. Defaults suit a 50 MB dossier with attachments."""

    max_bytes: int = 64 * 1024 * 1024
    max_depth: int = 64
    #: Bound on markup tokens (tags, comments, PIs: each ``<``; attributes: each ``=``), checked
    #: by a byte count before the tree is built, so that a flood of tiny elements cannot cost
    #: ~140 bytes of tree per 4 bytes of input. A 175 KB dossier has about 10 000 tokens; a
    #: large one with attachments hardly more (base64 has no ``<`` and at most two ``=``).
    max_markup: int = 1_000_000


DEFAULT_LIMITS = ParseLimits()


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=False,
        remove_pis=False,
        huge_tree=True,  # large base64 attachments; size is bounded by max_bytes instead
        collect_ids=False,
    )


def parse_xml(data: bytes, *, limits: ParseLimits = DEFAULT_LIMITS) -> etree._ElementTree:
    """Parse untrusted bytes into a tree, or raise an ``XmlParseError`` subclass."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml takes bytes")
    if len(data) > limits.max_bytes:
        raise XmlLimitExceeded(
            f"input of {len(data)} bytes exceeds the limit of {limits.max_bytes}"
        )
    if not data or (bytes(data[:64]).isspace() and bytes(data).isspace()):
        raise XmlParseError("empty input")
    raw = bytes(data)
    if _markup_exceeds(raw, limits.max_markup):
        raise XmlLimitExceeded(f"more than {limits.max_markup} markup tokens")
    try:
        tree = etree.ElementTree(etree.fromstring(raw, parser=_parser()))
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
    _check_tree(root, limits.max_depth)
    return tree


def _markup_exceeds(raw: bytes, limit: int) -> bool:
    """Whether ``raw`` holds more than ``limit`` markup tokens (each ``<``, each ``=``).

    Counting is skipped where the size alone rules it out: a construct opened by ``<`` takes at
    least 4 bytes (``<a/>``) and an attribute at least 5 (`` a=""``), so ``raw`` cannot hold more
    than ``len/4 + len/5`` tokens.
    """
    most_tags, most_attributes = len(raw) // 4, len(raw) // 5
    if most_tags + most_attributes <= limit:
        return False
    tags = raw.count(b"<")
    if tags > limit:
        return True
    return tags + most_attributes > limit and tags + raw.count(b"=") > limit


def _check_tree(root: etree._Element, max_depth: int) -> None:
    """Refuse entity references, processing instructions and excessive depth.

    Both walks run inside libxml2 (an element iterator and one XPath), not a Python loop per node.
    """
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
    if root.xpath("boolean(" + "/*" * (max_depth + 1) + ")"):
        raise XmlLimitExceeded(f"element nesting deeper than {max_depth}")
