"""``/api/v1/requests``: the pull workflow for a school's system (LAS).

New school: ask for a dossier (``POST /requests``), follow it, withdraw it. Old school: its inbox
of received requests with their deadlines, accept with a ready-by date, decline with a reason,
answer with the dossier (XML; the pupil is checked against the request, E470), record the
parents' inzage (or its waiver), and see the preview the parents are shown. Every request is
scoped to the credential's schools (another school's request is 404, OSO-E473). List items carry
no pupil data; one request (``GET /requests/{id}``) shows the pupil it asks for to that school.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models import Tag  # type: ignore[attr-defined]
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from oso_gateway.errors import RequestNotFound, SchoolNotInScope
from oso_gateway.transfer.mailbox import DEFAULT_PAGE, MAX_PAGE
from oso_gateway.transfer.pull.payloads import DECLINE_REASONS, Pupil
from oso_gateway.transfer.pull.service import STATUSES
from oso_gateway.transfer.pull.views import inzage_dict, request_dict
from oso_gateway.transfer.schools import School
from oso_gateway.web.api import models as am
from oso_gateway.web.api.context import API_PREFIX, scope, services, xml_body

TAG = Tag(name="requests", description="Dossier requests (pull workflow): both schools")
bp = APIBlueprint("requests", __name__, url_prefix=API_PREFIX + "/requests", abp_tags=[TAG])

Reason = Literal[
    "unknown-pupil",
    "identity-mismatch",
    "not-our-pupil",
    "parents-objected",
    "duplicate-request",
    "other",
]
assert set(Reason.__args__) == set(DECLINE_REASONS)  # type: ignore[attr-defined]


class RequestPath(BaseModel):
    request_id: str = Field(pattern=am.MESSAGE_ID, description="The request's id (urn:uuid)")


class RequestSideQuery(BaseModel):
    side: Literal["sent", "received"] | None = Field(
        default=None,
        description="Which side's request (both, when this gateway hosts the requesting and "
        "the holding school and the credential acts for both; default: sent)",
    )


#: the API's side names and the store's
_SIDES = {"sent": "requester", "received": "holder"}


RequestStatus = Literal[
    "sent", "received", "accepted", "delivered", "declined", "withdrawn", "expired"
]


assert set(RequestStatus.__args__) == set(STATUSES)  # type: ignore[attr-defined]


class RequestListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is refused, not ignored

    side: Literal["sent", "received"] | None = Field(default=None, description="Sent or received")
    status: RequestStatus | None = Field(default=None, description="Only this status")
    cursor: str | None = Field(
        default=None, pattern=r"^[0-9]{1,18}$", description="A page's next_cursor"
    )
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class PupilBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not dropped

    bsn: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    onderwijsnummer: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    birth_date: dt.date
    family_name: str = Field(min_length=1, max_length=200, pattern=am.NAME)
    given_names: str | None = Field(default=None, min_length=1, max_length=200, pattern=am.NAME)


class SendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requesting_school: str = Field(pattern=am.SCHOOL, description="Our school (the new school)")
    old_school: str = Field(pattern=am.SCHOOL, description="The school that holds the dossier")
    requested_date: dt.date | None = None
    pupil: PupilBody


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ready_by: dt.date = Field(description="The date by which the dossier will be ready")


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    text: str | None = Field(default=None, min_length=1, max_length=1000, pattern=am.TEXT)


class InzageBody(BaseModel):
    # a misspelt field is refused, not dropped: a misspelt `previewed` recorded an inzage bound
    # to no version, silently
    model_config = ConfigDict(extra="forbid")

    date: dt.date | None = Field(default=None, description="When the parents saw the dossier")
    how: Literal["meeting", "paper", "digital", "other"] | None = None
    zienswijze: str | None = Field(
        default=None,
        max_length=20000,
        pattern=am.TEXT,
        description="The parents' view (stored encrypted)",
    )
    waiver: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        pattern=am.TEXT,
        description="No inzage: the reason",
    )
    previewed: str | None = Field(
        default=None,
        pattern=r"^\s*[0-9a-fA-F]{16}\s*$",
        description="The version of the dossier the parents were shown (a request's preview's "
        "or a push's dry-run's `version`, any case, spaces around). A request: when what would "
        "leave is another version now (another dossier posted, an objection recorded or "
        "withdrawn), nothing is recorded nor released (OSO-E474). A push: only that version "
        "passes the gate (another: OSO-E471). Recommended: without it, the inzage is of "
        "whatever is held or pushed.",
    )

    @field_validator("previewed")
    @classmethod
    def _as_typed(cls, value: str | None) -> str | None:
        """Spaces around, as the service's ``typed_version`` and the command line take it (a
        copied version with a space was refused here alone: an integrator's walkthrough)."""
        return None if value is None else value.strip()

    @model_validator(mode="after")
    def _one_or_the_other(self) -> InzageBody:
        """An inzage (its date, how, the parents' view, the version previewed) or its waiver,
        not both: with both it was refused for the waiver alone ("policy does not allow a
        waiver")."""
        if self.waiver is not None and (
            self.date is not None
            or self.how is not None
            or self.zienswijze is not None
            or self.previewed is not None
        ):
            raise ValueError(
                "give the inzage (date, how, zienswijze, previewed) or a waiver, not both"
            )
        return self


