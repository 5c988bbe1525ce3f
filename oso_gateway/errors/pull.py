"""OSO-E470..E499: the pull workflow (request, answer, inzage gate, delivery for a request, a
second open request for one pupil).

No pupil data in any detail or message: request ids, school codes and states only."""

from __future__ import annotations

from oso_gateway.errors.base import RemoteError

# --- the old school's side: before a dossier is sealed for a request ------------------------


class PupilMismatch(RemoteError):
    """The dossier's pupil is not the pupil the request asks for (BSN or onderwijsnummer, or
    birth date, differ): refused before sealing."""

    code = "OSO-E470"
    client_detail = True
    public_message = "The dossier's pupil does not match the request."


class InzageMissing(RemoteError):
    """The school's policy requires the parents' inzage before a dossier leaves, and none (nor a
    waiver) is recorded for it."""

    code = "OSO-E471"
    client_detail = True
    http_status = 409
    public_message = "The parents' inzage is not recorded for this dossier."


class InzageWaiverNotAllowed(RemoteError):
    """Inzage was waived, but the school's policy does not allow a waiver."""

    code = "OSO-E472"
    client_detail = True
    http_status = 409
    public_message = "This school's policy does not allow waiving the parents' inzage."


class RequestNotFound(RemoteError):
    """No request with this id (on this side, for a school this gateway serves)."""

    code = "OSO-E473"
    http_status = 404
    public_message = "No such request."


class RequestStateInvalid(RemoteError):
    """The request is not in a state that allows this step (e.g. answering a withdrawn one)."""

    code = "OSO-E474"
    client_detail = True
    http_status = 409
    public_message = "The request's state does not allow this step."


class RequestPayloadInvalid(RemoteError):
    """A request or answer payload does not match its schema (shape or values)."""

    code = "OSO-E475"
    public_message = "The request or answer is not valid."


# --- the new school's side: a delivery must match its request ------------------------------


class DeliveryRequestUnknown(RemoteError):
    """A delivery relates to a request this gateway never sent."""

    code = "OSO-E476"
    public_message = "The delivery relates to no request of ours."


class DeliveryRequestOtherSchool(RemoteError):
    """A delivery relates to another school's request, or comes from another school than the
    one that was asked."""

    code = "OSO-E477"
    public_message = "The delivery does not belong to this request's schools."


class DeliveryRequestClosed(RemoteError):
    """A delivery relates to a request that was withdrawn, declined, expired or already
    delivered."""

    code = "OSO-E478"
    http_status = 409
    public_message = "The request this delivery relates to is closed."


class DeliveryPupilMismatch(RemoteError):
    """A delivery's pupil is not the pupil its request asked for: not imported."""

    code = "OSO-E479"
    public_message = "The delivered dossier's pupil does not match the request."


# --- the request and answer kinds on the receiving side -----------------------------------


class RequestSchoolMismatch(RemoteError):
    """A request or answer names other schools than the message's addressing and mandate."""

    code = "OSO-E480"
    public_message = "The request's schools do not match the message."


class AnswerRequestUnknown(RemoteError):
    """An answer relates to no request between these schools."""

    code = "OSO-E481"
    public_message = "The answer relates to no known request."


class AnswerNotAllowed(RemoteError):
    """An answer the request's state does not allow (accepting a withdrawn request, ...)."""

    code = "OSO-E482"
    http_status = 409
    public_message = "The request's state does not allow this answer."


class PupilIdentifierInvalid(RemoteError):
    """A request needs exactly one of BSN and onderwijsnummer, passing the 11-proef, and a
    birth date."""

    code = "OSO-E483"
    client_detail = True
    public_message = "The pupil's identifier or birth date is not valid."


class DeclineReasonInvalid(RemoteError):
    """A decline needs one of the reason codes; ``other`` needs a text."""

    code = "OSO-E484"
    client_detail = True
    public_message = "The decline reason is not valid."


class ReadyByInPast(RemoteError):
    """An acceptance's ready-by date lies before today (UTC): the new school would be told a
    date that has already gone by."""

    code = "OSO-E485"
    client_detail = True
    public_message = "The ready-by date lies in the past."


class DuplicateRequest(RemoteError):
    """The requesting school already has an open request (``sent`` or ``accepted``, not past
    its deadline) for this pupil at this old school: a second one is not sent, the first is
    named (``duplicate_of``). Withdraw the first to ask again."""

    code = "OSO-E486"
    client_detail = True
    http_status = 409
    public_message = (
        "An open request for this pupil to this school exists already (see duplicate_of)."
    )

    def __init__(self, detail: str = "", *, original: str = "") -> None:
        self.original = original
        super().__init__(detail)
