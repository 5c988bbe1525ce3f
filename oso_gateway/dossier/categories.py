"""The categories of ``categorie_uitlevering`` and which dossier elements belong to each.

OSO gegevensset 2019 splits a dossier into sixteen categories. The sending school's software marks
each one in ``metadata/categorie_uitlevering`` as VERPLICHT (must be present), OPTIONEEL (may be
present), VERBODEN (must be absent) or OPT-UIT (the parents opted out: must be absent). The
standard's validation (business rules OS.cat01 … OS.cat16) decides presence by the elements listed
here; this module is the one place that mapping lives. Rules, minimisation and the preview all use
it.

Element paths are relative to the dossier root and use local names (the dossier namespace is
implied).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from oso_gateway.protocol import DOSSIER_NS

NS = DOSSIER_NS
_LEERLING = "huidigeschool/leerling"
_OO = f"{_LEERLING}/onderwijsondersteuning"


class Uitlevering(StrEnum):
    """Values of codelist 48 (categorie uitlevering)."""

    VERPLICHT = "VERPLICHT"
    OPTIONEEL = "OPTIONEEL"
    VERBODEN = "VERBODEN"
    OPT_UIT = "OPT-UIT"


#: Statuses under which a category's elements must be absent from the dossier.
EXCLUDED = frozenset({Uitlevering.VERBODEN, Uitlevering.OPT_UIT})


@dataclass(frozen=True, kw_only=True)
class Category:
    """One category of categorie_uitlevering."""

    key: str  #: short name, e.g. "oudersverzorgers"
    rule: str  #: the standard's business rule code, e.g. "OS.cat05"
    label_nl: str
    label_en: str
    #: Element paths (relative to the dossier root) whose presence means "this category is present".
    paths: tuple[str, ...]
    #: True when the schema itself requires the category's elements: it cannot be left out.
    schema_required: bool = False

    @property
    def element(self) -> str:
        """Local name of this category's element inside categorie_uitlevering."""
        return f"cat_{self.key}"


