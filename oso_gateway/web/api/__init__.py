"""The school API: JSON under ``/api/v1`` for school systems (LAS), OpenAPI 3.1 from the code.

``create_api_app(settings, services=...)`` builds a flask-openapi3 application (one blueprint
per resource: ``inbox``, ``outbox``, ``receipts``, ``health``); the document is generated from
the routes and their pydantic models, served at ``/api/v1/openapi.json`` with a Swagger UI whose
assets ship in the ``flask-openapi3-swagger`` package (``/api/v1/swagger``; nothing loads from
elsewhere). ``start_api_in_thread`` serves it on its own listener (``[api]``), apart from the
SOAP endpoint (mutual TLS, untouched) and the console.

Every request but health, readiness and the documents needs ``Authorization: Bearer
<client-id>.<secret>`` (``oso-gateway api-client add``); the client's row is read on every
request, so a revocation counts at once. Requests are rate-limited per client (Flask-Limiter)
and each is recorded in the transfer log (client id, method, operation, status, message id:
no pupil data). Errors are RFC 9457 problems with our stable code (``problems.py``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import Response, g, redirect, request
from flask_openapi3.models import Info  # type: ignore[attr-defined]
from flask_openapi3.openapi import OpenAPI
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from oso_gateway import __version__
from oso_gateway import errors as se
from oso_gateway.errors import GatewayError
from oso_gateway.transfer.outage import API
from oso_gateway.web.api import models as am
from oso_gateway.web.api.context import API_PREFIX, SERVICES_KEY
from oso_gateway.web.api.problems import (
    allowed_methods,
    logged_path,
    problem,
    problem_response_spec,
)

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.config import Settings
    from oso_gateway.server import RunningServer
    from oso_gateway.transfer.services import GatewayServices

log = logging.getLogger(__name__)

#: endpoints that take no credential
PUBLIC = frozenset({"health.health", "health.ready"})
_MESSAGE_ID = re.compile(am.MESSAGE_ID)
_XML_OPERATIONS = ("submitDossier", "dryRunDossier", "answerRequestWithDossier")
_PUBLIC_OPERATIONS = ("health", "ready")

COMMON_RESPONSES: dict[str, Any] = {
    "400": problem_response_spec("Malformed request (OSO-E606) or dossier refused (OSO-E1xx)"),
    "401": problem_response_spec("Missing (OSO-E600) or invalid/revoked (OSO-E601) credential"),
    "403": problem_response_spec("The dossier's school is outside the credential's scope"),
    "404": problem_response_spec("No such message among the credential's schools (OSO-E602)"),
    "405": problem_response_spec("Method not allowed (OSO-E614)"),
    "409": problem_response_spec(
        "Status or Idempotency-Key conflict, or duplicate dossier or request"
    ),
    "410": problem_response_spec("The dossier content is no longer stored (OSO-E611)"),
    "413": problem_response_spec("Request body too large (OSO-E607)"),
    "415": problem_response_spec("Unsupported Content-Type (OSO-E608)"),
    "429": problem_response_spec("Rate limit of the credential exceeded (OSO-E609)"),
    "500": problem_response_spec("Internal error (OSO-E617)"),
    "502": problem_response_spec("A peer gateway answered badly"),
    "503": problem_response_spec("Not ready or the store is unavailable"),
}

DESCRIPTION = """The school API of oso-gateway: for a school's administration system (LAS).

Outbox (the sending school): submit an OSO gegevensset 2019 dossier (XML) for a receiving
school, dry-run it, follow it to its signed receipt, retry or cancel it. Inbox (the receiving
school): list received dossiers (metadata only), fetch one as XML or JSON (or only chosen
categories), acknowledge it, or decline it. Every message is scoped to the schools of the
credential. Errors are RFC 9457 problem details with a stable code (OSO-Exxx).
"""


class SchoolApi(OpenAPI):
    """flask-openapi3's app, with the XML request bodies the library cannot describe."""

    def generate_spec_json(self) -> None:
        super().generate_spec_json()  # type: ignore[no-untyped-call]
        from oso_gateway.web.api.outbox import XML_BODY

        for item in self.spec_json.get("paths", {}).values():
            for operation in item.values():
                if not isinstance(operation, dict):
                    continue
                if operation.get("operationId") in _XML_OPERATIONS:
                    operation["requestBody"] = XML_BODY
                    operation.pop("x-oso-xml-body", None)
                public = operation.get("operationId") in _PUBLIC_OPERATIONS
                operation["security"] = [] if public else [{"bearer": []}]
                responses = operation.setdefault("responses", {})
                responses["400"] = COMMON_RESPONSES["400"]  # a problem, not the library's list
                for code, spec in COMMON_RESPONSES.items():
                    responses.setdefault(code, spec)
        self.spec_json["components"]["schemas"]["Problem"] = am.Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        self.spec_json["components"]["schemas"].pop("ValidationErrorModel", None)


