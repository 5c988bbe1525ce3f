"""OSO-E6xx: the schools' ends: the inbox/outbox services, the school API, API clients and
operator accounts (E600–E639).

Every one is a ``RemoteError`` (the caller — a school's system or a person at the command line —
asked for something we refuse) except ``ApiInternalError``. Texts name message ids, schools,
statuses and codes only: never pupil data.
"""

from __future__ import annotations

from oso_gateway.errors.base import LocalError, RemoteError


class ApiCredentialMissing(RemoteError):
    """A school-API request came without an ``Authorization: Bearer`` credential."""

    code = "OSO-E600"
    http_status = 401
    public_message = "An API credential is required (Authorization: Bearer <client-id>.<secret>)."


class ApiCredentialInvalid(RemoteError):
    """The credential is unknown, malformed, revoked or its secret is wrong (one answer for all:
    the log records which)."""

    code = "OSO-E601"
    http_status = 401
    public_message = "The API credential is not valid."


class MessageNotFound(RemoteError):
    """No message with this id among the caller's schools (another school's id answers the same)."""

    code = "OSO-E602"
    http_status = 404
    public_message = "No such message."


class SchoolNotInScope(RemoteError):
    """The school a dossier or a call names (a dossier's sending school, a request's asking
    school) is not one the API client (or the gateway) acts for."""

    code = "OSO-E603"
    http_status = 403
    public_message = "The school named is not one this credential may act for."
    client_detail = True  # which school (a BRIN + vestiging code the caller sent, no pupil data)


class IdempotencyKeyReused(RemoteError):
    """The Idempotency-Key was used before with another request body."""

    code = "OSO-E604"
    http_status = 409
    public_message = "This Idempotency-Key was used with another request."


class StatusConflict(RemoteError):
    """The message's status does not allow the action (e.g. cancel after delivery)."""

    code = "OSO-E605"
    # the detail names the action and the message's status (words of ours, no pupil data):
    # the school API showed only the title (an integrator's walkthrough)
    client_detail = True
    http_status = 409
    public_message = "The message's status does not allow this action."


class RequestInvalid(RemoteError):
    """A parameter or body of an API request or command is malformed (the text names which)."""

    code = "OSO-E606"
    http_status = 400
    public_message = "The request is not valid."


class ApiPayloadTooLarge(RemoteError):
    """The request body is larger than ``limits.max_request_bytes``."""

    code = "OSO-E607"
    http_status = 413
    public_message = "The request body is too large."


class ApiUnsupportedMediaType(RemoteError):
    """The request body has a Content-Type the endpoint does not take."""

    code = "OSO-E608"
    http_status = 415
    public_message = (
        "Unsupported Content-Type for this endpoint: a dossier is sent as application/xml "
        "(or text/xml), any other body as application/json."
    )


class ApiRateLimited(RemoteError):
    """The API client sent more requests than its rate limit allows."""

    code = "OSO-E609"
    http_status = 429
    transient = True
    public_message = "Too many requests; try again later."


class DuplicateDossier(RemoteError):
    """The same dossier (payload digest) was queued for the same school within the window."""

    code = "OSO-E610"
    http_status = 409
    public_message = "This dossier was already sent to this school (see duplicate_of)."

    def __init__(self, detail: str = "", *, original: str = "") -> None:
        self.original = original
        super().__init__(detail)


class ContentDropped(RemoteError):
    """The inbound message's dossier is no longer stored (declined)."""

    code = "OSO-E611"
    http_status = 410
    public_message = "The dossier content is no longer stored."


class UnknownCategory(RemoteError):
    """``categories`` names a category key that does not exist."""

    code = "OSO-E612"
    http_status = 400
    public_message = "Unknown category key (see errors for the key and the known ones)."

    def __init__(self, detail: str = "", *, keys: tuple[str, ...] = ()) -> None:
        #: the unknown keys as the client sent them (printable ASCII, cut to 40 characters)
        self.keys = keys
        super().__init__(detail)


class ApiRouteNotFound(RemoteError):
    """No API endpoint at this path (or not with this method)."""

    code = "OSO-E613"
    http_status = 404
    public_message = "No such API endpoint."


class ApiMethodNotAllowed(RemoteError):
    """The endpoint exists but not with this HTTP method."""

    code = "OSO-E614"
    http_status = 405
    public_message = "Method not allowed for this endpoint."


class NoReceipt(RemoteError):
    """The outbound message has no receipt (it is not delivered)."""

    code = "OSO-E615"
    http_status = 404
    public_message = "The message has no receipt (it is not delivered)."


class ApiClientConfigError(LocalError):
    """An ``api-client`` command was given a malformed school code or name."""

    code = "OSO-E616"
    http_status = 400
    public_message = "The API client settings are not valid."


class ApiInternalError(LocalError):
    """An unexpected failure while answering a school-API request (our log has the traceback)."""

    code = "OSO-E617"
    public_message = "Internal error at the gateway."


class ApiNotReady(LocalError):
    """The gateway is not ready (database, identities, CRLs or directory: the text says which)."""

    code = "OSO-E618"
    http_status = 503
    transient = True
    public_message = "The gateway is not ready."


class SchoolsNotServed(RemoteError):
    """None of the schools an API credential or a console operator acts for is served by this
    gateway now: the directory (as reloaded) no longer names one of our identities as their
    gateway (a school that left, changed BRIN or merged). The detail names the school codes;
    revoke the credential (``api-client revoke``) or remove the operator."""

    code = "OSO-E619"
    http_status = 403
    public_message = "None of the schools of this credential is served by this gateway now."
    client_detail = True  # the credential's own school codes (BRIN + vestiging), no pupil data


# E620-E629: the command line's own refusals (operators, API clients, a school filter).


class SchoolFilterNotServed(RemoteError):
    """A command's ``--school`` names a school this gateway does not serve (and holds nothing
    for): a mistyped code, refused rather than read as an empty list (the text names the code
    given and how to list the served schools, not the list itself)."""

    code = "OSO-E620"
    http_status = 400
    public_message = "This gateway does not serve the school named."


class OperatorExists(RemoteError):
    """``operator add`` names an account that exists (names are compared without case)."""

    code = "OSO-E621"
    http_status = 409
    public_message = "An operator account with this name exists."


class OperatorNotFound(RemoteError):
    """``operator remove`` names no account."""

    code = "OSO-E622"
    http_status = 404
    public_message = "No such operator account."


class OperatorListInvalid(RemoteError):
    """A line of ``operator add --from-file`` is malformed or refused (the text names the line
    and why: never the password)."""

    code = "OSO-E623"
    http_status = 400
    public_message = "The list of operator accounts is not valid."


class ApiClientNotFound(RemoteError):
    """``api-client revoke`` names no API client (an unknown id or name, or a school without
    an active client)."""

    code = "OSO-E624"
    http_status = 404
    public_message = "No such API client."
