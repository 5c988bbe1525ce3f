"""The request and answer payloads (pure: build, validate against their XSD, read).

``schemas/oso_gateway_request.xsd`` and ``schemas/oso_gateway_answer.xsd`` define them; both
travel only sealed (the pupil's identifier, birth date and name are inside the encrypted Body).
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lxml import etree

from oso_gateway import protocol
from oso_gateway.dossier.rules import bsn_is_valid, onderwijsnummer_is_valid
from oso_gateway.dossier.schema import compiled_schema
from oso_gateway.errors import (
    DeclineReasonInvalid,
    PupilIdentifierInvalid,
    RequestPayloadInvalid,
)
from oso_gateway.protocol import is_clean_text
from oso_gateway.transfer.schools import School

REQUEST_NS = "urn:oso-gateway:request:1"
ANSWER_NS = "urn:oso-gateway:answer:1"
REQUEST_SCHEMA = "oso_gateway_request.xsd"
ANSWER_SCHEMA = "oso_gateway_answer.xsd"

#: wsa:Action of the two kinds (defined with the protocol's other constants)
ACTION_REQUEST = protocol.ACTION_REQUEST
ACTION_ANSWER = protocol.ACTION_ANSWER

ACCEPTED = "accepted"
DECLINED = "declined"
WITHDRAWN = "withdrawn"

#: Why an old school declines a request (the answer's Reason).
DECLINE_REASONS = {
    "unknown-pupil": "the pupil is not known at the old school",
    "identity-mismatch": "a pupil is known, but the identifier and birth date do not match",
    "not-our-pupil": "the pupil is not (or no longer) enrolled at the old school",
    "parents-objected": "the parents objected to the transfer",
    "duplicate-request": "the same pupil was already requested",
    "other": "another reason, given as text",
}

_R = f"{{{REQUEST_NS}}}"
_A = f"{{{ANSWER_NS}}}"


@dataclass(frozen=True, kw_only=True)
class Pupil:
    """Who is asked for (personal data: travels encrypted, stored encrypted, never logged)."""

    bsn: str | None = None
    onderwijsnummer: str | None = None
    birth_date: date
    family_name: str
    given_names: str | None = None

    @property
    def identifier(self) -> str:
        return self.bsn or self.onderwijsnummer or ""

    def check(self) -> None:
        """Exactly one identifier passing its 11-proef (E483)."""
        if (self.bsn is None) == (self.onderwijsnummer is None):
            raise PupilIdentifierInvalid("give exactly one of BSN and onderwijsnummer")
        if self.bsn is not None and not bsn_is_valid(self.bsn):
            raise PupilIdentifierInvalid("the BSN fails the 11-proef")
        if self.onderwijsnummer is not None and not onderwijsnummer_is_valid(self.onderwijsnummer):
            raise PupilIdentifierInvalid("the onderwijsnummer fails its 11-proef")
        if not self.family_name.strip():
            raise PupilIdentifierInvalid("the family name is empty")
        for what, name in (("family name", self.family_name), ("given names", self.given_names)):
            if name is not None and not is_clean_text(name, one_line=True):
                raise PupilIdentifierInvalid(
                    f"the {what} holds control or bidirectional-override characters"
                )

    def as_dict(self) -> dict[str, Any]:
        return {
            "bsn": self.bsn,
            "onderwijsnummer": self.onderwijsnummer,
            "birth_date": self.birth_date.isoformat(),
            "family_name": self.family_name,
            "given_names": self.given_names,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pupil:
        return cls(
            bsn=data.get("bsn"),
            onderwijsnummer=data.get("onderwijsnummer"),
            birth_date=date.fromisoformat(data["birth_date"]),
            family_name=data["family_name"],
            given_names=data.get("given_names"),
        )


@dataclass(frozen=True, kw_only=True)
class DossierRequest:
    request_id: str
    requested_at: datetime
    requested_date: date
    requesting_school: School
    old_school: School
    pupil: Pupil


@dataclass(frozen=True, kw_only=True)
class RequestAnswer:
    request_id: str
    answered_at: datetime
    sender: School
    recipient: School
    outcome: str  #: accepted / declined / withdrawn
    ready_by: date | None = None
    reason: str | None = None
    text: str | None = None

    def check(self) -> None:
        """A decline names a known reason; ``other`` needs a text (E484)."""
        if self.outcome == DECLINED:
            if self.reason not in DECLINE_REASONS:
                raise DeclineReasonInvalid("unknown decline reason")
            if self.reason == "other" and not (self.text or "").strip():
                raise DeclineReasonInvalid("reason 'other' needs a text")
            if self.text is not None and not is_clean_text(self.text):
                raise DeclineReasonInvalid("the text holds control or bidi-override characters")
        if self.outcome == ACCEPTED and self.ready_by is None:
            raise RequestPayloadInvalid("an acceptance needs a ready-by date")


def _xs_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _school(parent: etree._Element, tag: str, school: School) -> None:
    etree.SubElement(parent, tag, brin=school.brin, vestiging=school.vestiging)


def build_request(request: DossierRequest) -> etree._Element:
    request.pupil.check()
    root = etree.Element(_R + "DossierRequest", nsmap={None: REQUEST_NS})  # type: ignore[dict-item]
    etree.SubElement(root, _R + "RequestID").text = request.request_id
    etree.SubElement(root, _R + "RequestedAt").text = _xs_datetime(request.requested_at)
    etree.SubElement(root, _R + "RequestedDate").text = request.requested_date.isoformat()
    _school(root, _R + "RequestingSchool", request.requesting_school)
    _school(root, _R + "OldSchool", request.old_school)
    pupil = etree.SubElement(root, _R + "Pupil")
    if request.pupil.bsn is not None:
        etree.SubElement(pupil, _R + "BSN").text = request.pupil.bsn
    else:
        etree.SubElement(pupil, _R + "Onderwijsnummer").text = request.pupil.onderwijsnummer
    etree.SubElement(pupil, _R + "BirthDate").text = request.pupil.birth_date.isoformat()
    etree.SubElement(pupil, _R + "FamilyName").text = request.pupil.family_name
    if request.pupil.given_names:
        etree.SubElement(pupil, _R + "GivenNames").text = request.pupil.given_names
    etree.SubElement(root, _R + "Salt").text = _salt()
    _validate(root, REQUEST_SCHEMA, _R + "DossierRequest")
    return root


def _salt() -> str:
    """Random: the payload's SHA-256 (in the transfer log, the receipt, the message record) is
    then no hash of the pupil's facts alone, which a guess of BSN, birth date and name matched
    (a privacy walkthrough recovered a BSN from a log export so, in seconds)."""
    return secrets.token_hex(16)


def parse_request(element: etree._Element) -> DossierRequest:
    """Read a verified request payload; E475 when it is not one, E483 for a bad identifier."""
    _validate(element, REQUEST_SCHEMA, _R + "DossierRequest")

    pupil_el = element.find(_R + "Pupil")
    assert pupil_el is not None  # guaranteed by the schema
    try:
        pupil = Pupil(
            bsn=pupil_el.findtext(_R + "BSN"),
            onderwijsnummer=pupil_el.findtext(_R + "Onderwijsnummer"),
            birth_date=date.fromisoformat(pupil_el.findtext(_R + "BirthDate") or ""),
            family_name=pupil_el.findtext(_R + "FamilyName") or "",
            given_names=pupil_el.findtext(_R + "GivenNames"),
        )
        request = DossierRequest(
            request_id=element.findtext(_R + "RequestID") or "",
            requested_at=_read_datetime(element.findtext(_R + "RequestedAt") or ""),
            requested_date=date.fromisoformat(element.findtext(_R + "RequestedDate") or ""),
            requesting_school=_read_school(element.find(_R + "RequestingSchool")),
            old_school=_read_school(element.find(_R + "OldSchool")),
            pupil=pupil,
        )
    except ValueError:
        raise RequestPayloadInvalid("a date in the request is not usable") from None
    pupil.check()
    return request


def build_answer(answer: RequestAnswer) -> etree._Element:
    answer.check()
    root = etree.Element(_A + "RequestAnswer", nsmap={None: ANSWER_NS})  # type: ignore[dict-item]
    etree.SubElement(root, _A + "RequestID").text = answer.request_id
    etree.SubElement(root, _A + "AnsweredAt").text = _xs_datetime(answer.answered_at)
    _school(root, _A + "From", answer.sender)
    _school(root, _A + "To", answer.recipient)
    if answer.outcome == ACCEPTED:
        assert answer.ready_by is not None
        accepted = etree.SubElement(root, _A + "Accepted")
        etree.SubElement(accepted, _A + "ReadyBy").text = answer.ready_by.isoformat()
    elif answer.outcome == DECLINED:
        declined = etree.SubElement(root, _A + "Declined")
        etree.SubElement(declined, _A + "Reason").text = answer.reason
        if answer.text:
            etree.SubElement(declined, _A + "Text").text = answer.text
    elif answer.outcome == WITHDRAWN:
        etree.SubElement(root, _A + "Withdrawn")
    else:
        raise RequestPayloadInvalid(f"unknown outcome {answer.outcome[:20]!r}")
    etree.SubElement(root, _A + "Salt").text = _salt()
    _validate(root, ANSWER_SCHEMA, _A + "RequestAnswer")
    return root


def parse_answer(element: etree._Element) -> RequestAnswer:
    _validate(element, ANSWER_SCHEMA, _A + "RequestAnswer")
    try:
        common: dict[str, Any] = dict(
            request_id=element.findtext(_A + "RequestID") or "",
            answered_at=_read_datetime(element.findtext(_A + "AnsweredAt") or ""),
            sender=_read_school(element.find(_A + "From")),
            recipient=_read_school(element.find(_A + "To")),
        )
        if element.find(_A + "Accepted") is not None:
            ready = element.findtext(f"{_A}Accepted/{_A}ReadyBy") or ""
            answer = RequestAnswer(outcome=ACCEPTED, ready_by=date.fromisoformat(ready), **common)
        elif element.find(_A + "Declined") is not None:
            answer = RequestAnswer(
                outcome=DECLINED,
                reason=element.findtext(f"{_A}Declined/{_A}Reason"),
                text=element.findtext(f"{_A}Declined/{_A}Text"),
                **common,
            )
        else:
            answer = RequestAnswer(outcome=WITHDRAWN, **common)
    except ValueError:
        raise RequestPayloadInvalid("a date in the answer is not usable") from None
    answer.check()
    return answer


def _read_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value


def _read_school(element: etree._Element | None) -> School:
    assert element is not None  # guaranteed by the schema
    return School(element.get("brin", ""), element.get("vestiging", ""))


def _validate(element: etree._Element, schema_name: str, root_tag: str) -> None:
    schema = compiled_schema(schema_name)
    if element.getparent() is not None:  # validate a document whose root it is
        element = copy.deepcopy(element)
    if element.tag != root_tag or not schema.validate(etree.ElementTree(element)):
        entries: list[Any] = list(schema.error_log)  # type: ignore[call-overload]
        errors = [f"line {e.line}: {e.type_name}" for e in entries][:5]
        raise RequestPayloadInvalid(f"payload does not match {schema_name}: " + "; ".join(errors))
