"""OSO-E4xx: the transfer between gateways (directory and mandate, receipts, the receiving and the
sending side)."""

from __future__ import annotations

from oso_gateway.errors.base import LocalError, RemoteError, error_class_for

# --- directory and mandate: OSO-E430..E439 ---


class UnknownSchool(RemoteError):
    """The school (BRIN + vestiging) is not in our directory file."""

    code = "OSO-E430"
    http_status = 404
    public_message = "The school is not known to this gateway's directory."


class MandateMissing(RemoteError):
    """The signing OIN is not mandated for the sending school (or the school is unknown)."""

    code = "OSO-E431"
    http_status = 403
    public_message = "The sending gateway is not mandated for the sending school."


class RecipientIsSender(RemoteError):
    """A dossier addressed to the school that sends it (checked before queueing)."""

    code = "OSO-E432"
    http_status = 400
    public_message = "The dossier is addressed to the school that sends it."
    client_detail = True  # the school's code (BRIN + vestiging), no pupil data


# --- receipts and faults on the wire: OSO-E450..E451 ---


class ReceiptInvalid(RemoteError):
    """The peer's receipt payload does not match our transfer schema (shape or values)."""

    code = "OSO-E450"
    public_message = "The receipt is not valid."


class PeerFault(RemoteError):
    """The peer answered with a SOAP Fault; ``remote_code`` is its stable error code."""

    code = "OSO-E451"
    public_message = "The receiving gateway rejected the message."

    def __init__(self, remote_code: str, fault_code: str, message: str) -> None:
        self.remote_code = remote_code
        self.fault_code = fault_code
        cls = error_class_for(remote_code)
        #: Retrying makes sense only for a transient error the peer reported as its own ("Server").
        self.remote_transient = bool(cls is not None and cls.transient) or (
            cls is None and fault_code.endswith("Server")
        )
        super().__init__(f"peer fault {remote_code} ({fault_code}): {message}")


# --- the receiving side: OSO-E452..E459 ---


class UnexpectedAction(RemoteError):
    """The message's wsa:Action is not a dossier delivery."""

    code = "OSO-E452"
    public_message = "The message action is not supported at this endpoint."


class RecipientUnknown(RemoteError):
    """wsa:To is not the endpoint of any school this gateway serves."""

    code = "OSO-E453"
    http_status = 404
    public_message = "The message is not addressed to a school this gateway serves."


class MessageIdReused(RemoteError):
    """A MessageID we already imported arrived again with a different payload."""

    code = "OSO-E454"
    http_status = 409
    public_message = "This MessageID was already used for another message."


class RequestTooLarge(RemoteError):
    """The HTTP request body exceeds the configured size limit."""

    code = "OSO-E455"
    http_status = 413
    public_message = "The message is too large."


class RequestDeadlineExceeded(RemoteError):
    """The request (headers and body) did not arrive within ``limits.request_deadline``: a slow
    or stalled client, cut off so that it cannot hold a worker."""

    code = "OSO-E640"
    http_status = 408
    transient = True
    public_message = "The request took too long to arrive."


class UnsupportedMediaType(RemoteError):
    """The request is not a SOAP 1.1 POST (Content-Type text/xml)."""

    code = "OSO-E456"
    http_status = 415
    public_message = "Send a SOAP 1.1 message with Content-Type text/xml."


class InternalError(LocalError):
    """An unexpected failure while handling the message (a bug or a crashed dependency); the
    traceback is in our log. Transient: nothing was stored, the sender retries."""

    code = "OSO-E457"
    http_status = 500
    transient = True
    public_message = "Internal error at the receiving gateway; try again later."


# --- the sending side: OSO-E460..E469 ---


class ReceiptMismatch(RemoteError):
    """The reply opened but does not confirm our message (RelatesTo, digest or confirmation)."""

    code = "OSO-E460"
    public_message = "The receipt does not confirm the message."


class PeerUnreachable(RemoteError):
    """The receiving gateway could not be reached (connection, TLS or timeout)."""

    code = "OSO-E461"
    http_status = 502
    soap_fault = "Server"
    transient = True
    public_message = "The receiving gateway could not be reached."


class PeerHttpError(RemoteError):
    """The receiving gateway answered with an HTTP error status and no SOAP Fault."""

    code = "OSO-E462"
    http_status = 502
    soap_fault = "Server"
    public_message = "The receiving gateway answered with an HTTP error."

    def __init__(self, status: int, what: str = "without a SOAP Fault") -> None:
        self.status = status
        super().__init__(f"HTTP status {status} {what}")

    @property
    def is_transient(self) -> bool:
        return self.status >= 500 or self.status in (408, 429)


class NotMandated(RemoteError):
    """The dossier's sending school has not mandated our OIN (checked before queueing)."""

    code = "OSO-E463"
    public_message = "This gateway is not mandated for the dossier's sending school."


class SendingSchoolNotServed(LocalError):
    """The message's sending school is no longer served by this gateway, nor has it mandated
    our OIN: the directory (as reloaded) no longer lists it for us (a school that left, changed
    BRIN or merged). The outbox fails the message at once, before anything is sealed or posted
    (the peer would refuse it, OSO-E431); ``outbox retry`` sends it once the directory lists
    the school for this gateway again."""

    code = "OSO-E464"
    http_status = 409
    public_message = (
        "The sending school is no longer served by this gateway; the message was not sent."
    )
