"""``/api/v1/inzage``: the parents' inzage of a dossier a school's system (LAS) will push.

Under a school's ``push_requires_inzage`` policy a push is refused (E471) until the parents'
inzage of it is recorded. The LAS learns the version a push would send from a dry-run
(``POST /outbox/dry-run``: ``version``), shows the parents the dossier, and records the inzage
here, naming that version (``previewed``): then only that dossier passes the gate. Before, a
school on the API had to record every such inzage on the gateway's command line (a
walkthrough). A request's inzage is ``POST /requests/{id}/inzage``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models import Tag  # type: ignore[attr-defined]
from pydantic import BaseModel, ConfigDict, Field, model_validator

from oso_gateway.errors import SchoolNotInScope
from oso_gateway.transfer.schools import School
from oso_gateway.web.api import models as am
from oso_gateway.web.api.context import API_PREFIX, scope, services

TAG = Tag(name="inzage", description="The parents' inzage of a dossier to be pushed")
bp = APIBlueprint("inzage", __name__, url_prefix=API_PREFIX + "/inzage", abp_tags=[TAG])


class PushInzageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    school: str = Field(pattern=am.SCHOOL, description="Our school that will push (in scope)")
    pupil_id: str = Field(
        pattern=r"^[0-9]{9,10}$", description="The pupil's BSN or onderwijsnummer (11-proef)"
    )
    date: dt.date | None = Field(default=None, description="When the parents saw the dossier")
    how: Literal["meeting", "paper", "digital", "other"] | None = None
    zienswijze: str | None = Field(
        default=None, max_length=20000, pattern=am.TEXT, description="The parents' view"
    )
    waiver: str | None = Field(
        default=None, min_length=1, max_length=1000, pattern=am.TEXT, description="No inzage"
    )
    previewed: str | None = Field(
        default=None,
        pattern="^[0-9a-fA-F]{16}$",
        description="The version the parents were shown (a dry-run's `version`): then only a "
        "push of that version passes the gate (another: OSO-E471). Recommended.",
    )

    @model_validator(mode="after")
    def _one_or_the_other(self) -> PushInzageBody:
        if self.waiver is not None and (
            self.date is not None
            or self.how is not None
            or self.zienswijze is not None
            or self.previewed is not None
        ):
            raise ValueError(
                "give the inzage (date, how, zienswijze, previewed) or a waiver, not both"
            )
        return self


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
    services().pull.record_push_inzage(
        school=school,
        pupil_identifier=body.pupil_id,
        inzage_date=body.date,
        how=body.how,
        zienswijze=body.zienswijze,
        waiver=body.waiver,
        previewed=body.previewed,
    )
    previewed = body.previewed.lower() if body.previewed else None
    recorded = "waived" if body.waiver is not None else "inzage"
    return jsonify({"school": school.code, "recorded": recorded, "previewed": previewed})


__all__ = ["bp"]