def inzage_refused(body: InzageBody, now: dt.datetime) -> Response | None:
    """400 OSO-E606 naming the field when an inzage (not a waiver) lacks its date or how, or is
    dated in the future (a day's grace for time zones, as the service gives); None otherwise.
    On the API this is the caller's input: it was 409 E471 "inzage not recorded", the policy's
    refusal (an integrator's walkthrough). The command line keeps E471."""
    from oso_gateway.errors import RequestInvalid
    from oso_gateway.transfer.pull.service import INZAGE_HOW
    from oso_gateway.web.api.problems import problem

    if body.waiver is not None:
        return None
    errors = []
    if body.date is None:
        errors.append(("missing", "date", "an inzage needs its date (or give a waiver)"))
    elif body.date > (now + dt.timedelta(days=1)).date():
        errors.append(("date_future", "date", f"the inzage date {body.date} lies in the future"))
    if body.how is None:
        ways = ", ".join(INZAGE_HOW)
        errors.append(("missing", "how", f"an inzage needs how the parents saw it: {ways}"))
    if not errors:
        return None
    return problem(
        RequestInvalid,
        errors=[{"code": c, "location": where, "message": m} for c, where, m in errors],
        detail="; ".join(f"{where}: {m}" for _, where, m in errors),
    )


class DossierRequest(BaseModel):
    """A request's state (no pupil data)."""

    request_id: str
    side: Literal["sent", "received"]
    our_school: str
    counterpart_school: str
    counterpart_oin: str
    status: str
    requested_date: str
    deadline: str | None
    overdue: bool
    ready_by: str | None
    decline_reason: str | None
    delivery_message_id: str | None
    dossier_held_for_inzage: bool
    name_warning: bool
    last_error_code: str | None
    created_at: str | None
    updated_at: str | None


class RequestEventItem(BaseModel):
    at: str
    status: str
    code: str | None = Field(description="A decline reason, an error code, or 'purged'")


class DossierRequestDetail(DossierRequest):
    """One request with its history and the pupil it asks for (personal data); once its
    content was erased (retention purge, erasure on request), its tombstone: no pupil."""

    pupil: dict[str, Any] | None = Field(
        description="The pupil asked for (personal data); null once the content was erased"
    )
    purged: bool = Field(description="The content (pupil, decline text, views) was erased")
    decline_text: str | None = Field(
        default=None,
        description="A decline for reason 'other': the old school's text (may name the pupil); "
        "null otherwise or once erased",
    )
    events: list[RequestEventItem]
    inzage: dict[str, Any] | None = Field(
        default=None,
        description="Received requests: the parents' inzage recorded (date, how, zienswijze "
        "given, waived, recorded_at, previewed: the version they were shown); null otherwise",
    )


class RequestPage(BaseModel):
    items: list[DossierRequest]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class DossierAnswer(DossierRequest):
    dossier: Literal["queued", "held"] | None = None


def _pull() -> Any:
    return services().pull


def _now() -> Any:
    return services().clock()


def _schools() -> tuple[str, ...]:
    """The credential's schools: every look-up and action stays within them."""
    schools = scope().schools
    assert schools is not None  # an API client always has its schools
    return schools


def _own(request_id: str, side: str | None = None) -> Any:
    """The request on ``side`` (None: ours as requester, else as holder), if it is one of the
    credential's schools' (else 404, OSO-E473): the row the action then works on, looked up
    the same way (one gateway may hold both the requester's and the holder's row of an id)."""
    try:
        return _pull().find(request_id, side=side, schools=_schools())
    except RequestNotFound:
        raise RequestNotFound(f"request {request_id} is not in the credential's scope") from None


def _in_scope(school: str) -> School:
    """Our school of a new request: one of the credential's (else 403, OSO-E603, as a submit
    for another school answers)."""
    if not scope().allows(school):
        raise SchoolNotInScope(f"school {school} is not in the credential's scope")
    return School.parse(school)


