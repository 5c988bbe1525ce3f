"""Structure check of an OSO gegevensset 2019.1 document against our XSD (libxml2 via lxml).

The schema (``schemas/oso_gegevensset_2019.xsd``) is our own re-expression of the structure the
standard publishes; it accepts exactly the documents the published 2019.1 XSD accepts, including
its other global elements as document roots. Whether the root must be ``dossier`` is decided by
``oso_gateway.dossier.validate``, not here.

libxml2 error messages quote the offending value ("'Jansen' is not a valid value ..."). Findings
never do: ``validate_schema`` rewrites each message so it keeps element and attribute names, the
type and the facet, and drops every value taken from the document.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import cast

from lxml import etree

from oso_gateway.dossier.findings import Finding, Severity
from oso_gateway.protocol import DOSSIER_NS, STANDAARDVERSIE
from oso_gateway.security.namespaces import local_name

SCHEMA_FILE = "oso_gegevensset_2019.xsd"

#: Finding codes of the structure check.
CODE_STRUCTURE = "OSO-XSD-STRUCTURE"  # unexpected, missing or misplaced element; text in content
CODE_VALUE = "OSO-XSD-VALUE"  # a value outside its type or facet
CODE_ATTRIBUTE = "OSO-XSD-ATTRIBUTE"  # unknown, missing or invalid attribute
CODE_ROOT = "OSO-XSD-ROOT"  # root element not declared by the schema
CODE_OTHER = "OSO-XSD"  # any other schema-validity error

_NL_PREFIX = f"Voldoet niet aan het OSO-schema {STANDAARDVERSIE}"


def schema_locations(name: str = SCHEMA_FILE) -> list[Path]:
    """Where an XSD of ours is looked for: the source tree, then ``sys.prefix/share/...``."""
    return [
        Path(__file__).resolve().parents[2] / "schemas" / name,
        Path(sys.prefix) / "share" / "oso-gateway" / "schemas" / name,
    ]


@cache
def _schema_document(name: str) -> etree._ElementTree:
    """A schema document, read once: the only file access in ``oso_gateway.dossier``."""
    for path in schema_locations(name):
        if path.is_file():
            return etree.parse(str(path), etree.XMLParser(no_network=True, resolve_entities=False))
    raise FileNotFoundError(f"{name} not found in {[str(p) for p in schema_locations(name)]}")


_local = threading.local()


def compiled_schema(name: str = SCHEMA_FILE) -> etree.XMLSchema:
    """An XSD of ours (default: the OSO gegevensset), compiled once per thread.

    An ``XMLSchema`` object keeps its error log on itself, so two threads validating with the
    same object at once would mix their errors; each thread compiles its own copy once (about a
    millisecond) and reuses it.
    """
    schemas: dict[str, etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if schemas is None:
        schemas = _local.schemas = {}
    schema = schemas.get(name)
    if schema is None:
        schema = schemas[name] = etree.XMLSchema(_schema_document(name))
    return schema


def element_path(element: etree._Element) -> str:
    """``/dossier/huidigeschool/leerling/voornaam[2]``: local names, positions only when needed;
    ``*`` for a name the schema does not declare (the document's own: it may be anything)."""
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        if isinstance(node.tag, str):
            name = local_name(node.tag)
            name = name if name in _schema_names() else "*"
            parent = node.getparent()
            if parent is not None:
                same = [c for c in parent if c.tag == node.tag]
                if len(same) > 1:
                    name += f"[{same.index(node) + 1}]"
            steps.append(name)
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


def validate_schema(tree: etree._ElementTree) -> list[Finding]:
    """Every schema error of ``tree`` as a Finding (empty list: the document conforms)."""
    schema = compiled_schema()
    if schema.validate(tree):
        return []
    findings: list[Finding] = []
    entries = cast("Iterable[etree._LogEntry]", schema.error_log)
    for entry in entries:
        element = _element_at(tree, entry.path)
        path = element_path(element) if element is not None else _shown_path(entry.path)
        message = sanitise_message(entry.message, element)
        findings.append(
            Finding(
                code=_code_for(entry.type_name, message),
                severity=Severity.ERROR,
                path=path,
                message_nl=f"{_NL_PREFIX}: {message}",
                message_en=message,
                line=entry.line or None,
                column=entry.column or None,
            )
        )
    return findings


def _shown_path(path: str | None) -> str:
    """libxml2's path of an error with ``*`` for each step whose name the schema does not
    declare (as ``element_path``)."""
    steps = []
    for step in (path or "").split("/"):
        name = local_name(step.split("[", 1)[0].split(":")[-1])
        steps.append(step if not step or name in _schema_names() else "*")
    return "/".join(steps) or "/"


def _element_at(tree: etree._ElementTree, xpath: str | None) -> etree._Element | None:
    """The element libxml2 reports (its path is positional: ``/*/*[4]/*[2]``)."""
    if not xpath or not re.fullmatch(r"(/\*(\[\d+\])?)+", xpath):
        return None
    found = tree.xpath(xpath)
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None


def _code_for(type_name: str, message: str) -> str:
    """Our finding code for a libxml2 error type (``entry.type_name``)."""
    head = _HEAD.match(message)
    if (head is not None and ", attribute '" in head.group(1)) or "'nillable'" in message:
        return CODE_ATTRIBUTE  # includes xsi:nil on an element that is not nillable
    if type_name == "SCHEMAV_CVC_ELT_1":
        return CODE_ROOT
    if (
        type_name == "SCHEMAV_ELEMENT_CONTENT"
        or type_name.startswith("SCHEMAV_CVC_COMPLEX_TYPE")
        or "Element content is not allowed" in message
    ):
        return CODE_STRUCTURE
    if type_name.startswith(("SCHEMAV_CVC_DATATYPE", "SCHEMAV_CVC_FACET", "SCHEMAV_CVC_")) and (
        "facet" in message or "is not a valid value" in message
    ):
        return CODE_VALUE
    return CODE_OTHER


# libxml2 messages start with "Element 'name': " or "Element 'name', attribute 'attr': " (names
# cannot contain quotes); the rest may quote document values. Each pattern below removes a value
# from that rest; a value is matched greedily up to the LAST occurrence of the fixed text that
# follows it (that text comes after the value), so a value that itself contains quotes or those
# phrases is removed whole.
_HEAD = re.compile(r"^(Element '[^']*'(?:, attribute '[^']*')?: )")
_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "'VALUE' is not a valid value of the atomic type 'xs:date'."
    (
        re.compile(r"^'.*' is not a valid value of ", re.DOTALL),
        "The value is not a valid value of ",
    ),
    # "[facet 'pattern'] The value 'VALUE' is not accepted by the pattern ..."
    # "[facet 'maxLength'] The value 'VALUE' has a length of '36'; ..."
    (
        re.compile(
            r"The value '.*' (?=is not accepted|has a length|is greater|is less|is not an element"
            r"|is not facet-valid|is not a valid|has more digits|has more fractional|is not equal"
            r"|of )",
            re.DOTALL,
        ),
        "The value ",
    ),
    # "The QName value 'p:T' of the xsi:type attribute does not resolve ..."
    (
        re.compile(r"The QName value '.*' (?=of the xsi:type|does not resolve)", re.DOTALL),
        "The QName value ",
    ),
    # "... the value 'VALUE'" at the end, or any other trailing quoted value
    (re.compile(r": '.*'\.?$", re.DOTALL), ": (value omitted)."),
)