CATEGORIES: tuple[Category, ...] = (
    Category(
        key="metadata",
        rule="OS.cat01",
        label_nl="Metadata",
        label_en="Metadata",
        paths=("metadata", "overdrachtsoort"),
        schema_required=True,
    ),
    Category(
        key="ouderinzage",
        rule="OS.cat02",
        label_nl="Ouderinzage",
        label_en="Parents' review",
        paths=("inzage",),
    ),
    Category(
        key="school",
        rule="OS.cat03",
        label_nl="School",
        label_en="School",
        paths=("huidigeschool",),
        schema_required=True,
    ),
    Category(
        key="leerling",
        rule="OS.cat04",
        label_nl="Leerling",
        label_en="Pupil",
        paths=(_LEERLING,),
        schema_required=True,
    ),
    Category(
        key="oudersverzorgers",
        rule="OS.cat05",
        label_nl="Ouders/verzorgers",
        label_en="Parents/carers",
        paths=(
            f"{_LEERLING}/verzorgersaansprakelijk",
            f"{_LEERLING}/verzorger",
            f"{_LEERLING}/aansprakelijkeinstelling",
        ),
    ),
    Category(
        key="vve",
        rule="OS.cat06",
        label_nl="VVE (voor- en vroegschoolse educatie)",
        label_en="Early childhood education",
        paths=(
            f"{_LEERLING}/vanpeuterspeelzaal",
            f"{_LEERLING}/naampeuterspeelzaal",
            f"{_LEERLING}/voorschools",
            f"{_LEERLING}/vroegschools",
        ),
    ),
    Category(
        key="schoolloopbaan",
        rule="OS.cat07",
        label_nl="Schoolloopbaan",
        label_en="School career",
        paths=(f"{_LEERLING}/schoolloopbaanlijst",),
    ),
    Category(
        key="overstapadvies",
        rule="OS.cat08",
        label_nl="Overstapadvies",
        label_en="Transfer advice",
        paths=(f"{_LEERLING}/overstapadvies",),
    ),
    Category(
        key="onderwijsondersteuning",
        rule="OS.cat09",
        label_nl="Onderwijsondersteuning",
        label_en="Educational support",
        paths=(
            f"{_OO}/toelichting_onderwijsbehoeften",
            f"{_OO}/diagnose",
            f"{_OO}/medicijngebruik",
            f"{_OO}/opp",
            f"{_OO}/tlv",
            f"{_OO}/arrangement_cluster12",
            f"{_OO}/arrangement_pao",
            f"{_OO}/lwoo",
            f"{_OO}/rvc",
        ),
    ),
    Category(
        key="verzuim",
        rule="OS.cat10",
        label_nl="Verzuim",
        label_en="Absence",
        paths=(f"{_LEERLING}/verzuim",),
    ),
    Category(
        key="eindtoetsbo",
        rule="OS.cat11",
        label_nl="Eindtoets basisonderwijs",
        label_en="Primary school final test",
        paths=(f"{_LEERLING}/eindtoets_basisonderwijs",),
    ),
    Category(
        key="toetsresultaten",
        rule="OS.cat12",
        label_nl="Toetsresultaten",
        label_en="Test results",
        paths=(f"{_LEERLING}/toetslijst",),
    ),
    Category(
        key="handelingsplannen",
        rule="OS.cat13",
        label_nl="Handelingsplannen",
        label_en="Action plans",
        paths=(f"{_OO}/handelingsplan",),
    ),
    Category(
        key="cijferlijsten",
        rule="OS.cat14",
        label_nl="Cijferlijsten",
        label_en="Grade lists",
        paths=(f"{_LEERLING}/cijferlijstlijst",),
    ),
    Category(
        key="vombo",
        rule="OS.cat15",
        label_nl="VO-MBO",
        label_en="Secondary to vocational",
        paths=(
            f"{_LEERLING}/bevorderd",
            f"{_LEERLING}/examenresultaat",
            f"{_LEERLING}/resultaatvakkenvo",
            f"{_LEERLING}/certificaat",
            f"{_LEERLING}/competenties",
            f"{_LEERLING}/stage",
            f"{_LEERLING}/overigvombo",
        ),
    ),
    Category(
        key="bijlagedocs",
        rule="OS.cat16",
        label_nl="Bijlagedocumenten",
        label_en="Attached documents",
        paths=(f"{_LEERLING}/overigdocumentlijst",),
    ),
)

BY_KEY: dict[str, Category] = {c.key: c for c in CATEGORIES}


def q(local: str) -> str:
    """Clark notation of a dossier element name."""
    return f"{{{NS}}}{local}"


def find_path(root: etree._Element, path: str) -> list[etree._Element]:
    """All elements at a relative path (local names, '/'-separated) below the dossier root."""
    current = [root]
    for step in path.split("/"):
        tag = q(step)
        current = [child for el in current for child in el.iterchildren(tag)]
        if not current:
            break
    return current


def category_elements(root: etree._Element, category: Category) -> Iterator[etree._Element]:
    """The elements in the dossier that belong to ``category`` (top of each subtree)."""
    for path in category.paths:
        yield from find_path(root, path)


def is_present(root: etree._Element, category: Category) -> bool:
    return next(category_elements(root, category), None) is not None


def declared_status(root: etree._Element, category: Category) -> Uitlevering | str | None:
    """The category's value in categorie_uitlevering: an ``Uitlevering``, the raw text when it is
    not in codelist 48, or None when the block or the element is absent."""
    found = find_path(root, f"metadata/categorie_uitlevering/{category.element}")
    if not found:
        return None
    text = (found[0].text or "").strip()
    try:
        return Uitlevering(text)
    except ValueError:
        return text


def declared_statuses(root: etree._Element) -> dict[str, Uitlevering | str | None]:
    """Status of every category, keyed by ``Category.key``."""
    return {c.key: declared_status(root, c) for c in CATEGORIES}


def present_keys(root: etree._Element) -> tuple[str, ...]:
    """The keys of the categories whose elements the dossier holds, in the standard's order."""
    return tuple(c.key for c in CATEGORIES if is_present(root, c))
