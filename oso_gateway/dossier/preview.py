"""The "what will be shared" preview of a dossier, per categorie_uitlevering category.

``preview(root)`` summarises a dossier without personal data: for each category its declared
status, whether it has data, what will happen to it on sending (shared, removed by minimisation,
absent, or missing although mandatory) and counts (12 × toets, 3 attachments, 45 KB). Only when a
caller asks for it (``include_details=True``, e.g. for the parents' own review screen) does the
preview carry the actual values, in the separate ``details`` part. Attachment content is never
included, not even in the details: only the file name and size.

``render_text(preview)`` prints the summary; details are printed only with ``show_details=True``
and under their own heading.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from lxml import etree

from oso_gateway.dossier.categories import (
    CATEGORIES,
    EXCLUDED,
    Category,
    Uitlevering,
    category_elements,
    declared_status,
    q,
)
from oso_gateway.dossier.codelists import OVERDRACHTSOORTEN, OVERSTAP_KINDS
from oso_gateway.dossier.rules import element_path, scan_base64
from oso_gateway.security.namespaces import local_name

#: Containers whose children are the items worth counting ("12 × toets", not "1 × toetslijst").
_LIST_SUFFIX = ("lijst", "Lijst")
#: Categories whose elements are single fields (count fields, not blocks).
_FIELD_CATEGORIES = frozenset({"metadata", "school", "leerling"})


class Action(StrEnum):
    SHARED = "shared"  #: present and allowed: it goes to the receiving school
    REMOVED = "removed"  #: present but VERBODEN / OPT-UIT: minimisation removes it
    ABSENT = "absent"  #: no data (and none required)
    MISSING = "missing"  #: VERPLICHT but no data: the dossier will be refused


_ACTION_TEXT = {
    "nl": {
        Action.SHARED: "wordt gedeeld",
        Action.REMOVED: "wordt verwijderd",
        Action.ABSENT: "niet aanwezig",
        Action.MISSING: "ONTBREEKT (verplicht)",
    },
    "en": {
        Action.SHARED: "will be shared",
        Action.REMOVED: "will be removed",
        Action.ABSENT: "not present",
        Action.MISSING: "MISSING (mandatory)",
    },
}


@dataclass(frozen=True, kw_only=True)
class ItemCount:
    name: str  #: element local name, e.g. "toets"
    count: int


@dataclass(frozen=True, kw_only=True)
class DetailField:
    """One value for the parents' review view (personal data: only in ``details``)."""

    path: str
    value: str


@dataclass(frozen=True, kw_only=True)
class CategoryDetails:
    key: str
    fields: tuple[DetailField, ...]
    attachments: tuple[tuple[str, int], ...]  #: (file name, size in bytes)


@dataclass(frozen=True, kw_only=True)
class CategorySummary:
    key: str
    rule: str
    label_nl: str
    label_en: str
    status: str | None  #: declared value in categorie_uitlevering, None when not declared
    present: bool
    action: Action
    items: tuple[ItemCount, ...]
    attachments: int
    attachment_bytes: int

    def as_dict(self) -> dict[str, object]:
        return {
            "category": self.key,
            "rule": self.rule,
            "label_nl": self.label_nl,
            "label_en": self.label_en,
            "status": self.status,
            "present": self.present,
            "action": str(self.action),
            "items": {i.name: i.count for i in self.items},
            "attachments": self.attachments,
            "attachment_bytes": self.attachment_bytes,
        }