@bp.get(
    "",
    operation_id="listRequests",
    summary="Requests sent and received by the credential's schools, with deadlines",
    responses={200: RequestPage},
)
def list_requests(query: RequestListQuery) -> Response:
    records = _pull().list(
        side=_SIDES.get(query.side or ""),
        statuses=(query.status,) if query.status else (),
        schools=scope().schools or (),  # a credential always has its schools: none, nothing
        before_pk=int(query.cursor) if query.cursor else None,
        limit=query.limit + 1,
    )
    page = records[: query.limit]
    now = _now()
    more = len(records) > query.limit
    return jsonify(
        {
            "items": [request_dict(r, now) for r in page],
            "next_cursor": str(page[-1].pk) if more else None,  # more: page is full
        }
    )


@bp.post(
    "",
    operation_id="sendRequest",
    summary="Ask the old school for a pupil's dossier (new school)",
    description="An `Idempotency-Key` makes a retried request return the same request (200), "
    "not a second one at the old school; the same key with another body answers 409 "
    "(OSO-E604). While a request of the same school to the same old school for the same pupil "
    "(BSN or onderwijsnummer) is still open (`sent` or `accepted`, not past its deadline), "
    "another one, without a key or with another key, answers 409 (OSO-E486) with "
    "`duplicate_of`: that request's id.",
    responses={200: DossierRequest, 201: DossierRequest},
)
def send_request(body: SendBody, header: am.IdempotencyHeader) -> Response:
    from oso_gateway.store.api_clients import remembering, stored_key
    from oso_gateway.store.engine import is_conflict

    key, client_id = header.idempotency_key, scope().client_id
    # The body names the pupil (BSN, birth date, name): its digest, kept with the key, is a
    # keyed hash (the store's lookup key), not a plain SHA-256 that a guess could be checked
    # against by anyone holding the database (found by a review).
    cipher = services().store.cipher
    assert cipher is not None  # the school API runs with the at-rest key
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True).encode("utf-8")
    digest = cipher.provider.lookup_mac(b"api-request-body\x00" + canonical).hex()
    # what the store keeps of the key: its keyed hash (``stored_key``), never the key
    kept = None if key is None else stored_key(cipher.provider.lookup_mac, key)
    earlier = _earlier_request(key, kept, digest)
    if earlier is not None:
        return jsonify(request_dict(earlier, _now()))
    after = None
    if kept is not None and client_id is not None:  # kept in the transaction that queues it
        after = remembering(client_id=client_id, key=kept, request_digest=digest, now=_now())

    pupil = Pupil(**body.pupil.model_dump())
    requesting, old_school = _in_scope(body.requesting_school), School.parse(body.old_school)
    if requesting == old_school:  # its detail only repeated the title (E475 is not the client's
        # to read in general: a peer's payload errors are E475 too); said as a push says it
        from oso_gateway.errors import RequestPayloadInvalid
        from oso_gateway.web.api.problems import problem

        return problem(
            RequestPayloadInvalid, detail=f"a request of school {requesting} addressed to itself"
        )
    try:
        record = _pull().send_request(
            requesting=requesting,
            old_school=old_school,
            pupil=pupil,
            requested_date=body.requested_date,
            after_insert=after,
        )
    except Exception as exc:  # the same key raced us: answer with the winner's request
        # (refused as its duplicate, E486, when the winner's request was stored first)
        from oso_gateway.errors import DuplicateRequest

        same = is_conflict(exc) or isinstance(exc, DuplicateRequest)
        raced = _earlier_request(key, kept, digest) if same else None
        if raced is None:
            raise
        return jsonify(request_dict(raced, _now()))
    response = jsonify(request_dict(record, _now()))
    response.status_code = 201
    return response


def _earlier_request(key: str | None, kept: str | None, digest: str) -> Any:
    """The request an earlier call with this Idempotency-Key (``kept``: its keyed hash) made
    (E604 when that call had another body), or None."""
    from oso_gateway.errors import IdempotencyKeyReused
    from oso_gateway.store.api_clients import ApiClientStore

    client_id = scope().client_id
    if key is None or kept is None or client_id is None:
        return None
    known = ApiClientStore(services().store.engine).idempotency(client_id, kept, legacy=key)
    if known is None:
        return None
    if known.request_digest != digest:
        raise IdempotencyKeyReused("Idempotency-Key reused with another body")
    message = services().store.get_message(known.message_pk)
    return _pull().find(message.message_id, side="requester", schools=_schools())