@cache
def _schema_names() -> frozenset[str]:
    """Every name our XSD declares (elements, attributes, types, groups): what a message may
    name. A name outside it was made up by the document, and may hold anything."""
    return frozenset(
        name
        for el in _schema_document(SCHEMA_FILE).iter()
        if isinstance(el.tag, str) and (name := el.get("name"))
    )


_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_XML = "{http://www.w3.org/XML/1998/namespace}"
#: the names of the XML and XML Schema instance namespaces a message may name as they are
#: (exactly these: any other name in those namespaces is the document's own, a review)
_STANDARD_NAMES = frozenset(
    f"{prefix}{name}"
    for prefixes, names in (
        (("xsi:", _XSI), ("type", "nil", "schemaLocation", "noNamespaceSchemaLocation")),
        (("xml:", _XML), ("lang", "space", "base", "id")),
    )
    for prefix in prefixes
    for name in names
)
_QUOTED = re.compile(r"'([^']*)'")
UNKNOWN_NAME = "(a name not in the schema)"


def _hide_unknown_names(head: str, rest: str) -> tuple[str, str]:
    """The element and attribute names the head quotes that the schema does not declare,
    replaced in head and rest: a document's own name for an element or attribute may be
    anything (a pupil's name was echoed as "Element 'Dijkstra999999527'": an integrator's
    walkthrough)."""
    known = _schema_names()
    unknown = {
        name for name in _QUOTED.findall(head) if name not in known and name not in _STANDARD_NAMES
    }
    for name in unknown:
        head = head.replace(f"'{name}'", f"'{UNKNOWN_NAME}'")
        rest = rest.replace(f"'{name}'", f"'{UNKNOWN_NAME}'")
    return head, rest


def sanitise_message(message: str, element: etree._Element | None = None) -> str:
    """libxml2's message without any value from the document (names, types, facets stay;
    a name the schema does not declare is replaced: ``_hide_unknown_names``)."""
    text = message.replace(f"{{{DOSSIER_NS}}}", "").strip()
    head_match = _HEAD.match(text)
    head = head_match.group(1) if head_match else ""
    head, rest = _hide_unknown_names(head, text[len(head) :])
    for pattern, replacement in _VALUE_PATTERNS:
        rest = pattern.sub(replacement, rest)
    if element is not None:
        # Belt and braces: whatever phrase libxml2 used, no quoted copy of the element's text
        # or of its attribute values survives.
        for value in [element.text or "", *element.attrib.values()]:
            if value.strip() and f"'{value}'" in rest:
                rest = rest.replace(f"'{value}'", "(value omitted)")
    return head + rest