@dataclass(frozen=True, kw_only=True)
class DossierPreview:
    overdrachtsoort: str
    overstap: str
    standaardversie: str
    categories: tuple[CategorySummary, ...]
    #: Personal data for the parents' review: None unless requested with include_details=True.
    details: tuple[CategoryDetails, ...] | None = field(default=None, repr=False)
    #: The version of the dossier this preview shows (``transfer.send.dossier_version``: the
    #: first 16 hex digits of the digest of what would be sent, the parents' objections
    #: withheld): of a request's held dossier, or of a file to be pushed. An inzage recorded
    #: with it is of this version only.
    version: str | None = None

    @property
    def attachments(self) -> int:
        return sum(c.attachments for c in self.categories if c.action == Action.SHARED)

    @property
    def attachment_bytes(self) -> int:
        return sum(c.attachment_bytes for c in self.categories if c.action == Action.SHARED)

    def category(self, key: str) -> CategorySummary:
        return next(c for c in self.categories if c.key == key)

    def as_dict(self, *, include_details: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "overdrachtsoort": self.overdrachtsoort,
            "overstap": self.overstap,
            "standaardversie": self.standaardversie,
            "categories": [c.as_dict() for c in self.categories],
            "shared_attachments": self.attachments,
            "shared_attachment_bytes": self.attachment_bytes,
        }
        if self.version is not None:
            out["version"] = self.version
        if include_details and self.details is not None:
            out["details"] = [
                {
                    "category": d.key,
                    "fields": [{"path": f.path, "value": f.value} for f in d.fields],
                    "attachments": [{"name": n, "bytes": b} for n, b in d.attachments],
                }
                for d in self.details
            ]
        return out


#: Shown instead of a value that is not in its code list: the default preview carries no text
#: from the dossier except code-list values, so a stray name or number cannot reach it.
INVALID = "(invalid)"


def _status_text(status: Uitlevering | str | None) -> str | None:
    if status is None:
        return None
    return str(status) if isinstance(status, Uitlevering) else INVALID


def _coded(value: str, allowed: frozenset[str]) -> str:
    return value if not value or value in allowed else INVALID


def _version(value: str) -> str:
    return value if not value or re.fullmatch(r"[0-9]{4}\.[0-9]{1,3}", value) else INVALID


def _text(root: etree._Element, *names: str) -> str:
    el: etree._Element | None = root
    for name in names:
        el = el.find(q(name)) if el is not None else None
    return (el.text or "").strip() if el is not None else ""


def _walk(top: etree._Element, foreign: set[etree._Element]) -> list[etree._Element]:
    """``top`` and its descendants, skipping subtrees that are another category's top element."""
    out = [top]
    stack = [child for child in reversed(top) if isinstance(child.tag, str)]
    while stack:  # depth-first, in document order
        el = stack.pop()
        if el in foreign:
            continue
        out.append(el)
        stack.extend(child for child in reversed(el) if isinstance(child.tag, str))
    return out


