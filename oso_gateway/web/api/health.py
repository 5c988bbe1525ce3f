"""``/api/v1/health`` (liveness) and ``/api/v1/ready`` (readiness), without a credential."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models import Tag  # type: ignore[attr-defined]

from oso_gateway.errors import ApiNotReady
from oso_gateway.web.api import models as am
from oso_gateway.web.api.context import API_PREFIX, services
from oso_gateway.web.api.problems import problem, problem_response_spec

TAG = Tag(name="health", description="For load balancers and orchestrators (no credential)")
bp = APIBlueprint("health", __name__, url_prefix=API_PREFIX, abp_tags=[TAG])


@bp.get(
    "/health",
    operation_id="health",
    summary="Liveness: the process answers",
    responses={200: am.Health},
    security=[],
)
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get(
    "/ready",
    operation_id="ready",
    summary="Readiness: database, identities, CRLs and directory usable",
    responses={200: am.Ready, 503: problem_response_spec("Not ready (the reasons are logged)")},
    security=[],
)
def ready() -> Response:
    gateway = services()
    problems = gateway.readiness_problems(gateway.clock())
    if problems:
        import logging

        logging.getLogger(__name__).warning("not ready: %s", "; ".join(problems))
        return problem(ApiNotReady)
    return jsonify({"status": "ready"})
