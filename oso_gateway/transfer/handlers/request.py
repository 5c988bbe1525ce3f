"""Message kind: dossier request (``ACTION_REQUEST``, ``schemas/oso_gateway_request.xsd``).

The new school asks us (the old school) for a pupil's dossier. Checks: the payload matches its
schema and the pupil's identifier passes its 11-proef (E475, E483); its RequestID is the message's
own MessageID (E475); the old school it names is the school the message is addressed to, and the
requesting school has mandated the signing OIN (E480, E431). Stored as a ``received`` request with
the answer deadline from ``[pull] answer_days``; the pupil's facts encrypted at rest.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from oso_gateway.errors import RequestPayloadInvalid, RequestSchoolMismatch
from oso_gateway.store import models as m
from oso_gateway.store.pull import NewRequest, insert_request_in
from oso_gateway.transfer.handlers.base import Accepted, Inbound
from oso_gateway.transfer.pull import payloads as p
from oso_gateway.transfer.pull.service import RECEIVED, PullService


class DossierRequestHandler:
    action = p.ACTION_REQUEST

    def __init__(self, *, pull: PullService) -> None:
        self.pull = pull

    def accept(self, message: Inbound) -> Accepted:
        opened = message.opened
        request = p.parse_request(opened.payload)
        if request.request_id != opened.message_id:
            raise RequestPayloadInvalid("the RequestID is not the message's MessageID")
        if request.old_school != message.served.school:
            raise RequestSchoolMismatch(
                f"request names old school {request.old_school}, addressed to "
                f"{message.served.school}"
            )
        requesting = request.requesting_school
        message.directory.check_mandate(message.signer_oin, requesting.brin, requesting.vestiging)
        new = NewRequest(
            side=m.HOLDER,
            request_id=request.request_id,
            our_school=message.served.school.code,
            counterpart_school=requesting.code,
            counterpart_oin=message.signer_oin,
            status=RECEIVED,
            requested_date=request.requested_date.isoformat(),
            deadline=message.now + timedelta(days=self.pull.settings.answer_days),
            pupil=request.pupil.as_dict(),
        )
        cipher = self.pull.store.cipher

        def persist(session: Any, _record: Any) -> None:
            insert_request_in(session, cipher, new, now=message.now)

        return Accepted(
            counterpart_school=requesting,
            payload=_bytes(opened.payload),
            persist=persist,
        )


def _bytes(element: Any) -> bytes:
    from lxml import etree

    return etree.tostring(element, encoding="utf-8", xml_declaration=True)