@bp.get(
    "/<request_id>",
    operation_id="getRequest",
    summary="One request: state, history and the pupil it asks for",
    responses={200: DossierRequestDetail},
)
def get_request(path: RequestPath, query: RequestSideQuery) -> Response:
    record = _own(path.request_id, _SIDES.get(query.side or ""))
    requests = _pull().requests
    body = request_dict(record, _now())
    # a purged request is answered as its tombstone: status and history, no pupil
    body["pupil"] = requests.pupil_or_none(record.pk)
    body["purged"] = body["pupil"] is None
    # the reason 'other' comes with the old school's own words (the CLI showed them, the API
    # did not: found by a helper's walkthrough); gone with the rest when erased
    body["decline_text"] = (
        requests.decline_text(record.pk)
        if record.decline_reason == "other" and not body["purged"]
        else None
    )
    body["events"] = [
        {"at": e.at.isoformat(), "status": e.status, "code": e.code}
        for e in requests.events(record.pk)
    ]
    # the old school's system sees the inzage it recorded, as `request show` does
    body["inzage"] = (
        inzage_dict(requests.find_inzage(school=record.our_school, request_pk=record.pk))
        if record.side == "holder"
        else None
    )
    return jsonify(body)


@bp.post(
    "/<request_id>/withdraw",
    operation_id="withdrawRequest",
    summary="Withdraw a request we sent (new school)",
    responses={200: DossierRequest},
)
def withdraw_request(path: RequestPath) -> Response:
    _own(path.request_id, "requester")
    record = _pull().withdraw(path.request_id, schools=_schools())
    return jsonify(request_dict(record, _now()))


@bp.post(
    "/<request_id>/retry",
    operation_id="retryRequest",
    summary="Send a request's failed message again: the request (new school) or the delivery "
    "or answer (old school)",
    description="With a fresh attempt budget, as the operator's `outbox retry`; `side` picks "
    "the request we sent (default) or the one we received (its delivery, or before a delivery "
    "its answer: accepted, declined). 409 (OSO-E474) when that message did not fail.",
    responses={200: DossierRequest},
)
def retry_request(path: RequestPath, query: RequestSideQuery) -> Response:
    side = _SIDES[query.side or "sent"]
    _own(path.request_id, side)
    record = _pull().retry(path.request_id, side=side, schools=_schools())
    return jsonify(request_dict(record, _now()))


@bp.post(
    "/<request_id>/accept",
    operation_id="acceptRequest",
    summary="Accept a received request with a ready-by date (old school)",
    responses={200: DossierRequest},
)
def accept_request(path: RequestPath, body: AcceptBody) -> Response:
    _own(path.request_id, "holder")
    record = _pull().accept(path.request_id, ready_by=body.ready_by, schools=_schools())
    return jsonify(request_dict(record, _now()))


@bp.post(
    "/<request_id>/decline",
    operation_id="declineRequest",
    summary="Decline a received request with a reason code (old school)",
    responses={200: DossierRequest},
)
def decline_request(path: RequestPath, body: DeclineBody) -> Response:
    _own(path.request_id, "holder")
    record = _pull().decline(
        path.request_id, reason=body.reason, text=body.text, schools=_schools()
    )
    return jsonify(request_dict(record, _now()))


@bp.post(
    "/<request_id>/dossier",
    operation_id="answerRequestWithDossier",
    summary="Answer with the dossier (XML): the pupil is checked, then it is delivered or held "
    "until the parents' inzage is recorded (old school)",
    responses={200: DossierAnswer},
    openapi_extensions={"x-oso-xml-body": True},
)
def answer_with_dossier(path: RequestPath) -> Response:
    _own(path.request_id, "holder")
    outcome = _pull().answer_with_dossier(path.request_id, xml_body(), schools=_schools())
    body = request_dict(outcome.request, _now())
    body["dossier"] = outcome.outcome
    return jsonify(body)


@bp.post(
    "/<request_id>/inzage",
    operation_id="recordInzage",
    summary="Record the parents' inzage (or its waiver, where the policy allows); a held "
    "dossier is then delivered (old school)",
    responses={200: DossierAnswer},
)
def record_inzage(path: RequestPath, body: InzageBody) -> Response:
    _own(path.request_id, "holder")
    refused = inzage_refused(body, _now())
    if refused is not None:
        return refused
    outcome = _pull().record_inzage(
        path.request_id,
        inzage_date=body.date,
        how=body.how,
        zienswijze=body.zienswijze,
        waiver=body.waiver,
        schools=_schools(),
        previewed=body.previewed,
    )
    record = outcome.request if outcome else _own(path.request_id, "holder")
    result = request_dict(record, _now())
    result["dossier"] = outcome.outcome if outcome else None
    return jsonify(result)


@bp.get(
    "/<request_id>/preview",
    operation_id="previewRequestDossier",
    summary="What the parents are shown: the held dossier as it will leave, per category",
    responses={200: {"description": "The preview", "content": {"application/json": {}}}},
)
def preview(path: RequestPath) -> Response:
    from oso_gateway.errors import RequestStateInvalid

    _own(path.request_id, "holder")
    shown = _pull().preview(path.request_id, schools=_schools())
    if shown is None:
        raise RequestStateInvalid(f"request {path.request_id}: no dossier is held")
    return jsonify(shown.as_dict())
