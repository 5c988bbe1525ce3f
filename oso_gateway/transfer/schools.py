"""Schools and how a message finds one: the school code, the schools a gateway serves, the
directory interface the services use, and the school named in ``wsa:To`` and in the dossier.

Shared by the sending and the receiving side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography import x509
from lxml import etree

from oso_gateway.errors import DossierSchemaError, RecipientUnknown
from oso_gateway.protocol import (
    BRIN_PATTERN,
    DOSSIER_NS,
    SCHOOL_BRIN_PATTERN,
    VESTIGING_PATTERN,
)

#: BRIN (two digits, two letters) + vestiging (two digits): a school named anew
_SCHOOL_CODE = re.compile(SCHOOL_BRIN_PATTERN + VESTIGING_PATTERN)
#: any school code stored or sent before (two digits, two digits or capitals)
_ANY_SCHOOL = re.compile(BRIN_PATTERN + VESTIGING_PATTERN)


@dataclass(frozen=True, order=True)
class School:
    """A school: BRIN (two digits, two letters) + vestiging (2 digits)."""

    brin: str
    vestiging: str

    @property
    def code(self) -> str:
        return self.brin + self.vestiging

    @classmethod
    def parse(cls, text: str) -> School:
        """``01AB00`` or ``01AB`` (vestiging 00); ``ValueError`` when malformed. Reads any
        school code stored or sent before (``BRIN_PATTERN``); a school being named anew (an
        option, an API field, the directory) is checked with ``parse_new``."""
        text = text.strip().upper()
        if len(text) == 4:
            text += "00"
        if not (_ANY_SCHOOL.fullmatch(text) and text.isascii()):
            raise ValueError("a school is BRIN (4 characters) + vestiging (2 digits), e.g. 01AB00")
        return cls(text[:4], text[4:])

    @classmethod
    def parse_new(cls, text: str) -> School:
        """``parse``, and a BRIN of two digits and two capitals, as the dossier's ``brincode``
        must be (the gegevensset's pattern ``[0-9][0-9][A-Z][A-Z]``): a school named with
        another form could never send a dossier (every one refused, E102: a vendor's
        onboarding took a school "1000" everywhere)."""
        school = cls.parse(text)
        if not _SCHOOL_CODE.fullmatch(school.code):
            raise ValueError(
                "a school is a BRIN (two digits and two letters) and a vestiging (two digits), "
                "e.g. 01AB00"
            )
        return school

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True, kw_only=True)
class ServedSchool:
    """A school this gateway receives for: its endpoint URL (wsa:To) and our OIN for it."""

    school: School
    endpoint: str
    oin: str


class DirectoryEntryLike(Protocol):
    @property
    def endpoint(self) -> str: ...
    @property
    def oin(self) -> str: ...
    @property
    def encryption_certificate(self) -> x509.Certificate: ...
    @property
    def key_transport(self) -> str: ...


class DirectoryLike(Protocol):
    def lookup(self, brin: str, vestiging: str) -> DirectoryEntryLike: ...
    def check_mandate(self, oin: str, brin: str, vestiging: str) -> None: ...


def address_for(endpoint: str, school: School) -> str:
    """The ``wsa:To`` of a message for ``school`` at its gateway's ``endpoint``.

    A gateway may serve several schools at one endpoint (a vendor), and the dossier does not name
    the receiving school, so the sender names it in the signed ``wsa:To``: ``?school=BRINVV``.
    """
    parts = urlsplit(endpoint)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("school", school.code)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def split_address(to: str) -> tuple[str, str | None]:
    """``wsa:To`` → (endpoint, school code or None): the inverse of ``address_for``.

    An address ``urlsplit`` cannot parse (``https://[x``) names no school we serve (E453).
    """
    try:
        parts = urlsplit(to)
    except ValueError:
        raise RecipientUnknown(f"wsa:To {to[:200]!r} is not a URL") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    schools = [v for k, v in query if k == "school"]
    rest = [(k, v) for k, v in query if k != "school"]
    endpoint = urlunsplit(parts._replace(query=urlencode(rest)))
    if len(schools) > 1:
        raise RecipientUnknown(f"wsa:To {to[:200]!r} names several schools")
    return endpoint, schools[0].upper() if schools else None


def sending_school(payload: etree._Element) -> School:
    """The sending school the dossier names: ``huidigeschool/brincode`` + ``vestigingscode``."""
    brin = payload.findtext(f"{{{DOSSIER_NS}}}huidigeschool/{{{DOSSIER_NS}}}brincode")
    vestiging = payload.findtext(f"{{{DOSSIER_NS}}}huidigeschool/{{{DOSSIER_NS}}}vestigingscode")
    if payload.tag != f"{{{DOSSIER_NS}}}dossier" or not brin or vestiging is None:
        raise DossierSchemaError("the dossier names no sending school (huidigeschool/brincode)")
    try:
        return School.parse(brin.strip() + (vestiging.strip() or "00"))
    except ValueError:
        raise DossierSchemaError("huidigeschool brincode/vestigingscode is malformed") from None
