"""``/api/v1/outbox``: the sending school's outgoing dossiers."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models import Tag  # type: ignore[attr-defined]

from oso_gateway.errors import DossierError
from oso_gateway.transfer.schools import School
from oso_gateway.web.api import models as am
from oso_gateway.web.api.context import API_PREFIX, outbox, page_json, scope, xml_body
from oso_gateway.web.api.problems import problem, problem_response_spec

TAG = Tag(name="outbox", description="Outgoing dossiers (sending school)")
bp = APIBlueprint("outbox", __name__, url_prefix=API_PREFIX + "/outbox", abp_tags=[TAG])

#: the XML request body of submit and dry-run (flask-openapi3 describes JSON bodies only)
XML_BODY = {
    "required": True,
    "description": "The OSO gegevensset 2019 dossier (XML) as the LAS exports it",
    "content": {
        "application/xml": {"schema": {"type": "string"}},
        "text/xml": {"schema": {"type": "string"}},
    },
}


@bp.post(
    "/messages",
    operation_id="submitDossier",
    summary="Submit a dossier for a school: validate, minimise, seal, queue",
    description="An `Idempotency-Key` makes a retried submit return the same message (200); "
    "the same key with another body or school answers 409 (OSO-E604). The same dossier for the "
    "same school within the duplicate window answers 409 (OSO-E610, `duplicate_of`).",
    responses={200: am.Submitted, 201: am.Submitted},
    openapi_extensions={"x-oso-xml-body": True},
)
def submit_dossier(query: am.SubmitQuery, header: am.IdempotencyHeader) -> Response:
    data = xml_body()
    try:
        result = outbox().submit(
            scope(), data, to=School.parse(query.recipient), idempotency_key=header.idempotency_key
        )
    except DossierError as exc:
        return _invalid(exc, data)
    body = {"message": result.message, "created": result.created, "removed": result.removed}
    response = jsonify(body)
    response.status_code = 201 if result.created else 200
    return response


def _invalid(exc: DossierError, data: bytes) -> Response:
    """The dossier was refused: the problem lists the rule codes and their locations."""
    from oso_gateway.transfer.mailbox import dossier_findings

    findings = dossier_findings(data, now=outbox().clock())
    errors = [
        {"code": f["code"], "location": f["path"], "message": f["message"]}
        for f in findings
        if f["severity"] == "error"
    ]
    return problem(exc, errors=errors[:100])


@bp.post(
    "/dry-run",
    operation_id="dryRunDossier",
    summary="What a submit would do: findings and categories kept/removed; nothing is queued",
    responses={200: am.DryRun},
    openapi_extensions={"x-oso-xml-body": True},
)
def dry_run_dossier(query: am.SubmitQuery) -> Response:
    data = xml_body()
    return jsonify(outbox().dry_run(scope(), data, to=School.parse(query.recipient)))


@bp.get(
    "/messages",
    operation_id="listOutbox",
    summary="List outgoing dossiers, newest first",
    responses={200: am.MessagePage},
)
def list_outbox(query: am.OutboxListQuery) -> Response:
    return page_json(query, query.recipient, outbox())


@bp.get(
    "/messages/<message_id>",
    operation_id="getOutboxMessage",
    summary="One outgoing message: events and its verified receipt",
    responses={200: am.OutboxMessage},
)
def get_outbox_message(path: am.MessagePath) -> Response:
    return jsonify(outbox().show(scope(), path.message_id))


@bp.post(
    "/messages/<message_id>/retry",
    operation_id="retryOutboxMessage",
    summary="Send a failed (or waiting) message again now",
    responses={200: am.Message},
)
def retry_outbox_message(path: am.MessagePath) -> Response:
    return jsonify(outbox().retry(scope(), path.message_id))


@bp.post(
    "/messages/<message_id>/cancel",
    operation_id="cancelOutboxMessage",
    summary="Cancel a message before delivery (not while on the wire)",
    responses={200: am.Message},
)
def cancel_outbox_message(path: am.MessagePath) -> Response:
    return jsonify(outbox().cancel(scope(), path.message_id))


__all__ = ["XML_BODY", "bp", "problem_response_spec"]
