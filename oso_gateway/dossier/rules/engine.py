"""``check_rules``: every check, in registration order, over one schema-valid dossier."""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from oso_gateway.dossier.categories import q
from oso_gateway.dossier.findings import Finding
from oso_gateway.dossier.rules import check_gateway, check_profiles, check_standard
from oso_gateway.dossier.rules.context import _CHECKS, _Ctx

#: The checks (each registered by ``@_check``) in a fixed order, whatever order the modules were
#: imported in: standard, profiles, gateway; within a module, in definition order.
_MODULES = (check_standard.__name__, check_profiles.__name__, check_gateway.__name__)
CHECKS = tuple(sorted(_CHECKS, key=lambda fn: _MODULES.index(fn.__module__)))


def check_rules(
    root: etree._Element, *, now: datetime, excluded_data: bool = True
) -> list[Finding]:
    """All business-rule findings for a schema-valid dossier root (errors and warnings).

    ``excluded_data=False`` leaves out the findings for data of VERBODEN / OPT-UIT categories:
    for a sender that validates a school's export before ``minimise`` removes that data.
    """
    if root.tag != q("dossier"):
        raise ValueError("check_rules expects the OSO 2019 dossier root element")
    ctx = _Ctx(root, now)
    ctx.excluded_data = excluded_data
    for fn in CHECKS:
        fn(ctx)
    return ctx.findings
