"""What validation reports: findings with a stable code, a path and a message — never pupil data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One problem found in a dossier.

    ``code`` is stable (the standard's own rule code where one exists). ``path`` is an element
    path such as ``/dossier/leerling/bsn`` (positions as ``[2]`` when needed). Messages describe
    the rule, never the offending value, so a finding can be logged and sent to a peer.
    """

    code: str
    severity: Severity
    path: str
    message_nl: str
    message_en: str
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "message_nl": self.message_nl,
            "message_en": self.message_en,
        }