#: what a value that does not match its field's pattern lacks, in words (pydantic's message
#: quotes the regular expression); of free text and names, what they may not hold (said of
#: every field, a bad cursor read as if it held control characters: a vendor's walkthrough)
_PATTERN_MESSAGE = "does not have the allowed form (see the field's description)"
_TEXT_PATTERN_MESSAGE = (
    "may not hold control or bidirectional-override characters (free text and names)"
)


def _pattern_message(error: Mapping[str, Any]) -> str:
    pattern = (error.get("ctx") or {}).get("pattern")
    return _TEXT_PATTERN_MESSAGE if pattern in (am.TEXT, am.NAME) else _PATTERN_MESSAGE


#: a part of an error's location shown as the caller sent it: a field name's form (an unknown
#: key is the caller's text, which a system that builds keys from data may fill with it)
_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,39}|[0-9]{1,4}")


def _location(loc: Sequence[object]) -> str:
    """``loc`` as ``a.b.c``; a part that has no field name's form is shown as ``?``."""
    parts = (str(p) if _NAME_LIKE.fullmatch(str(p)) else "?" for p in loc)
    return ".".join(parts)[:200] or "request"


#: pydantic's errors whose message names a class of ours ("Input should be a valid dictionary
#: or instance of SendBody"): said in the API's words
_OBJECT_TYPES = frozenset({"model_type", "model_attributes_type", "dict_type", "dataclass_type"})


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    if kind == "string_pattern_mismatch":
        return _pattern_message(error)
    if kind in _OBJECT_TYPES:
        return "should be a JSON object"
    message = str(error.get("msg", ""))[:200]
    return "is not valid" if "instance of" in message else message


def _validation_problem(exc: ValidationError) -> Response:
    errors = [
        {
            "code": str(e.get("type", "invalid"))[:60],
            "location": _location(e.get("loc", ())),
            "message": _message(e),
        }
        for e in exc.errors(include_input=False, include_url=False)
    ]
    return problem(se.RequestInvalid, errors=errors[:50])


def create_api_app(settings: Settings, *, services: GatewayServices | None = None) -> SchoolApi:
    """The school API's WSGI app for one gateway."""
    from oso_gateway.web.api import health, inbox, inzage, outbox, receipts, requests

    app = SchoolApi(
        __name__,
        info=Info(title="oso-gateway school API", version=__version__, description=DESCRIPTION),
        security_schemes={
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "`<client-id>.<secret>` from `oso-gateway api-client add`",
            }
        },
        responses=COMMON_RESPONSES,  # type: ignore[arg-type]
        validation_error_status=400,
        validation_error_model=am.Problem,
        validation_error_callback=_validation_problem,
        doc_prefix=API_PREFIX,
        doc_url="/openapi.json",
    )
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[SERVICES_KEY] = services
    _install_security(app, settings)
    for module in (health, inbox, inzage, outbox, receipts, requests):
        app.register_api(module.bp)
    # the docs page with a trailing slash (as a browser's address bar often has it) answered
    # 401: an unknown path is not public. It is sent on to the page.
    app.add_url_rule(
        API_PREFIX + "/swagger/",
        endpoint="swagger_slash",
        view_func=lambda: redirect(API_PREFIX + "/swagger", code=308),
    )
    _install_json_bodies(app)
    _install_error_handlers(app)
    return app


