"""``/api/v1/inbox``: the receiving school's received dossiers."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models import Tag  # type: ignore[attr-defined]

from oso_gateway.transfer.mailbox import parse_categories
from oso_gateway.web.api import models as am
from oso_gateway.web.api.context import API_PREFIX, inbox, page_json, scope
from oso_gateway.web.api.problems import problem_response_spec

TAG = Tag(name="inbox", description="Received dossiers (receiving school)")
bp = APIBlueprint("inbox", __name__, url_prefix=API_PREFIX + "/inbox", abp_tags=[TAG])

_DOSSIER = {
    "description": "The dossier: OSO XML, or JSON in the documented stable shape",
    "content": {
        "application/xml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
}


@bp.get(
    "/messages",
    operation_id="listInbox",
    summary="List received dossiers (metadata only), newest first",
    responses={200: am.InboxPage},
)
def list_inbox(query: am.InboxListQuery) -> Response:
    return page_json(query, query.sender, inbox())


@bp.get(
    "/messages/<message_id>",
    operation_id="getInboxMessage",
    summary="One received message: metadata and events",
    responses={200: am.InboxMessage},
)
def get_inbox_message(path: am.MessagePath) -> Response:
    return jsonify(inbox().show(scope(), path.message_id))


@bp.get(
    "/messages/<message_id>/dossier",
    operation_id="getInboxDossier",
    summary="The dossier as OSO XML or JSON, optionally only chosen categories",
    responses={200: _DOSSIER, 410: problem_response_spec("The content was dropped (declined)")},
)
def get_inbox_dossier(path: am.MessagePath, query: am.DossierQuery) -> Response:
    data = inbox().export(
        scope(), path.message_id, fmt=query.format, categories=parse_categories(query.categories)
    )
    mimetype = "application/json" if query.format == "json" else "application/xml"
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post(
    "/messages/<message_id>/ack",
    operation_id="ackInboxMessage",
    summary="Acknowledge: the school's system has taken the dossier (status fetched)",
    responses={200: am.Message},
)
def ack_inbox_message(path: am.MessagePath) -> Response:
    return jsonify(inbox().acknowledge(scope(), path.message_id))


@bp.post(
    "/messages/<message_id>/decline",
    operation_id="declineInboxMessage",
    summary="Decline with a reason: the content is dropped, the record kept for audit",
    responses={200: am.Message},
)
def decline_inbox_message(path: am.MessagePath, body: am.DeclineBody) -> Response:
    return jsonify(inbox().decline(scope(), path.message_id, reason=body.reason))
