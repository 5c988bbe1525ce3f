"""One run of the rules over one dossier: the context each check reads and reports into, and
the list of checks in registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from lxml import etree

from oso_gateway.dossier.categories import q
from oso_gateway.dossier.findings import Finding
from oso_gateway.dossier.rules.registry import (
    _RULES,
    CLOCK_SLACK,
    OVERSTAPDOSSIER,
    PROFILES,
)
from oso_gateway.dossier.rules.values import (
    _child,
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
        return self.root.iter(q(name))


_Check = Callable[[_Ctx], None]
_CHECKS: list[_Check] = []


def _check(fn: _Check) -> _Check:
    _CHECKS.append(fn)
    return fn