def _install_json_bodies(app: SchoolApi) -> None:
    """A JSON endpoint's body is JSON (``context.json_body_refused``), checked after the
    credential and the rate limit (registered after them), before the body's model."""
    import inspect

    from oso_gateway.web.api.context import json_body_refused

    takes_body: dict[str, bool] = {}  # per endpoint: whether its view has a JSON ``body``

    @app.before_request
    def _json_body() -> Response | None:
        endpoint = request.endpoint
        view = app.view_functions.get(endpoint or "")
        if endpoint is None or view is None or not request.path.startswith(API_PREFIX + "/"):
            return None
        if endpoint not in takes_body:
            takes_body[endpoint] = "body" in inspect.signature(view).parameters
        return json_body_refused() if takes_body[endpoint] else None


def _install_security(app: SchoolApi, settings: Settings) -> None:
    """Authentication (before the limiter: its key is the authenticated client), the rate
    limit, and the transfer-log record of every call."""
    from oso_gateway.store import RateLimitCounters
    from oso_gateway.store.api_clients import ApiClientStore
    from oso_gateway.transfer.apiclients import ApiClients
    from oso_gateway.web.ratelimit import FailureLimit, address_key, database_limiter

    services = app.extensions[SERVICES_KEY]
    clients: list[ApiClients] = []  # built at the first request (the spec needs no store)
    counters = RateLimitCounters(services.store.engine)
    failures = FailureLimit(counters, settings.api.failed_auth_limit)

    @app.before_request
    def _authenticate() -> None:
        g.api_client = None
        if not request.path.startswith(API_PREFIX + "/") or _is_public():
            return
        if not clients:
            store = ApiClientStore(services.store.engine)
            clients.append(ApiClients(store, served=services.schools))
        try:
            g.api_client = clients[0].authenticate(request.headers.get("Authorization"))
        except (se.ApiCredentialMissing, se.ApiCredentialInvalid):
            # Counted per address; over the limit the answer is 429 instead of 401. A valid
            # credential always passes: behind a proxy, or from a vendor's few addresses,
            # one tenant's failures must not lock the others out.
            failures.fail(address_key(request.remote_addr or "unknown"))
            raise
        # the schools it acts for: those of its schools the directory gives this gateway now
        # (a school that left kept a working credential: a review)
        g.api_schools = clients[0].serving(g.api_client)

    database_limiter(
        app,
        counters,
        key_func=lambda: "api:" + g.api_client.client_id if g.get("api_client") else "anonymous",
        # one limit per client over the whole API (a route's own limit would multiply it)
        application_limits=[settings.api.rate_limit],
        application_limits_exempt_when=lambda: g.get("api_client") is None,
    )

    @app.before_request
    def _single_valued_query() -> Response | None:
        """Every query parameter of the API takes one value: a repeated one was answered by
        its first value, silently (``?side=sent&side=received``: a vendor's walkthrough)."""
        if not request.path.startswith(API_PREFIX + "/"):
            return None
        repeated = sorted(key for key, values in request.args.lists() if len(values) > 1)
        if not repeated:
            return None
        return problem(
            se.RequestInvalid,
            errors=[
                {
                    "code": "repeated",
                    # named as a validation error names a query parameter: its name alone
                    "location": key if _QUERY_KEY.fullmatch(key) else "?",
                    "message": "given more than once: this parameter takes one value",
                }
                for key in repeated[:50]
            ],
        )

    @app.after_request
    def _record(response: Response) -> Response:
        if request.path.startswith(API_PREFIX + "/") and not _is_public():
            if response.status_code == 429:
                # a flood does not grow the log: without a credential, nor from a client over
                # its limit (its 429s were most of a busy gateway's log: a vendor's walkthrough)
                return response
            _log_call(services, response.status_code)
        return response


#: a query parameter's name as the API's are: named back to the caller in a problem's errors
_QUERY_KEY = re.compile(r"[a-z_]{1,40}")


def _is_public() -> bool:
    endpoint = request.endpoint or ""
    return endpoint in PUBLIC or endpoint.startswith(("openapi", "swagger"))


