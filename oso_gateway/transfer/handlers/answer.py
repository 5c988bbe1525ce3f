"""Message kind: request answer (``ACTION_ANSWER``, ``schemas/oso_gateway_answer.xsd``).

From the old school to the new one: accepted (with a ready-by date) or declined (reason code,
optional text); from the new school to the old one: withdrawn. Checks: the payload matches its
schema (E475), its RequestID is the message's ``wsa:RelatesTo``, the schools it names are the
addressed school and a school that mandated the signer (E480, E431), the request exists between
those schools on our side (E481), and the request's state allows the answer (E482).

Transitions, new school (requester): sent → accepted; sent | accepted → declined.
Old school (holder): received | accepted → withdrawn (a dossier held for inzage is dropped, a
queued delivery cancelled).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from oso_gateway.errors import (
    AnswerNotAllowed,
    AnswerRequestUnknown,
    RequestPayloadInvalid,
    RequestSchoolMismatch,
)
from oso_gateway.store import models as m
from oso_gateway.store.pull import find_request_in, transition_in
from oso_gateway.transfer.handlers.base import Accepted, Inbound
from oso_gateway.transfer.pull import payloads as p
from oso_gateway.transfer.pull.service import (
    ACCEPTED,
    DECLINED,
    RECEIVED,
    SENT,
    WITHDRAWN,
    PullService,
)

#: (our side, outcome) → the states it may come from
_ALLOWED = {
    (m.REQUESTER, p.ACCEPTED): (SENT,),
    (m.REQUESTER, p.DECLINED): (SENT, ACCEPTED),
    (m.HOLDER, p.WITHDRAWN): (RECEIVED, ACCEPTED),
}
_NEW_STATUS = {p.ACCEPTED: ACCEPTED, p.DECLINED: DECLINED, p.WITHDRAWN: WITHDRAWN}


class RequestAnswerHandler:
    action = p.ACTION_ANSWER

    def __init__(self, *, pull: PullService) -> None:
        self.pull = pull

    def accept(self, message: Inbound) -> Accepted:
        opened = message.opened
        answer = p.parse_answer(opened.payload)
        if opened.relates_to != answer.request_id:
            raise RequestPayloadInvalid("the answer's RequestID is not its wsa:RelatesTo")
        if answer.recipient != message.served.school:
            raise RequestSchoolMismatch(
                f"answer names school {answer.recipient}, addressed to {message.served.school}"
            )
        sender = answer.sender
        message.directory.check_mandate(message.signer_oin, sender.brin, sender.vestiging)
        side = m.HOLDER if answer.outcome == p.WITHDRAWN else m.REQUESTER
        record = self.pull.requests.find(
            side=side, request_id=answer.request_id, counterpart_oin=message.signer_oin
        )
        if (
            record is None
            or record.our_school != message.served.school.code
            or record.counterpart_school != sender.code
        ):
            raise AnswerRequestUnknown(f"{answer.outcome} for unknown request {answer.request_id}")
        if record.status not in _ALLOWED.get((side, answer.outcome), ()):
            raise AnswerNotAllowed(
                f"{answer.outcome} for request {answer.request_id}, which is {record.status}"
            )
        cipher = self.pull.store.cipher
        fields: dict[str, Any] = {}
        if answer.ready_by is not None:
            fields["ready_by"] = answer.ready_by.isoformat()
        if answer.reason is not None:
            fields["decline_reason"] = answer.reason

        dropped: list[str] = []  # what a withdrawal erased: the WAL is flushed after commit

        def persist(session: Any, _record: Any) -> None:
            current = find_request_in(
                session, side=side, request_id=answer.request_id, counterpart_oin=message.signer_oin
            )
            if current is None or current.status not in _ALLOWED[(side, answer.outcome)]:
                raise AnswerNotAllowed(f"request {answer.request_id} changed meanwhile")
            # an answer to our request proves it arrived: no error of its message stands
            cleared = {"last_error_code": None} if side == m.REQUESTER else {}
            transition_in(
                session,
                cipher,
                current.pk,
                status=_NEW_STATUS[answer.outcome],
                now=message.now,
                code=answer.reason,
                decline_text=answer.text,
                **fields,
                **cleared,
            )
            if side == m.HOLDER:
                from oso_gateway.store.mailbox import cancel_outbound_in
                from oso_gateway.store.pull import drop_held_in

                if current.held:
                    dropped.append("held dossier")
                drop_held_in(session, current.pk)
                # the dossier was queued already: it no longer leaves (unless on the wire now)
                if current.delivery_message_id is not None and cancel_outbound_in(
                    session, current.delivery_message_id, now=message.now
                ):
                    dropped.append("queued delivery")

        def flush_dropped() -> None:
            if dropped:  # no image of the dropped dossier stays in SQLite's WAL
                self.pull.store.checkpoint_after_delete()

        return Accepted(
            counterpart_school=sender,
            payload=etree.tostring(opened.payload, encoding="utf-8", xml_declaration=True),
            relates_to=answer.request_id,
            persist=persist,
            after_commit=flush_dropped,
        )
