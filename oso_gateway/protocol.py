"""Facts of the standards the gateway speaks, each written once.

Plain values (no I/O, no imports from the rest of the package), so every layer may use them:
the settings reader, the pure cores (``dossier/``, ``security/``), the services and the web layer.
"""

from __future__ import annotations

import re
from typing import Final

#: An OIN (Organisatie-identificatienummer): exactly 20 ASCII digits.
OIN_PATTERN: Final = r"[0-9]{20}"
_OIN_RE: Final = re.compile(OIN_PATTERN)


def is_oin(value: str) -> bool:
    """True for a well-formed OIN (20 ASCII digits)."""
    return _OIN_RE.fullmatch(value) is not None


#: A UUID in its canonical lower-case form, and a MessageID: that UUID as a ``urn:uuid:`` URN.
UUID_PATTERN: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MESSAGE_ID_PATTERN: Final = "urn:uuid:" + UUID_PATTERN
_SHOWN_ID: Final = re.compile(f"(urn:uuid:)?{UUID_PATTERN}", re.IGNORECASE)


_KNOWN_MEDIA_TYPES: Final = frozenset(
    {"text/xml", "application/xml", "application/json", "application/soap+xml", "text/plain",
     "application/octet-stream", "multipart/form-data", "application/x-www-form-urlencoded"}
)  # fmt: skip


def shown_media_type(mimetype: str) -> str:
    """A caller's Content-Type for an error or a log line: a common one by name, any other
    as "another type" (the header is the caller's text: a review found a name in one)."""
    return mimetype if mimetype in _KNOWN_MEDIA_TYPES else "(another media type)"


def shown_id(text: str) -> str:
    """``text`` for an error or a log line when it has the form of a message id (with or
    without ``urn:uuid:``), else a placeholder: what a caller put where an id goes may be
    anything, a pupil's name and BSN included (a privacy walkthrough found one in the log)."""
    return text if _SHOWN_ID.fullmatch(text) else "(not a message id)"


#: The namespace of an OSO gegevensset 2019 dossier (root element ``dossier``).
DOSSIER_NS: Final = "http://www.edustandaard.nl/oso_gegevensset/2019/dossier"
#: The versions of the OSO gegevensset this gateway implements (``metadata/standaardversie`` and
#: ``metadata/validatieversie`` of a dossier).
STANDAARDVERSIE: Final = "2019.1"
VALIDATIEVERSIE: Final = "2019.1.1"

#: A school: BRIN (2 digits, 2 digits or capitals) and vestiging (2 digits); a school code is
#: both together (``01AB00``), a search may name the BRIN alone.
BRIN_PATTERN: Final = r"[0-9]{2}[0-9A-Z]{2}"
VESTIGING_PATTERN: Final = r"[0-9]{2}"
SCHOOL_PATTERN: Final = f"{BRIN_PATTERN}({VESTIGING_PATTERN})?"
#: The BRIN a school must have to be served or listed: two digits and two capitals, the
#: gegevensset's ``brincode`` (a school with another form could never send a dossier). The
#: looser ``BRIN_PATTERN`` still reads what was logged and searched for before.
SCHOOL_BRIN_PATTERN: Final = r"[0-9]{2}[A-Z]{2}"

#: wsa:Action of the pull workflow's request and answer (``transfer.pull.payloads``)
ACTION_REQUEST: Final = "urn:oso-gateway:action:dossier:request:1"
ACTION_ANSWER: Final = "urn:oso-gateway:action:dossier:answer:1"
#: their size in the transfer log, rounded up to this: a request's exact size gave away the
#: length of the pupil's name, an answer's that of a decline's text (a security review)
PULL_SIZE_STEP: Final = 1024

#: The path of the SOAP endpoint on a gateway (mutual TLS), and the media type of its messages.
SOAP_PATH: Final = "/oso/v1/messages"
SOAP_CONTENT_TYPE: Final = "text/xml; charset=utf-8"

#: Characters a person's free text (a decline reason, the parents' view) may not hold: C0
#: controls but tab and line breaks, DEL and C1 controls, and the bidirectional overrides and
#: isolates (text that displays other than it reads). A name (one line) may not hold tab or line
#: breaks either. The school API's models and the services check the same classes.
FREE_TEXT_FORBIDDEN: Final = (
    "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069"
)
NAME_FORBIDDEN: Final = "\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069"
_FREE_TEXT_BAD: Final = re.compile(f"[{FREE_TEXT_FORBIDDEN}]")
_NAME_BAD: Final = re.compile(f"[{NAME_FORBIDDEN}]")


def is_clean_text(value: str, *, one_line: bool = False) -> bool:
    """True when ``value`` holds none of the forbidden characters (of a name: ``one_line``)."""
    return (_NAME_BAD if one_line else _FREE_TEXT_BAD).search(value) is None
