"""One run of the rules over one dossier: the context each check reads and reports into, and
the list of checks in registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from lxml import etree

from oso_gateway.dossier.findings import Finding
from oso_gateway.dossier.rules.registry import (
    _RULES,
    CLOCK_SLACK,
    OVERSTAPDOSSIER,
    PROFILES,
)
from oso_gateway.dossier.rules.values import (
    _child,
    _tag,
    _text,
    element_path,
)


class _Ctx:
    def __init__(self, root: etree._Element, now: datetime) -> None:
        self.root = root
        self.today_limit = (now + CLOCK_SLACK).date()
        self.findings: list[Finding] = []
        self.overdrachtsoort = _text(_child(root, "overdrachtsoort"))
        self.metadata = _child(root, "metadata")
        self.overstap = _text(_child(self.metadata, "overstap"))
        self.school = _child(root, "huidigeschool")
        self.leerling = _child(self.school, "leerling")
        self.profile = PROFILES.get(self.overdrachtsoort)
        self.excluded_data = True
        self._index: dict[str, list[etree._Element]] | None = None

    @property
    def ova(self) -> bool:
        return self.overdrachtsoort == OVERSTAPDOSSIER

    def report(self, rid: str, el: etree._Element, suffix: str | None = None) -> None:
        r = _RULES[rid]
        self.findings.append(
            Finding(
                code=r.code,
                severity=r.severity,
                path=element_path(el, suffix),
                message_nl=r.nl,
                message_en=r.en,
                line=el.sourceline if isinstance(el.sourceline, int) else None,
            )
        )

    def iter(self, name: str) -> Iterator[etree._Element]:
        """The elements called ``name`` in document order (as ``root.iter``). The names the checks
        ask for are collected by one walk on first use, not one walk per name."""
        if self._index is None:
            self._index = _index(self.root)
        found = self._index.get(_tag(name))
        return iter(found) if found is not None else self.root.iter(_tag(name))


#: The element names the checks iterate over (``_Ctx.iter``); any other name still works, with a
#: walk of its own (tests/test_rules.py checks that the checks ask for none).
ITER_NAMES = (
    "bsn",
    "onderwijsnummer",
    "brincode",
    "teruggeplaatstnaarbrin",
    "arrangement_brin",
    "vestigingscode",
    "arrangement_vestigingscode",
    "leerling",
    "schoolloopbaan",
    "handelingsplan",
    "opp",
    "tlv",
    "lwoo",
    "arrangement_pao",
    "vroegschools",
    "stage",
    "document",
    "communicatie",
    "resultaat",
    "toetsscore",
    "score",
    "lwoo_einddatum",
    "verzorger",
    "huisarts",
)
_ITER_TAGS = tuple(_tag(name) for name in ITER_NAMES)


def _index(root: etree._Element) -> dict[str, list[etree._Element]]:
    """The elements of ``ITER_NAMES`` by tag, each list in document order (one walk in libxml2)."""
    index: dict[str, list[etree._Element]] = {tag: [] for tag in _ITER_TAGS}
    for el in root.iter(*_ITER_TAGS):
        index[el.tag].append(el)
    return index


_Check = Callable[[_Ctx], None]
_CHECKS: list[_Check] = []


def _check(fn: _Check) -> _Check:
    _CHECKS.append(fn)
    return fn
