"""Mutation and instance generators for testing the OSO gegevensset schema (our own test code).

Two generators, used by ``test_schema_xsd.py`` and by the differential comparison against the
published XSD:

* ``instances(schema_path)`` walks an XSD and builds documents from it: for every global element a
  maximal instance (every optional element present, each choice branch in turn) and a minimal one.
  This reaches parts the official OV examples do not use (PaO blocks such as ``tlv``,
  ``arrangement_pao``, ``lwoo``, ``rvc``; the ``dossiers`` and ``terugkoppeling`` roots).
* ``mutations(tree)`` yields small edits of a valid document: delete / duplicate / swap / empty
  an element, put typed bad (and borderline good) values in every leaf, add unknown elements,
  attributes, text, ``xsi:`` attributes, and change namespaces.

Mutations are de-duplicated per element path without positions, so repeated blocks
(ten ``schoolloopbaan`` entries) are mutated once.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from oso_gateway.dossier.schema import element_path

XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
DOSSIER_NS = "http://www.edustandaard.nl/oso_gegevensset/2019/dossier"
OTHER_NS = "urn:example:not-oso"

#: values put into every leaf; a mix of invalid and borderline-valid values for the XSD's types
BAD_VALUES: tuple[str, ...] = (
    "",
    " ",
    "x",
    "0",
    "-1",
    "+1",
    " 7 ",
    "1.5",
    "1e3",
    "NaN",
    "2147483648",
    "-2147483649",
    "1001",
    "25",
    "2019-13-01",
    "2019-02-30",
    "2020-02-29",
    "01-01-2019",
    "2019-01-01T00:00:00",
    "2019-01-01Z",
    "2019-07-31",
    "2019-08-01",
    "true",
    "ja",
    "00yy",
    "00YY",
    "123",
    "12",
    "12345",
    "2019-2020",
    "2019-1",
    "٢٠١٩-٠١",  # Arabic-Indic digits: \p{Nd} matches them, [0-9] does not
    "a" * 35,
    "a" * 36,
    "a" * 280,
    "a" * 281,
    "a" * 1025,
)


#: xsi:type values tried on every element: named types of the standard (derived or not from the
#: declared type), built-in types, and a type that does not exist
XSI_TYPES: tuple[str, ...] = (
    "nonEmptyStringType",
    "leerlingType",
    "verzorgerType",
    "schoolType",
    "xs:string",
    "xs:date",
    "onbekendType",
)


@dataclass(frozen=True)
class Mutation:
    kind: str
    path: str
    data: bytes


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def _shape(element: etree._Element) -> str:
    """Element path without positions: /dossier/huidigeschool/leerling/voornaam."""
    names = [_local(e.tag) for e in reversed(list(element.iterancestors()))]
    return "/" + "/".join([*names, _local(element.tag)])


def _serialise(tree: etree._ElementTree) -> bytes:
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _is_leaf(element: etree._Element) -> bool:
    return not any(isinstance(c.tag, str) for c in element)


def mutations(
    tree: etree._ElementTree, *, kinds: frozenset[str] | None = None
) -> Iterator[Mutation]:
    """Every mutation of ``tree`` (the input is not modified); ``kinds`` limits the kinds
    (``"value"`` selects all bad values, ``"xsi-type:onbekendType"`` one variant)."""
    root = tree.getroot()
    seen: set[tuple[str, str]] = set()

    def wanted(kind: str) -> bool:
        return kinds is None or kind in kinds or kind.split(":")[0] in kinds

    def once(kind: str, element: etree._Element) -> bool:
        if not wanted(kind):
            return False
        key = (kind, _shape(element))
        if key in seen:
            return False
        seen.add(key)
        return True

    def edit(kind: str, index: int, change: object) -> Mutation:
        # lxml writes an unqualified element inside a default-namespace scope without
        # xmlns="", so those mutations start from a copy that uses a namespace prefix instead.
        clone = _prefixed(tree) if "unqualified" in kind else copy.deepcopy(tree)
        target = _elements(clone.getroot())[index]
        path = element_path(target)
        change(target)  # type: ignore[operator]
        return Mutation(kind, path, _serialise(clone))

    originals = _elements(root)
    for index, element in enumerate(originals):
        is_root = element is root
        leaf = _is_leaf(element)
        if not is_root:
            if once("delete", element):
                yield edit("delete", index, lambda e: e.getparent().remove(e))
            if once("duplicate", element):
                yield edit("duplicate", index, lambda e: e.addnext(copy.deepcopy(e)))
            following = element.getnext()
            while following is not None and not isinstance(following.tag, str):
                following = following.getnext()
            if (
                following is not None
                and following.tag != element.tag
                and once(f"swap:{_local(following.tag)}", element)
            ):
                yield edit("swap", index, _swap_with_next)
        if leaf:
            if once("empty", element):
                yield edit("empty", index, _make_empty)
            for value in BAD_VALUES:
                if once(f"value:{value}", element):
                    yield edit(f"value:{value!r}", index, _setter(value))
            if once("child-in-leaf", element):
                yield edit("child-in-leaf", index, _add_child(DOSSIER_NS, "achternaam"))
        else:
            if once("text-in-complex", element):
                yield edit("text-in-complex", index, _set_text("x"))
            if once("unknown-first-child", element):
                yield edit("unknown-first-child", index, _add_child(DOSSIER_NS, "onbekend", 0))
            if once("unknown-last-child", element):
                yield edit("unknown-last-child", index, _add_child(DOSSIER_NS, "onbekend"))
            if once("foreign-child", element):
                yield edit("foreign-child", index, _add_child(OTHER_NS, "extra"))
            if once("unqualified-child", element):
                yield edit("unqualified-child", index, _add_child(None, "naam"))
        if once("unknown-attribute", element):
            yield edit("unknown-attribute", index, _set_attr("onbekend", "x"))
        if once("foreign-attribute", element):
            yield edit("foreign-attribute", index, _set_attr(f"{{{OTHER_NS}}}extra", "x"))
        if once("xsi-nil", element):
            yield edit("xsi-nil", index, _set_attr(f"{{{XSI}}}nil", "true"))
        for type_name in XSI_TYPES:
            if once(f"xsi-type:{type_name}", element):
                yield edit(f"xsi-type:{type_name}", index, _xsi_type(type_name))
        if element.get("omschrijving") is not None and once("attr-empty", element):
            yield edit("attr-empty", index, _set_attr("omschrijving", ""))
        if not is_root and once("unqualified", element):
            yield edit("unqualified", index, _rename(None))
        if not is_root and once("other-namespace", element):
            yield edit("other-namespace", index, _rename(OTHER_NS))
    if wanted("root-namespace-2018"):
        yield edit("root-namespace-2018", 0, _root_namespace(DOSSIER_NS.replace("2019", "2018")))
    if wanted("root-unqualified"):
        yield edit("root-unqualified", 0, _root_namespace(None))


def _prefixed(tree: etree._ElementTree) -> etree._ElementTree:
    """A copy of ``tree`` in which the dossier namespace has the prefix ``o`` (no default)."""

    def build(source: etree._Element, parent: etree._Element | None) -> etree._Element:
        if parent is None:
            target = etree.Element(source.tag, nsmap={"o": DOSSIER_NS})
        else:
            target = etree.SubElement(parent, source.tag)
        for key, value in source.attrib.items():
            target.set(key, value)
        target.text, target.tail = source.text, source.tail
        for child in source:
            if isinstance(child.tag, str):
                build(child, target)
        return target

    return etree.ElementTree(build(tree.getroot(), None))


def _swap_with_next(element: etree._Element) -> None:
    following = element.getnext()
    while following is not None and not isinstance(following.tag, str):
        following = following.getnext()
    assert following is not None
    following.addnext(element)


def _make_empty(element: etree._Element) -> None:
    element.text = None


def _setter(value: str) -> object:
    def change(element: etree._Element) -> None:
        element.text = value

    return change


def _set_text(value: str) -> object:
    def change(element: etree._Element) -> None:
        element.text = value

    return change


def _add_child(ns: str | None, name: str, position: int | None = None) -> object:
    def change(element: etree._Element) -> None:
        tag = f"{{{ns}}}{name}" if ns else name
        child = etree.Element(tag)
        child.text = "x"
        if position is None:
            element.append(child)
        else:
            element.insert(position, child)

    return change


def _set_attr(name: str, value: str) -> object:
    def change(element: etree._Element) -> None:
        element.set(name, value)

    return change


def _xsi_type(type_name: str) -> object:
    def change(element: etree._Element) -> None:
        if type_name.startswith("xs:"):
            element.set(f"{{{XSI}}}type", type_name)
            # declare the xs prefix on the element itself so the QName resolves
            replacement = etree.Element(element.tag, nsmap={"xs": XS, **(element.nsmap or {})})
            for key, val in element.attrib.items():
                replacement.set(key, val)
            replacement.text, replacement.tail = element.text, element.tail
            replacement.extend(list(element))
            parent = element.getparent()
            if parent is not None:
                parent.replace(element, replacement)
        else:
            prefix = element.prefix
            element.set(f"{{{XSI}}}type", f"{prefix}:{type_name}" if prefix else type_name)

    return change


def _rename(ns: str | None) -> object:
    def change(element: etree._Element) -> None:
        local = _local(element.tag)
        element.tag = f"{{{ns}}}{local}" if ns else local

    return change


def _root_namespace(ns: str | None) -> object:
    def change(root: etree._Element) -> None:
        for element in root.iter():
            if isinstance(element.tag, str) and etree.QName(element).namespace == DOSSIER_NS:
                local = _local(element.tag)
                element.tag = f"{{{ns}}}{local}" if ns else local

    return change


# --------------------------------------------------------------------------------------------
# Instances built from an XSD
# --------------------------------------------------------------------------------------------

_BUILTIN_SAMPLES = {
    "string": "tekst",
    "date": "2019-04-15",
    "boolean": "true",
    "integer": "7",
    "int": "7",
    "decimal": "7.5",
}

#: samples for patterns used in the standard (looked up by the pattern text)
_PATTERN_SAMPLES = {
    r"[0-9][0-9][A-Z][A-Z]": "00YY",
    r"[0-9][0-9]": "01",
    r"[0-9][0-9][0-9][0-9]-07-31": "2019-07-31",
    r"[0-9][0-9][0-9][0-9]": "0012",
    r"\p{Nd}{4}-\p{Nd}{2}": "2012-03",
    r"[0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9]": "2018-2019",
    r"\d{2}-\d{2}-\d{4}": "17-03-2012",
}


class _SchemaIndex:
    def __init__(self, schema_path: Path) -> None:
        doc = etree.parse(str(schema_path))
        self.root = doc.getroot()
        self.elements = {e.get("name"): e for e in self.root.findall(f"{{{XS}}}element")}
        self.complex = {e.get("name"): e for e in self.root.findall(f"{{{XS}}}complexType")}
        self.simple = {e.get("name"): e for e in self.root.findall(f"{{{XS}}}simpleType")}

    def sample(self, type_ref: str | None, simple: etree._Element | None = None) -> str:
        """A valid lexical value for a simple type (named or anonymous)."""
        if simple is None:
            assert type_ref is not None
            prefix, _, local = type_ref.rpartition(":")
            if prefix == "xs":
                return _BUILTIN_SAMPLES[local]
            simple = self.simple[local]
        restriction = simple.find(f"{{{XS}}}restriction")
        assert restriction is not None
        pattern = restriction.find(f"{{{XS}}}pattern")
        if pattern is not None:
            return _PATTERN_SAMPLES[pattern.get("value", "")]
        low = restriction.find(f"{{{XS}}}minInclusive")
        if low is not None:
            return low.get("value", "")
        return self.sample(restriction.get("base"))


def _model_children(node: etree._Element) -> list[etree._Element]:
    return [c for c in node if isinstance(c.tag, str) and _local(c.tag) != "annotation"]


def instances(schema_path: Path, *, variants: int = 7) -> Iterator[tuple[str, bytes]]:
    """(name, document) for each global element: maximal variants and a minimal instance."""
    index = _SchemaIndex(schema_path)
    tns = index.root.get("targetNamespace")
    for name in sorted(index.elements):
        for variant in range(variants):
            root = _build_element(index, index.elements[name], tns, variant, maximal=True, depth=0)
            yield f"{name}-max{variant}", _serialise(etree.ElementTree(root))
        root = _build_element(index, index.elements[name], tns, 0, maximal=False, depth=0)
        yield f"{name}-min", _serialise(etree.ElementTree(root))


def _build_element(
    index: _SchemaIndex,
    decl: etree._Element,
    tns: str | None,
    variant: int,
    *,
    maximal: bool,
    depth: int,
) -> etree._Element:
    if decl.get("ref"):
        decl = index.elements[decl.get("ref", "")]
    element = etree.Element(f"{{{tns}}}{decl.get('name')}", nsmap={None: tns})
    type_ref = decl.get("type")
    if type_ref is not None:
        local = type_ref.rpartition(":")[2]
        if type_ref.startswith("xs:") or local in index.simple:
            element.text = index.sample(type_ref)
            return element
        _fill_complex(index, element, index.complex[local], tns, variant, maximal, depth)
        return element
    inline_simple = decl.find(f"{{{XS}}}simpleType")
    if inline_simple is not None:
        element.text = index.sample(None, inline_simple)
        return element
    inline_complex = decl.find(f"{{{XS}}}complexType")
    assert inline_complex is not None
    _fill_complex(index, element, inline_complex, tns, variant, maximal, depth)
    return element


def _fill_complex(
    index: _SchemaIndex,
    element: etree._Element,
    ctype: etree._Element,
    tns: str | None,
    variant: int,
    maximal: bool,
    depth: int,
) -> None:
    for part in _model_children(ctype):
        kind = _local(part.tag)
        if kind in ("sequence", "choice"):
            _fill_particle(index, element, part, tns, variant, maximal, depth)
        elif kind == "complexContent":
            extension = _model_children(part)[0]
            base = extension.get("base", "").rpartition(":")[2]
            _fill_complex(index, element, index.complex[base], tns, variant, maximal, depth)
            _fill_complex(index, element, extension, tns, variant, maximal, depth)
        elif kind == "simpleContent":
            extension = _model_children(part)[0]
            element.text = index.sample(extension.get("base"))
            if maximal:
                for attribute in extension.findall(f"{{{XS}}}attribute"):
                    element.set(attribute.get("name", ""), index.sample(attribute.get("type")))
        elif kind == "attribute":
            if maximal:
                element.set(part.get("name", ""), index.sample(part.get("type")))


def _fill_particle(
    index: _SchemaIndex,
    element: etree._Element,
    particle: etree._Element,
    tns: str | None,
    variant: int,
    maximal: bool,
    depth: int,
) -> None:
    kind = _local(particle.tag)
    minimum = int(particle.get("minOccurs", "1"))
    if kind == "element":
        repeat = 2 if particle.get("maxOccurs") == "unbounded" else 1
        count = (repeat if depth < 12 else max(minimum, 0)) if maximal else minimum
        # two of each repeatable element; the depth bound only keeps the documents small
        for _ in range(count):
            element.append(
                _build_element(index, particle, tns, variant, maximal=maximal, depth=depth + 1)
            )
        return
    if not maximal and minimum == 0:
        return
    branches = _model_children(particle)
    if kind == "choice":
        chosen = [branches[variant % len(branches)]] if maximal else branches[:1]
        for branch in chosen:
            _fill_particle(index, element, branch, tns, variant, maximal, depth)
        return
    for branch in branches:
        _fill_particle(index, element, branch, tns, variant, maximal, depth)


def element_types(schema_path: Path) -> dict[str, set[str]]:
    """Local element name -> the set of type references it is declared with (for targeted tests)."""
    index = _SchemaIndex(schema_path)
    result: dict[str, set[str]] = {}
    for decl in index.root.iter(f"{{{XS}}}element"):
        name = decl.get("name")
        if name is None:
            continue
        result.setdefault(name, set()).add(decl.get("type") or "(anonymous)")
    return result


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------------------------
# Self-tests of the generators (they must produce what the schema tests rely on)
# --------------------------------------------------------------------------------------------


def _sample_tree() -> etree._ElementTree:
    xml = (
        f'<dossier xmlns="{DOSSIER_NS}"><metadata><datum>2019-01-01</datum></metadata>'
        "<overdrachtsoort>x</overdrachtsoort><overdrachtsoort>y</overdrachtsoort></dossier>"
    )
    return etree.ElementTree(etree.fromstring(xml.encode()))


def test_mutations_cover_every_kind_and_leave_the_input_alone() -> None:
    tree = _sample_tree()
    before = etree.tostring(tree)
    kinds = {m.kind.split(":")[0] for m in mutations(tree)}
    assert etree.tostring(tree) == before
    for kind in (
        "delete",
        "duplicate",
        "swap",
        "empty",
        "value",
        "unknown-first-child",
        "foreign-child",
        "unknown-attribute",
        "xsi-nil",
        "xsi-type",
        "unqualified",
        "root-namespace-2018",
    ):
        assert kind in kinds


def test_mutations_are_deduplicated_per_element_path() -> None:
    deletes = [m for m in mutations(_sample_tree()) if m.kind == "delete"]
    # two overdrachtsoort siblings share one path shape: deleted once
    assert len([m for m in deletes if "overdrachtsoort" in m.path]) == 1


def test_delete_mutation_removes_exactly_one_element() -> None:
    mutation = next(
        m for m in mutations(_sample_tree()) if m.kind == "delete" and m.path.endswith("/datum")
    )
    doc = etree.fromstring(mutation.data)
    assert len(list(doc.iter())) == len(list(_sample_tree().getroot().iter())) - 1
    assert doc.find(f".//{{{DOSSIER_NS}}}datum") is None
