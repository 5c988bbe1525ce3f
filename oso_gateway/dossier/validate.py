"""Validate an OSO dossier: hardened parse, then the XSD, then the business rules.

``validate_dossier`` never raises for a bad document: every problem becomes a ``Finding`` in the
returned ``ValidationReport``. Callers that want an exception call ``report.raise_for_errors()``,
which raises a ``DossierError`` subclass whose detail lists finding codes and paths only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from oso_gateway.dossier.findings import Finding, Severity
from oso_gateway.dossier.schema import validate_schema
from oso_gateway.errors import (
    DossierError,
    DossierParseError,
    DossierRuleError,
    DossierSchemaError,
    XmlParseError,
)
from oso_gateway.protocol import DOSSIER_NS
from oso_gateway.security.namespaces import local_name
from oso_gateway.security.xmlparse import (
    DEFAULT_LIMITS,
    PARSE_ERROR_CODES,
    ParseLimits,
    parse_xml,
)

#: Finding code when a schema-valid document is not a dossier (e.g. a bare <leerling>).
CODE_NOT_A_DOSSIER = "OSO-DOSSIER-ROOT"
#: The parse finding carries the parser's own code (OSO-E201 / E202 / E203 and each limit's).
PARSE_CODES = PARSE_ERROR_CODES

_POSITION = re.compile(r"line (\d+), column (\d+)")


@dataclass(frozen=True)
class ValidationReport:
    """What validation found. ``tree`` is the parsed document, or None if it did not parse."""

    findings: tuple[Finding, ...]
    tree: etree._ElementTree | None

    @property
    def valid(self) -> bool:
        """True when no finding is an error (warnings do not make a dossier invalid)."""
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def raise_for_errors(self) -> None:
        """Raise the DossierError that matches the first kind of error found (no data in it)."""
        errors = self.errors
        if not errors:
            return
        detail = "; ".join(f"{f.code} at {f.path}" for f in errors[:20])
        if len(errors) > 20:
            detail += f"; and {len(errors) - 20} more"
        error_class: type[DossierError]
        if any(f.code in PARSE_CODES for f in errors):
            error_class = DossierParseError
        elif any(f.code.startswith("OSO-XSD") or f.code == CODE_NOT_A_DOSSIER for f in errors):
            error_class = DossierSchemaError
        else:
            error_class = DossierRuleError
        raise error_class(detail)

    def as_dict(self) -> dict[str, object]:
        return {"valid": self.valid, "findings": [f.as_dict() for f in self.findings]}


def validate_dossier(
    data: bytes,
    *,
    now: datetime,
    schema_only: bool = False,
    limits: ParseLimits = DEFAULT_LIMITS,
    excluded_data: bool = True,
) -> ValidationReport:
    """Parse ``data`` with the hardened parser, check the XSD and (unless ``schema_only``) the
    business rules at time ``now``. Rules run only on a schema-valid ``dossier``.

    ``excluded_data=False`` is for a sender checking a school's export before minimisation:
    data of VERBODEN / OPT-UIT categories is then not reported (``rules.check_rules``).
    """
    try:
        tree = parse_xml(data, limits=limits)
    except XmlParseError as exc:
        return ValidationReport(findings=(_parse_finding(exc),), tree=None)
    return validate_tree(tree, now=now, schema_only=schema_only, excluded_data=excluded_data)


def validate_tree(
    tree: etree._ElementTree,
    *,
    now: datetime,
    schema_only: bool = False,
    excluded_data: bool = True,
) -> ValidationReport:
    """``validate_dossier`` for a document the hardened parser already parsed (e.g. the payload
    that ``open_message`` verified): schema, then the rules on a schema-valid ``dossier``."""
    findings = validate_schema(tree)
    if schema_only or findings:
        return ValidationReport(findings=tuple(findings), tree=tree)

    root = tree.getroot()
    if root.tag != f"{{{DOSSIER_NS}}}dossier":
        return ValidationReport(findings=(_not_a_dossier(root),), tree=tree)

    from oso_gateway.dossier.rules import check_rules  # lazy: the rules pull in the code lists

    rule_findings = check_rules(root, now=now, excluded_data=excluded_data)
    return ValidationReport(findings=tuple(rule_findings), tree=tree)


def _parse_finding(exc: XmlParseError) -> Finding:
    position = _POSITION.search(exc.detail)
    line, column = (int(position.group(1)), int(position.group(2))) if position else (None, None)
    return Finding(
        code=exc.code,
        severity=Severity.ERROR,
        path="/",
        message_nl=f"Het dossier is geen geldige of toegestane XML: {exc.detail}",
        message_en=f"The dossier is not acceptable XML: {exc.detail}",
        line=line,
        column=column,
    )


def _not_a_dossier(root: etree._Element) -> Finding:
    name = local_name(root.tag) if isinstance(root.tag, str) else ""
    return Finding(
        code=CODE_NOT_A_DOSSIER,
        severity=Severity.ERROR,
        path=f"/{name}",
        message_nl=f"Het hoofdelement is '{name}'; een overdracht vereist 'dossier'.",
        message_en=f"The root element is '{name}'; a transfer requires 'dossier'.",
        line=_sourceline(root),
    )


def _sourceline(element: etree._Element) -> int | None:
    line: object = element.sourceline
    return line if isinstance(line, int) else None
