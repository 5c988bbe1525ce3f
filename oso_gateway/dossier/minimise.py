"""Data minimisation by ``categorie_uitlevering``, for the sender and the receiver.

Sender (``minimise``): return a new tree without the elements of every category marked VERBODEN,
and of every category marked OPT-UIT (the standard's way of saying "the parents opted out").
Optionally apply the parents' opt-out recorded by the gateway itself (``opt_out=``): each named
category must be OPTIONEEL (or already OPT-UIT); it is set to OPT-UIT and its elements removed.

What happens to ``categorie_uitlevering``: it is kept as it is (plus the new OPT-UIT markers). The
standard's rules OS.cat01 … OS.cat16 require the *data* of a VERBODEN or OPT-UIT category to be
absent, and the marker is what tells the receiving school why the data is missing, so a sender
must not drop or rewrite it. A category that the schema itself requires (metadata, school,
leerling) cannot be left out; a dossier marking one of those VERBODEN or OPT-UIT is refused.

Receiver (``category_violations`` / ``require_no_category_violations``): a received dossier that
still carries data of a VERBODEN or OPT-UIT category is refused with ``DossierCategoryError``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from oso_gateway.dossier.categories import (
    BY_KEY,
    CATEGORIES,
    EXCLUDED,
    Uitlevering,
    category_elements,
    declared_status,
    find_path,
    q,
)
from oso_gateway.dossier.findings import Finding
from oso_gateway.dossier.rules import category_findings
from oso_gateway.errors import DossierCategoryError, DossierOptOutError


@dataclass(frozen=True, kw_only=True)
class RemovedCategory:
    """What minimisation removed for one category: counts only, never data."""

    key: str
    status: Uitlevering  #: VERBODEN or OPT-UIT
    elements: int  #: top-level elements removed (e.g. 1 toetslijst, 2 verzorgers)
    nodes: int  #: all elements removed, descendants included

    def as_dict(self) -> dict[str, object]:
        return {
            "category": self.key,
            "status": str(self.status),
            "elements": self.elements,
            "nodes": self.nodes,
        }


@dataclass(frozen=True, kw_only=True)
class MinimiseResult:
    root: etree._Element  #: the minimised dossier (a new tree; the input is untouched)
    removed: tuple[RemovedCategory, ...]
    opted_out: tuple[str, ...]  #: categories this call set to OPT-UIT

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.opted_out)

    def as_dict(self) -> dict[str, object]:
        return {
            "removed": [r.as_dict() for r in self.removed],
            "opted_out": list(self.opted_out),
        }


def minimise(root: etree._Element, *, opt_out: Iterable[str] = ()) -> MinimiseResult:
    """A copy of ``root`` without the data of VERBODEN and OPT-UIT categories.

    ``opt_out``: category keys (``Category.key``, e.g. ``"toetsresultaten"``) the parents opted
    out of; each is marked OPT-UIT before removal. Raises ``DossierOptOutError`` when one of them
    is VERPLICHT or the dossier has no categorie_uitlevering block, ``DossierCategoryError`` when
    a category the schema requires is marked VERBODEN or OPT-UIT, ``ValueError`` for an unknown
    category key.
    """
    tree = copy.deepcopy(root)
    opted = _apply_opt_out(tree, _known_keys(opt_out))
    removed: list[RemovedCategory] = []
    for c in CATEGORIES:
        status = declared_status(tree, c)
        if not isinstance(status, Uitlevering) or status not in EXCLUDED:
            continue
        if c.schema_required:
            raise DossierCategoryError(
                f"category {c.key} is marked {status} but the schema requires its elements"
            )
        doomed = list(category_elements(tree, c))
        if not doomed:
            continue
        nodes = sum(1 for el in doomed for _ in el.iter(tag=etree.Element))
        for el in doomed:
            parent = el.getparent()
            assert parent is not None
            parent.remove(el)
        removed.append(RemovedCategory(key=c.key, status=status, elements=len(doomed), nodes=nodes))
    if removed:
        _drop_emptied_containers(tree)
    return MinimiseResult(root=tree, removed=tuple(removed), opted_out=tuple(opted))


def keep_categories(root: etree._Element, keep: Iterable[str]) -> etree._Element:
    """A copy of ``root`` holding only the categories in ``keep`` (category keys) plus those the
    schema requires (metadata, school, leerling: without them it is no dossier). The
    categorie_uitlevering block is left as it is. ``ValueError`` for an unknown key."""
    keys = set(keep)
    unknown = sorted(keys - set(BY_KEY))
    if unknown:
        raise ValueError(f"unknown categorie_uitlevering key(s): {', '.join(unknown)}")
    tree = copy.deepcopy(root)
    for c in CATEGORIES:
        if c.key in keys or c.schema_required:
            continue
        for el in list(category_elements(tree, c)):
            parent = el.getparent()
            assert parent is not None
            parent.remove(el)
    _drop_emptied_containers(tree)
    return tree


def with_opt_out(root: etree._Element, opt_out: Iterable[str]) -> etree._Element:
    """A copy of ``root`` with each category of ``opt_out`` marked OPT-UIT, nothing removed
    yet (what ``minimise`` then removes): for a preview that shows the parents' objections as
    the categories that are withheld. The errors of ``minimise``'s ``opt_out``."""
    tree = copy.deepcopy(root)
    _apply_opt_out(tree, _known_keys(opt_out))
    return tree


