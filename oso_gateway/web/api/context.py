"""What every school-API view needs: the services, the caller's scope, reading a body."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, g, jsonify, request

from oso_gateway.errors import ApiUnsupportedMediaType
from oso_gateway.protocol import shown_media_type
from oso_gateway.transfer.mailbox import InboxService, ListFilter, OutboxService, Scope
from oso_gateway.web.api.models import InboxListQuery, OutboxListQuery

API_PREFIX = "/api/v1"
SERVICES_KEY = "oso_api_services"
XML_TYPES = ("application/xml", "text/xml")


def services() -> Any:
    return current_app.extensions[SERVICES_KEY]


def inbox() -> InboxService:
    box = services().inbox
    assert box is not None
    return box  # type: ignore[no-any-return]


def outbox() -> OutboxService:
    box = services().outbox_view
    assert box is not None
    return box  # type: ignore[no-any-return]


def scope() -> Scope:
    """The credential's schools that this gateway serves now (``ApiClients.serving``, read at
    authentication): a school the directory no longer gives us is out of every call's scope."""
    client = g.api_client
    return Scope(tuple(g.api_schools), client_id=client.client_id)


def page_json(
    query: InboxListQuery | OutboxListQuery, counterpart_school: str | None, box: Any
) -> Response:
    """One page of ``box``'s messages (inbox or outbox) for the query's filter, as JSON."""
    page = box.list(
        scope(),
        ListFilter(
            statuses=(query.status,) if query.status else (),
            counterpart_school=counterpart_school,
            since=query.since,
            until=query.until,
            cursor=query.cursor,
            limit=query.limit,
        ),
    )
    return jsonify({"items": page.items, "next_cursor": page.next_cursor})


def json_body_refused() -> Response | None:
    """The problem for a JSON endpoint's body that is not JSON, or None: another Content-Type
    (a form, text/plain, XML) is 415 OSO-E608 and malformed JSON, or JSON that is no object,
    400 OSO-E606 saying so. Both were E606 naming a class of ours ("Input should be a valid
    dictionary or instance of SendBody": an integrator's walkthrough)."""
    from oso_gateway.web.api.problems import problem

    if not request.is_json:
        if not request.mimetype and not request.content_length:
            return _not_json("missing", "the body is missing: a JSON object is expected")
        return problem(ApiUnsupportedMediaType)
    try:
        value = json.loads(request.get_data(cache=True))
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return _not_json("json_invalid", "the body is not valid JSON")
    if not isinstance(value, dict):
        return _not_json("json_type", "the body must be a JSON object")
    return None


def _not_json(code: str, message: str) -> Response:
    from oso_gateway.errors import RequestInvalid
    from oso_gateway.web.api.problems import problem

    errors = [{"code": code, "location": "body", "message": message}]
    return problem(RequestInvalid, errors=errors, detail=message)


def xml_body() -> bytes:
    """The request body, which must be XML (``application/xml`` or ``text/xml``)."""
    if request.mimetype not in XML_TYPES:
        raise ApiUnsupportedMediaType(f"Content-Type {shown_media_type(request.mimetype)}")
    return request.get_data(cache=False)