def _log_call(services: Any, status: int) -> None:
    from oso_gateway.store.logchain import make_event

    client = g.get("api_client")
    args = request.view_args or {}
    # a request's id is the MessageID of the message that carried it
    message_id = args.get("message_id") or args.get("request_id")
    endpoint = request.endpoint or ""
    now = services.clock()
    event = make_event(
        at=now,
        kind="api",
        status="api_call",
        api_client=client.client_id if client is not None else None,
        http_method=request.method if request.method.isalpha() else None,
        http_status=status,
        operation=endpoint if re.fullmatch(r"[a-z_.]{1,64}", endpoint) else None,
        message_id=message_id if message_id and _MESSAGE_ID.fullmatch(message_id) else None,
    )
    try:
        services.store.append_log([event], now=now)
    except GatewayError as exc:  # the answer is given; the failure is ours to see
        log.error("could not log an API call: %s", exc.code)


def _install_error_handlers(app: SchoolApi) -> None:
    by_status: dict[int, type[GatewayError]] = {
        400: se.RequestInvalid,
        404: se.ApiRouteNotFound,
        405: se.ApiMethodNotAllowed,
        413: se.ApiPayloadTooLarge,
        415: se.ApiUnsupportedMediaType,
        429: se.ApiRateLimited,
    }

    @app.errorhandler(GatewayError)
    def _gateway_error(exc: GatewayError) -> Response:
        log.info("school API %s %s: %s %r", request.method, logged_path(), exc.code, exc.detail)
        if isinstance(exc, se.StoreUnavailable):  # no metric read from the database has it
            errors = getattr(app.extensions.get(SERVICES_KEY), "database_errors", None)
            if errors is not None:
                errors.count(API)
        duplicates = (se.DuplicateDossier, se.DuplicateRequest)  # E610, E486: the first one
        extra = {"duplicate_of": exc.original} if isinstance(exc, duplicates) else None
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else {}
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        return problem(exc, errors=_client_errors(exc), extra=extra, headers=headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if exc.response is not None and exc.code != 429:
            return exc.response  # type: ignore[return-value]  # flask-openapi3's abort
        cls = by_status.get(exc.code or 500, se.ApiInternalError)
        # A 429 here is Flask-Limiter's: it sets Retry-After itself, from the window's reset
        # (a value of ours would only be taken if later: it made the wait read 60 s always)
        allowed = allowed_methods() if exc.code == 405 else []
        return problem(cls, headers={"Allow": ", ".join(allowed)} if allowed else None)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("school API %s %s failed", request.method, logged_path())
        return problem(se.ApiInternalError)


def _client_errors(exc: GatewayError) -> list[dict[str, str]] | None:
    """What the client got wrong, where that is its own input (never the dossier's): the
    category keys it asked for that do not exist, with the known ones."""
    if not isinstance(exc, se.UnknownCategory):
        return None
    from oso_gateway.dossier.categories import BY_KEY

    known = ", ".join(BY_KEY)
    return [
        {
            "code": exc.code,
            "location": "categories",
            "message": f"unknown key {key!r}; known: {known}",
        }
        for key in exc.keys
    ]


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (no gateway needed: the routes and models define it)."""
    from types import SimpleNamespace

    from oso_gateway.config import Settings

    placeholder = SimpleNamespace(
        store=SimpleNamespace(engine=None), schools=lambda: (), clock=None
    )
    settings = Settings(data_dir=__import__("pathlib").Path("."), database_url="sqlite://")
    app = create_api_app(settings, services=placeholder)  # type: ignore[arg-type]
    return dict(app.api_doc)


def start_api_in_thread(
    settings: Settings, *, services: GatewayServices, port: int | None = None, threads: int = 8
) -> RunningServer:
    """Serve the API (cheroot) on ``api.host``/``api.port`` in a daemon thread; HTTPS when
    ``api.tls_cert_file``/``tls_key_file`` are set. ``port=0``: an ephemeral port."""
    from oso_gateway.server import serve_plain_or_tls, workers_for

    app = create_api_app(settings, services=services)
    return serve_plain_or_tls(
        app,
        host=settings.api.host,
        port=settings.api.port if port is None else port,
        tls_cert_file=settings.api.tls_cert_file,
        tls_key_file=settings.api.tls_key_file,
        threads=workers_for(settings, threads),
        server_name="oso-gateway-api",
        path=API_PREFIX + "/",
        what="school API",
        request_deadline=settings.limits.request_deadline,
        max_connections=settings.limits.max_connections,
        max_connections_per_address=settings.limits.max_connections_per_address,
    )
