"""Checks of the standard's rules: categories, code lists, OG.*."""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from oso_gateway.dossier import categories as cats
from oso_gateway.dossier.categories import CATEGORIES, EXCLUDED, Category, Uitlevering, q
from oso_gateway.dossier.codelists import (
    CODE_LISTS,
    CodeList,
)
from oso_gateway.dossier.findings import Finding
from oso_gateway.dossier.rules.context import _check, _Ctx
from oso_gateway.dossier.rules.registry import (
    STANDAARDVERSIE,
)
from oso_gateway.dossier.rules.values import (
    _child,
    _children,
    _is_true,
    _text,
    email_is_valid,
)

# --- categorie_uitlevering -----------------------------------------------------------------------


def category_findings(root: etree._Element, *, include_required: bool = True) -> list[Finding]:
    """Findings of the category rules OS.cat01 … OS.cat16.

    With ``include_required=False`` only the "data present that may not be shared" findings
    (VERBODEN / OPT-UIT) are returned: what a receiver must refuse.
    """
    ctx = _Ctx(root, datetime.min)
    block = _child(ctx.metadata, "categorie_uitlevering")
    if block is None:
        return []
    for c in CATEGORIES:
        _category(ctx, c, block, include_required=include_required)
    return ctx.findings


def _category(ctx: _Ctx, c: Category, block: etree._Element, *, include_required: bool) -> None:
    status = cats.declared_status(ctx.root, c)
    if status == Uitlevering.VERPLICHT and include_required and not c.schema_required:
        if not cats.is_present(ctx.root, c):
            decl = _child(block, c.element)
            assert decl is not None
            ctx.report(f"{c.rule}:verplicht", decl)
    elif status in EXCLUDED and ctx.excluded_data:
        variant = "verboden" if status == Uitlevering.VERBODEN else "opt-uit"
        for el in cats.category_elements(ctx.root, c):
            ctx.report(f"{c.rule}:{variant}", el)


@_check
def _categories(ctx: _Ctx) -> None:
    block = _child(ctx.metadata, "categorie_uitlevering")
    if block is not None:
        for c in CATEGORIES:
            _category(ctx, c, block, include_required=True)


# --- code lists ----------------------------------------------------------------------------------


#: Each selector of each code list, as (child tag, parent tag or None, code list, order key):
#: where a code-listed value may occur. Built once; the check walks the dossier once for all.
_SELECTORS: tuple[tuple[str, str | None, CodeList, tuple[int, int]], ...] = tuple(
    (q(child), q(parent) if parent else None, cl, (ci, si))
    for ci, cl in enumerate(CODE_LISTS)
    for si, (parent, _, child) in enumerate(s.rpartition("/") for s in cl.selectors)
)
_BY_TAG: dict[str, list[tuple[str | None, CodeList, tuple[int, int]]]] = {}
for _tag, _parent, _cl, _key in _SELECTORS:
    _BY_TAG.setdefault(_tag, []).append((_parent, _cl, _key))


@_check
def _code_lists(ctx: _Ctx) -> None:
    # One walk over the coded elements (not one per selector); findings in the order of the
    # code lists, then of their selectors, then of the document.
    found: dict[tuple[int, int], list[tuple[str, etree._Element]]] = {}
    for el in ctx.root.iter(*_BY_TAG):
        value = _text(el)
        for parent, cl, key in _BY_TAG[el.tag]:
            if value in cl.values:
                continue
            up = el.getparent()
            if parent is None or (up is not None and up.tag == parent):
                found.setdefault(key, []).append((cl.code, el))
    for key in sorted(found):
        for code, el in found[key]:
            ctx.report(code, el)


# --- OG rules ----------------------------------------------------------------------------------


@_check
def _og(ctx: _Ctx) -> None:
    for comm in ctx.iter("communicatie"):
        if _text(_child(comm, "soort")) == "e-mail":
            nummer = _child(comm, "nummer")
            if nummer is not None and not email_is_valid(_text(nummer)):
                ctx.report("OG.01", nummer)
    versie = _child(ctx.metadata, "standaardversie")
    if versie is not None and _text(versie) != STANDAARDVERSIE:
        ctx.report("OG.02", versie)
    for el in ctx.iter("lwoo_einddatum"):
        if not re.fullmatch(r"\d{4}-07-31", _text(el)):
            ctx.report("OG.03", el)
    for verzorger in ctx.iter("verzorger"):
        odatum = _child(verzorger, "overlijdensdatum")
        if odatum is not None and not _is_true(_child(verzorger, "overleden")):
            ctx.report("OG.04", odatum)
    for arts in ctx.iter("huisarts"):
        for name in ("roepnaam", "geslacht"):
            for el in _children(arts, name):
                ctx.report("OG.05", el)
        geheim = _child(arts, "adresgeheim")
        if _is_true(geheim):
            assert geheim is not None
            ctx.report("OG.05", geheim)
