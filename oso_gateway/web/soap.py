"""The SOAP endpoint and health probes (blueprint). The work is done by ``ReceiveService``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from oso_gateway.errors import (
    GatewayError,
    InternalError,
    RequestDeadlineExceeded,
    RequestTooLarge,
    UnsupportedMediaType,
)
from oso_gateway.protocol import SOAP_CONTENT_TYPE, SOAP_PATH, shown_media_type
from oso_gateway.transfer import wire
from oso_gateway.transfer.receive import ReceiveService

log = logging.getLogger(__name__)

bp = Blueprint("soap", __name__)


#: extension keys on the Flask app
RECEIVER_KEY = "oso_receiver"
READINESS_KEY = "oso_readiness"

Readiness = Callable[[datetime], list[str]]


def answers_path(path: str) -> bool:
    """Whether ``POST path`` reaches the SOAP endpoint (``SOAP_PATH`` or ``SOAP_PATH/<name>``).

    A directory endpoint of a school we serve must have such a path, else every sender's first
    POST gets a 404 and fails permanently.
    """
    if path == SOAP_PATH:
        return True
    rest = path.removeprefix(SOAP_PATH + "/")
    return rest != path and rest != "" and "/" not in rest


def endpoint_path_problems(served: Iterable[tuple[str, str]]) -> list[str]:
    """Of ``(school code, directory endpoint)`` pairs of the schools we serve, those whose
    endpoint this server does not answer (every sender would get a 404)."""
    problems = []
    for school, endpoint in served:
        path = urlsplit(endpoint).path
        if not answers_path(path):
            problems.append(
                f"school {school}: endpoint path {path or '/'!r} is not served by this gateway "
                f"(use {SOAP_PATH} or {SOAP_PATH}/<name>)"
            )
    return problems


def _service() -> ReceiveService:
    service: ReceiveService = current_app.extensions[RECEIVER_KEY]
    return service


def _fault(exc: GatewayError) -> Response:
    return Response(wire.build_fault(exc), status=exc.http_status, content_type=SOAP_CONTENT_TYPE)


@bp.post(SOAP_PATH)
@bp.post(SOAP_PATH + "/<school>")
def messages(school: str | None = None) -> Response:
    """Receive one sealed message; answer the sealed receipt or a SOAP Fault.

    ``/<school>`` lets a directory give each school of a multi-school gateway its own endpoint;
    the school is taken from the signed ``wsa:To``, not from this path.
    """
    service = _service()
    now = datetime.now(UTC)
    if request.mimetype != "text/xml":
        problem = UnsupportedMediaType(f"Content-Type {shown_media_type(request.mimetype)}")
        return _reject(service, problem, now)
    try:
        data = _read_body()
    except RequestEntityTooLarge:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return _reject(service, RequestTooLarge(f"request body over {limit} bytes"), now)
    except TimeoutError:  # the server's whole-request deadline, or a stalled read
        late = RequestDeadlineExceeded("the request body did not arrive in time")
        return _reject(service, late, now)
    result = service.handle(data, now=now)
    return Response(result.body, status=result.http_status, content_type=SOAP_CONTENT_TYPE)


#: bytes read from the request body at a time
_READ_CHUNK = 1024 * 1024


def _read_body() -> bytearray:
    """The request body (within MAX_CONTENT_LENGTH) in one buffer, held once.

    ``request.get_data()`` collects the body in a bytearray and then copies it into bytes: for
    the largest message that is twice ~100 MB at once. This bytearray is handed to the receive
    service, which empties it as soon as the ciphertext has been read out of it.
    """
    stream = request.stream
    out = bytearray()
    while chunk := stream.read(_READ_CHUNK):
        out += chunk
    return out


def _reject(service: ReceiveService, exc: GatewayError, now: datetime) -> Response:
    result = service.reject(exc, now=now, size=request.content_length or 0)
    return Response(result.body, status=result.http_status, content_type=SOAP_CONTENT_TYPE)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to receive: database reachable, keys loaded, CRLs fresh (reasons, no secrets)."""
    check: Readiness = current_app.extensions[READINESS_KEY]
    problems = check(datetime.now(UTC))
    if problems:
        return jsonify(status="unavailable", reasons=problems), 503
    return jsonify(status="ready"), 200


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> Response:
    return _fault(RequestTooLarge("request body too large"))


def internal_error(exc: Exception) -> Response:
    """Any unexpected exception on the SOAP path: logged with its traceback, a generic fault."""
    if isinstance(exc, GatewayError):
        log.error("unhandled %s: %s", exc.code, exc.detail)
        return _fault(exc)
    # the route, not the path a peer sent (it may hold anything)
    route = request.url_rule.rule if request.url_rule is not None else "(no such route)"
    log.exception("internal error handling %s %s", request.method, route)
    return _fault(InternalError("unexpected exception"))
