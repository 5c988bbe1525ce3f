"""Exclusive XML Canonicalization 1.0 (without comments) through lxml/libxml2.

``wrapped_c14n`` canonicalises "this (empty) element with that payload as its only content"
without moving a possibly huge payload into the envelope tree: exclusive C14N renders a namespace
on the first output element that visibly uses it, so the payload's own canonical form is the
same inside the wrapper unless the wrapper's start tag already renders a (prefix, namespace)
pair that the payload uses too. In that case (rare) we canonicalise a real wrapper with a copy of
the payload instead.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Sequence

from lxml import etree

#: The start tag of a canonical element. C14N leaves ">" unescaped in attribute values, but it
#: always quotes them with '"' and writes a '"' inside one as "&quot;": so the first ">" outside
#: a quoted value ends the tag.
_START_TAG = re.compile(rb'<[^">]*(?:"[^"]*"[^">]*)*>')


def exc_c14n(element: etree._Element, *, inclusive_prefixes: Sequence[str] = ()) -> bytes:
    """Exclusive C14N (no comments) of ``element`` in its document context."""
    return etree.tostring(
        element,
        method="c14n",
        exclusive=True,
        with_comments=False,
        inclusive_ns_prefixes=list(inclusive_prefixes) or None,
    )


def _rendered_namespaces(element: etree._Element) -> set[str] | None:
    """Namespaces that exclusive C14N renders on ``element``'s start tag (None: unprefixed)."""
    if element.prefix is None:
        return None  # default namespace (or none) on the wrapper: take the safe path
    found = {etree.QName(element).namespace or ""}
    for name in element.attrib:
        ns = etree.QName(name).namespace
        if ns:
            found.add(ns)
    return found


def _uses_any(payload: etree._Element, namespaces: set[str] | None) -> bool:
    """True when an element or attribute in ``payload``'s subtree is in one of ``namespaces``."""
    if namespaces is None:
        return True
    if not namespaces:
        return False
    # One walk for the elements, one XPath for the attributes (not two per namespace).
    if next(payload.iter(*(f"{{{ns}}}*" for ns in namespaces)), None) is not None:
        return True
    variables = {f"ns{i}": ns for i, ns in enumerate(sorted(namespaces))}
    test = " or ".join(f"namespace-uri() = ${name}" for name in variables)
    return bool(etree.XPath(f"boolean(descendant-or-self::*/@*[{test}])")(payload, **variables))


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
    if inclusive_prefixes or _uses_any(payload, _rendered_namespaces(wrapper)):
        wrapper.text = before or None
        clone = copy.deepcopy(payload)
        clone.tail = after or None
        wrapper.append(clone)
        try:
            return hashlib.sha256(exc_c14n(wrapper, inclusive_prefixes=inclusive_prefixes)).digest()
        finally:
            wrapper.remove(clone)
            wrapper.text = None
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


def _c14n_text(whitespace: str) -> bytes:
    return whitespace.replace("\r", "&#xD;").encode("utf-8")
