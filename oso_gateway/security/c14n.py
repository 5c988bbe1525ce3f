"""Exclusive XML Canonicalization 1.0 (without comments) through lxml/libxml2.

Linear in the declarations in scope: lxml canonicalises an element that is not the root of its
document by first copying every namespace declaration of every ancestor onto it, each copy checking
the ones already there (quadratic: tens of thousands of unused declarations on the Envelope made one
header cost seconds). Exclusive C14N renders only the namespaces the subtree visibly uses (and the
InclusiveNamespaces prefixes), so we canonicalise a detached copy of the element instead, in its own
document, with only those inclusive prefixes declared above it.

``wrapped_c14n`` canonicalises "this (empty) element with that payload as its only content"
without moving a possibly huge payload into the envelope tree: exclusive C14N renders a namespace
on the first output element that visibly uses it, so the payload's own canonical form is the
same inside the wrapper unless the wrapper's start tag already renders a (prefix, namespace)
pair that the payload uses too. In that case (rare) we canonicalise a real wrapper with a copy of
the payload instead.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import uuid
from collections.abc import Callable, Sequence
from typing import NamedTuple

from lxml import etree

from oso_gateway.errors import CanonicalizationFailed, GatewayError
from oso_gateway.security import largetext
from oso_gateway.security.namespaces import split_clark

#: the hardened parser, bytes to root element
Parse = Callable[[bytes], etree._Element]

#: the ``xml:`` prefix's namespace: never declared, so never visible in a canonical form
XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"

#: The start tag of a canonical element. C14N leaves ">" unescaped in attribute values, but it
#: always quotes them with '"' and writes a '"' inside one as "&quot;": so the first ">" outside
#: a quoted value ends the tag.
_START_TAG = re.compile(rb'<[^">]*(?:"[^"]*"[^">]*)*>')
#: how C14N writes these characters in a text node ("&" first)
_TEXT_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#xD;"))
#: ``canonical(consume=True)``: texts at least this long are spliced, this much at a time
SPLICE_MIN_CHARS = 1024 * 1024
SPLICE_PIECE_CHARS = 4 * 1024 * 1024
#: characters C14N escapes in an attribute value (a namespace URI holding one is not found as is)
_ESCAPED = re.compile(r'[&<"\t\n\r]')


def exc_c14n(element: etree._Element, *, inclusive_prefixes: Sequence[str] = ()) -> bytes:
    """Exclusive C14N (no comments) of ``element`` in its document context."""
    if element.getparent() is not None:
        element = detached(element, inclusive_prefixes)
    return _c14n(element, inclusive_prefixes)


class Canonical(NamedTuple):
    """A payload's exclusive C14N, made by ``canonical``: what a sealing signs and encrypts, so
    that sealing it needs no tree."""

    data: bytes


def canonical(element: etree._Element, *, consume: bool = False) -> Canonical:
    """``exc_c14n`` of ``element`` as a ``Canonical`` payload (for ``wss.seal``).

    ``consume=True``: the caller drops the tree right after, so its long text nodes (a
    dossier's attachments: one text node of tens of MB) are moved out of the tree while the
    canonical form is written, and spliced in (escaped as C14N escapes text) piece by piece. The
    text then exists once besides the form, not also as libxml2's rendering and its copy.
    """
    if consume and element.getparent() is None:
        spliced = _spliced_canonical(element)
        if spliced is not None:
            return spliced
    return Canonical(exc_c14n(element))


def _spliced_canonical(root: etree._Element) -> Canonical | None:
    """The canonical form of the document of ``root``, its long texts spliced in; None (tree
    unchanged) when there is nothing to splice or the document has top-level siblings."""
    if root.getprevious() is not None or root.getnext() is not None:
        return None
    moved: list[tuple[etree._Element, str]] = []
    for el in root.iter(tag=etree.Element):
        if len(el) == 0 and el.text is not None:
            text = el.text
            if len(text) >= SPLICE_MIN_CHARS:
                moved.append((el, text))
            del text
    if not moved:
        return None
    token = f"oso-c14n-splice-{uuid.uuid4().hex}-"
    for i, (el, _text) in enumerate(moved):
        el.text = f"{token}{i}."
    parts = exc_c14n(root).split(token.encode("ascii"))
    marks = [f"{i}.".encode("ascii") for i in range(len(moved))]
    if len(parts) != len(moved) + 1 or any(
        not part.startswith(mark) for part, mark in zip(parts[1:], marks, strict=True)
    ):  # pragma: no cover - a random token in the document: put the texts back
        for el, text in moved:
            el.text = text
        return None
    out = io.BytesIO()
    out.write(parts[0])
    for (_el, text), part, mark in zip(moved, parts[1:], marks, strict=True):
        for start in range(0, len(text), SPLICE_PIECE_CHARS):
            out.write(_c14n_text_escape(text[start : start + SPLICE_PIECE_CHARS]))
        out.write(part[len(mark) :])
    moved.clear()
    return Canonical(out.getvalue())


def _c14n_text_escape(text: str) -> bytes:
    """A text node's content as exclusive C14N writes it."""
    for char, escaped in _TEXT_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return text.encode("utf-8")


def _c14n(element: etree._Element, inclusive_prefixes: Sequence[str]) -> bytes:
    try:
        return etree.tostring(
            element,
            method="c14n",
            exclusive=True,
            with_comments=False,
            inclusive_ns_prefixes=list(inclusive_prefixes) or None,
        )
    except etree.C14NError:
        # libxml2 refuses e.g. a relative namespace URI in scope of what it renders
        raise CanonicalizationFailed("exclusive C14N refused the element") from None


def deep_copy(element: etree._Element) -> etree._Element:
    """A copy of the whole subtree: lxml's ``__copy__`` is deep, and called directly it skips
    ``copy.deepcopy``'s dispatch and memo (a quarter of the cost of copying a small header)."""
    clone: etree._Element = element.__copy__()  # type: ignore[attr-defined]  # not in the stubs
    return clone


def detached(element: etree._Element, inclusive_prefixes: Sequence[str] = ()) -> etree._Element:
    """A copy of ``element`` whose exclusive C14N equals the original's in its context.

    The copy is the root of its own document (every namespace its subtree uses is declared on
    it); the namespaces of ``inclusive_prefixes`` in scope at ``element`` are declared on a
    holder element above it. The cost is linear in the subtree and in the declarations in scope.
    """
    clone = deep_copy(element)
    clone.tail = None
    if not inclusive_prefixes:
        return clone
    in_scope = element.nsmap  # one walk up the ancestors
    keep: dict[str | None, str] = {}
    for prefix in inclusive_prefixes:
        key = None if prefix == "#default" else prefix
        if key in in_scope:
            keep[key] = in_scope[key]
    if keep:
        holder = etree.Element("holder", nsmap=keep)  # type: ignore[arg-type]
        holder.append(clone)
    return clone


def _rendered_namespaces(element: etree._Element) -> frozenset[str] | None:
    """Namespaces that exclusive C14N renders on ``element``'s start tag (None: unprefixed)."""
    if element.prefix is None:
        return None  # default namespace (or none) on the wrapper: take the safe path
    return _namespaces_of(element.tag, tuple(element.attrib))


@functools.lru_cache(maxsize=64)
def _namespaces_of(tag: str, attributes: tuple[str, ...]) -> frozenset[str]:
    """The namespace of a tag and those of its namespaced attributes (Clark names): a wrapper's
    are the same message after message, so they are worked out once."""
    found = {split_clark(tag)[0] or ""}
    for name in attributes:
        ns = split_clark(name)[0]
        if ns:
            found.add(ns)
    return frozenset(found)


def _uses_any(payload: etree._Element, namespaces: frozenset[str] | None) -> bool:
    """True when an element or attribute in ``payload``'s subtree is in one of ``namespaces``."""
    if namespaces is None:
        return True
    if not namespaces:
        return False
    # One walk for the elements, one XPath of name tests for the attributes (not a string
    # function per attribute: a payload full of attributes costs no more than their names).
    if next(payload.iter(*(f"{{{ns}}}*" for ns in namespaces)), None) is not None:
        return True
    return bool(_attribute_test(frozenset(namespaces))(payload))


@functools.lru_cache(maxsize=32)
def _attribute_test(namespaces: frozenset[str]) -> etree.XPath:
    """Compiled once per set of namespaces (a wrapper renders the same one or two every time)."""
    prefixes = {f"n{i}": ns for i, ns in enumerate(sorted(namespaces))}
    test = " | ".join(f"descendant-or-self::*/@{prefix}:*" for prefix in prefixes)
    return etree.XPath(f"boolean({test})", namespaces=prefixes)


def wrapped_c14n_digest(
    wrapper: etree._Element,
    payload: etree._Element,
    payload_c14n: bytes,
    *,
    before: str = "",
    after: str = "",
    inclusive_prefixes: Sequence[str] = (),
) -> bytes:
    """SHA-256 of exc-C14N(``wrapper`` whose content is before + payload + after).

    ``wrapper`` must currently have no children and no text. ``payload_c14n`` is the payload's
    own exclusive C14N; ``before`` / ``after`` are whitespace-only text around it.
    """
    if len(wrapper) or wrapper.text:
        raise ValueError("wrapper must be empty")
    if before.strip() or after.strip():
        raise ValueError("only whitespace may surround the payload")
    if inclusive_prefixes or _uses_any_of(payload, payload_c14n, _rendered_namespaces(wrapper)):
        # A detached copy of the (empty) wrapper holding a copy of the payload.
        outer = detached(wrapper, inclusive_prefixes)
        outer.text = before or None
        clone = deep_copy(payload)
        clone.tail = after or None
        outer.append(clone)
        return hashlib.sha256(_c14n(outer, inclusive_prefixes)).digest()
    return _spliced_digest(wrapper, payload_c14n, before, after)


#: the longest canonical form searched for the wrapper's namespaces before the tree is walked
_MENTIONS_MAX = 64 * 1024


def _uses_any_of(
    payload: etree._Element, payload_c14n: bytes | memoryview, namespaces: frozenset[str] | None
) -> bool:
    """``_uses_any``, first asked of a short payload's canonical form: a namespace that occurs
    nowhere there as a quoted string is used nowhere in the payload (``_mentions``). The search
    costs by the byte, the walk by the element: a 30 KB dossier's search is ~6 us against a
    ~20 us walk, but a 2 MB one (mostly attachment text, as many elements) ~270 us."""
    if (
        isinstance(payload_c14n, bytes)
        and len(payload_c14n) <= _MENTIONS_MAX
        and not _mentions(payload_c14n, namespaces)
    ):
        return False
    return _uses_any(payload, namespaces)


def _mentions(form: bytes, namespaces: frozenset[str] | None) -> bool:
    """Whether the canonical form ``form`` may use one of ``namespaces`` (None: assume so).

    Exclusive C14N declares every namespace an element or attribute of the form uses, as
    ``xmlns…="uri"`` with the URI as it is unless it holds a character that C14N escapes in
    an attribute value; the ``xml:`` namespace is never declared. So when none of those holds,
    a namespace whose quoted URI is not in ``form`` is not used there. True may be a false
    alarm (the URI in a text or a value): the caller then looks at the tree.
    """
    if namespaces is None:
        return True
    needles = _quoted(namespaces)
    return needles is None or any(needle in form for needle in needles)


@functools.lru_cache(maxsize=64)
def _quoted(namespaces: frozenset[str]) -> tuple[bytes, ...] | None:
    """Each namespace as C14N writes it in a declaration, quoted; None when one is not found so
    (the ``xml:`` namespace, a URI with a character C14N escapes)."""
    if XML_NAMESPACE in namespaces or any(_ESCAPED.search(ns) for ns in namespaces):
        return None
    return tuple(b'"' + ns.encode("utf-8") + b'"' for ns in sorted(namespaces))


def wrapped_canonical_digest(wrapper: etree._Element, payload: Canonical, parse: Parse) -> bytes:
    """``wrapped_c14n_digest`` of a payload given only as its canonical form (no tree).

    A namespace the payload uses is declared in its canonical form (``xmlns…="uri"``), so when
    no namespace that the wrapper renders occurs there as a quoted string the payload's form is
    spliced in as it is; otherwise (rare, or a false alarm in text) the payload is parsed back
    with ``parse`` and digested the careful way.
    """
    if len(wrapper) or wrapper.text:
        raise ValueError("wrapper must be empty")
    if _mentions(payload.data, _rendered_namespaces(wrapper)):
        return wrapped_c14n_digest(wrapper, parse(payload.data), payload.data)
    return _spliced_digest(wrapper, payload.data, "", "")


def _spliced_digest(
    wrapper: etree._Element, payload_c14n: bytes | memoryview, before: str, after: str
) -> bytes:
    """The digest of the wrapper's canonical start tag, the payload's form, and its end tag."""
    empty = exc_c14n(wrapper)
    start_tag = _START_TAG.match(empty)
    if start_tag is None:  # pragma: no cover - C14N always writes a start and an end tag
        raise ValueError("unexpected canonical form of the wrapper")
    split = start_tag.end()
    digest = hashlib.sha256(empty[:split])
    digest.update(_c14n_text(before))
    digest.update(payload_c14n)
    digest.update(_c14n_text(after))
    digest.update(empty[split:])
    return digest.digest()


#: text runs at least this long are cut before a document is compared with its canonical form
#: (or serialised, ``largetext.serialise``)
CUT_TEXT = 64 * 1024


def is_canonical(
    document: bytes, root: etree._Element, *, start: int, stop: int, parse: Parse
) -> bool:
    """Whether ``document[start:stop]`` is the exclusive C14N (no comments) of ``root``, the
    root element the hardened parser (``parse``: bytes to root element) made of ``document``.

    A large dossier is mostly long runs of base64 text, and C14N costs about three times such
    a text node in libxml2's buffers. The runs are cut first (``largetext.cut_texts``): the
    document is canonical exactly when the cut one is, and that one is small.
    """
    cut = largetext.cut_texts(document, min_size=CUT_TEXT, parsed=True)
    if cut.tokens:
        stop -= len(document) - len(cut.document)
        try:
            root = parse(cut.document)
        except GatewayError:
            return False
    canonical = exc_c14n(root)
    return len(canonical) == stop - start and cut.document.startswith(canonical, start)


def _c14n_text(whitespace: str) -> bytes:
    return whitespace.replace("\r", "&#xD;").encode("utf-8")
