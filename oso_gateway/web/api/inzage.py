"""``/api/v1/inzage``: the parents' inzage of a dossier a school's system (LAS) will push.

Under a school's ``push_requires_inzage`` policy a push is refused (E471) until the parents'
inzage of it is recorded. The LAS learns the version a push would send from a dry-run
(``POST /outbox/dry-run``: ``version``), shows the parents the dossier, and records the inzage
here, naming that version (``previewed``): then only that dossier passes the gate. Before, a
school on the API had to record every such inzage on the gateway's command line (a
walkthrough). A request's inzage is ``POST /requests/{id}/inzage``.
"""

from __future__ import annotations

from typing import Literal

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models import Tag  # type: ignore[attr-defined]
from pydantic import BaseModel, Field

from oso_gateway.errors import SchoolNotInScope
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import typed_version
from oso_gateway.web.api import models as am
from oso_gateway.web.api.context import API_PREFIX, scope, services
from oso_gateway.web.api.requests import InzageBody, inzage_refused

TAG = Tag(name="inzage", description="The parents' inzage of a dossier to be pushed")
bp = APIBlueprint("inzage", __name__, url_prefix=API_PREFIX + "/inzage", abp_tags=[TAG])


class PushInzageBody(InzageBody):
    """The inzage of a push: the request's inzage body, with the school and the pupil."""

    school: str = Field(pattern=am.SCHOOL, description="Our school that will push (in scope)")
    pupil_id: str = Field(
        pattern=r"^[0-9]{9,10}$", description="The pupil's BSN or onderwijsnummer (11-proef)"
    )


class PushInzageRecorded(BaseModel):
    school: str
    recorded: Literal["inzage", "waived"]
    previewed: str | None


@bp.post(
    "",
    operation_id="recordPushInzage",
    summary="Record the parents' inzage (or its waiver, where the policy allows) of a dossier "
    "the school will push",
    responses={200: PushInzageRecorded},
)
def record_push_inzage(body: PushInzageBody) -> Response:
    school = School.parse(body.school)
    if not scope().allows(school.code):
        raise SchoolNotInScope(f"school {school.code} is not one of this credential's")
    refused = inzage_refused(body, services().clock())
    if refused is not None:
        return refused
    services().pull.record_push_inzage(
        school=school,
        pupil_identifier=body.pupil_id,
        inzage_date=body.date,
        how=body.how,
        zienswijze=body.zienswijze,
        waiver=body.waiver,
        previewed=body.previewed,
    )
    previewed = typed_version(body.previewed) if body.previewed else None
    recorded = "waived" if body.waiver is not None else "inzage"
    return jsonify({"school": school.code, "recorded": recorded, "previewed": previewed})


__all__ = ["bp"]