def _known_keys(opt_out: Iterable[str]) -> list[str]:
    """``opt_out`` without repeats; ``ValueError`` for a key that names no category."""
    keys = list(dict.fromkeys(opt_out))
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise ValueError(f"unknown categorie_uitlevering key(s): {', '.join(sorted(unknown))}")
    return keys


def _apply_opt_out(tree: etree._Element, keys: list[str]) -> list[str]:
    if not keys:
        return []
    block = find_path(tree, "metadata/categorie_uitlevering")
    if not block:
        raise DossierOptOutError("the dossier has no categorie_uitlevering block")
    opted: list[str] = []
    for key in keys:
        c = BY_KEY[key]
        status = declared_status(tree, c)
        if status in (Uitlevering.OPT_UIT, Uitlevering.VERBODEN):
            continue  # already excluded; nothing to record
        if status != Uitlevering.OPTIONEEL:
            shown = (
                status
                if isinstance(status, Uitlevering)
                else "absent"
                if status is None
                else "invalid"
            )
            raise DossierOptOutError(
                f"the parents' objection to category {key} cannot be applied: the dossier marks "
                f"it {shown}, and only an OPTIONEEL category can be withheld (withdraw the "
                "objection, or hand in a dossier that marks the category OPTIONEEL)"
            )
        marker = block[0].find(q(c.element))
        assert marker is not None
        marker.text = Uitlevering.OPT_UIT.value
        opted.append(key)
    return opted


#: Containers that exist only to hold category data; left empty they say nothing, so they go too.
_CONTAINERS = ("huidigeschool/leerling/onderwijsondersteuning",)


def _drop_emptied_containers(tree: etree._Element) -> None:
    for path in _CONTAINERS:
        for el in find_path(tree, path):
            if not any(isinstance(child.tag, str) for child in el):
                parent = el.getparent()
                assert parent is not None
                parent.remove(el)


def category_violations(root: etree._Element) -> list[Finding]:
    """Receiver side: findings for data of a VERBODEN or OPT-UIT category (empty when clean)."""
    return category_findings(root, include_required=False)


def require_no_category_violations(root: etree._Element) -> None:
    """Receiver side: raise ``DossierCategoryError`` if the dossier carries excluded data.

    The error's detail names rule codes and element paths only.
    """
    found = category_violations(root)
    if found:
        shown = "; ".join(f"{f.code} at {f.path}" for f in found[:10])
        more = f" (+{len(found) - 10} more)" if len(found) > 10 else ""
        raise DossierCategoryError(f"{len(found)} element(s) of excluded categories: {shown}{more}")
