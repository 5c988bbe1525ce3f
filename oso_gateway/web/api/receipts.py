"""``/api/v1/receipts``: the signed receipt of a delivered message (the sender's proof)."""

from __future__ import annotations

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models import Tag  # type: ignore[attr-defined]

from oso_gateway.web.api import models as am
from oso_gateway.web.api.context import API_PREFIX, outbox, scope

TAG = Tag(name="receipts", description="Signed receipts of delivered messages")
bp = APIBlueprint("receipts", __name__, url_prefix=API_PREFIX + "/receipts", abp_tags=[TAG])


@bp.get(
    "/<message_id>",
    operation_id="getReceipt",
    summary="The signed receipt (SOAP envelope, XML) the receiving gateway answered with",
    description="Verified (signature, certificate path, confirmation of our signature and "
    "payload digest) when it arrived; `GET /outbox/messages/{id}` shows its content re-verified.",
    responses={
        200: {
            "description": "The sealed receipt as received",
            "content": {"application/xml": {"schema": {"type": "string"}}},
        }
    },
)
def get_receipt(path: am.MessagePath) -> Response:
    return Response(outbox().receipt(scope(), path.message_id), mimetype="application/xml")