def _items(c: Category, tops: list[etree._Element], foreign: set[etree._Element]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for top in tops:
        name = local_name(top.tag)
        if c.key in _FIELD_CATEGORIES:
            for child in top:
                if not isinstance(child.tag, str) or child in foreign:
                    continue
                inner = [g for g in child if isinstance(g.tag, str)]
                if inner and all(g in foreign for g in inner):
                    continue  # a mere container of other categories (onderwijsondersteuning)
                counts[local_name(child.tag)] += 1
        elif name.endswith(_LIST_SUFFIX):
            for child in top:
                if isinstance(child.tag, str):
                    counts[local_name(child.tag)] += 1
        else:
            counts[name] += 1
    return counts


def _attachment_size(doc: etree._Element) -> int:
    content = doc.find(q("bestandsinhoud"))
    text = content.text or "" if content is not None else ""
    scanned = scan_base64(text)  # its size, without decoding it whole
    return scanned.size if scanned is not None else len(text) * 3 // 4


def preview(root: etree._Element, *, include_details: bool = False) -> DossierPreview:
    """Summarise ``root`` per category; values only with ``include_details=True``."""
    tops: dict[str, list[etree._Element]] = {
        c.key: list(category_elements(root, c)) for c in CATEGORIES
    }
    summaries: list[CategorySummary] = []
    details: list[CategoryDetails] = []
    for c in CATEGORIES:
        foreign = {el for k, els in tops.items() if k != c.key for el in els}
        own = tops[c.key]
        nodes = [n for top in own for n in _walk(top, foreign)]
        docs = [n for n in nodes if n.tag == q("document")]
        status = declared_status(root, c)
        present = bool(own)
        excluded = isinstance(status, Uitlevering) and status in EXCLUDED
        if present:
            action = Action.REMOVED if excluded else Action.SHARED
        else:
            action = Action.MISSING if status == Uitlevering.VERPLICHT else Action.ABSENT
        counts = _items(c, own, foreign)
        summaries.append(
            CategorySummary(
                key=c.key,
                rule=c.rule,
                label_nl=c.label_nl,
                label_en=c.label_en,
                status=_status_text(status),
                present=present,
                action=action,
                items=tuple(ItemCount(name=n, count=k) for n, k in sorted(counts.items())),
                attachments=len(docs),
                attachment_bytes=sum(_attachment_size(d) for d in docs),
            )
        )
        if include_details:
            details.append(_details(c, nodes, docs))
    return DossierPreview(
        overdrachtsoort=_coded(_text(root, "overdrachtsoort"), OVERDRACHTSOORTEN),
        overstap=_coded(_text(root, "metadata", "overstap"), OVERSTAP_KINDS),
        standaardversie=_version(_text(root, "metadata", "standaardversie")),
        categories=tuple(summaries),
        details=tuple(details) if include_details else None,
    )


def _details(
    c: Category, nodes: list[etree._Element], docs: list[etree._Element]
) -> CategoryDetails:
    fields = []
    for el in nodes:
        if el.tag == q("bestandsinhoud") or any(isinstance(ch.tag, str) for ch in el):
            continue
        value = (el.text or "").strip()
        if value:
            fields.append(DetailField(path=element_path(el), value=value))
    attachments = tuple(
        ((d.findtext(q("bestandsnaam")) or "").strip(), _attachment_size(d)) for d in docs
    )
    return CategoryDetails(key=c.key, fields=tuple(fields), attachments=attachments)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def render_text(p: DossierPreview, *, language: str = "nl", show_details: bool = False) -> str:
    """Plain-text preview. No personal data unless ``show_details`` and the preview has them."""
    if language not in _ACTION_TEXT:
        raise ValueError("language must be 'nl' or 'en'")
    nl = language == "nl"
    lines = [
        "Wat wordt gedeeld" if nl else "What will be shared",
        f"  {'soort overdracht' if nl else 'handover kind'}: {p.overdrachtsoort or '-'}"
        f"   {'overstap' if nl else 'transfer'}: {p.overstap or '-'}"
        f"   {'standaard' if nl else 'standard'}: {p.standaardversie or '-'}",
        "",
    ]
    for c in p.categories:
        label = c.label_nl if nl else c.label_en
        head = f"  {label:<40} {c.status or '-':<10} {_ACTION_TEXT[language][c.action]}"
        lines.append(head)
        if c.key in _FIELD_CATEGORIES:
            names = [i.name if i.count == 1 else f"{i.count} × {i.name}" for i in c.items]
            parts = [f"{'gegevens' if nl else 'fields'}: {', '.join(names)}"] if names else []
        else:
            parts = [f"{i.count} × {i.name}" for i in c.items]
        if c.attachments:
            word = ("bijlage" if c.attachments == 1 else "bijlagen") if nl else "attachment(s)"
            parts.append(f"{c.attachments} {word} ({_size(c.attachment_bytes)})")
        if parts and c.present:
            lines += textwrap.wrap(
                ", ".join(parts), width=100, initial_indent=" " * 6, subsequent_indent=" " * 8
            )
    lines.append("")
    total = f"{p.attachments} ({_size(p.attachment_bytes)})"
    lines.append(
        f"  {'Bijlagen die worden gedeeld' if nl else 'Attachments to be shared'}: {total}"
    )
    if p.version is not None:
        lines.append(f"  {'Versie van het dossier' if nl else 'Dossier version'}: {p.version}")
    if show_details and p.details is not None:
        lines += [
            "",
            "=" * 72,
            "DETAILS — bevat persoonsgegevens; alleen voor inzage door ouders/verzorgers"
            if nl
            else "DETAILS — contains personal data; for the parents' review only",
            "=" * 72,
        ]
        by_key = {c.key: c for c in p.categories}
        for d in p.details:
            if not d.fields and not d.attachments:
                continue
            c = by_key[d.key]
            lines.append(f"[{c.label_nl if nl else c.label_en}]")
            lines += [f"  {f.path} = {f.value}" for f in d.fields]
            lines += [
                f"  {'bijlage' if nl else 'attachment'}: {n} ({_size(b)})" for n, b in d.attachments
            ]
    return "\n".join(lines) + "\n"
