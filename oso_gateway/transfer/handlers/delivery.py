"""Message kind: dossier delivery (``wire.ACTION_DELIVER``), pushed or for a request.

Checks: the dossier's sending school (``huidigeschool``) has mandated the signing OIN (E431), the
dossier is within the size bound, valid (schema + rules) and holds no category that may not be
shared (E1xx). A delivery that relates to a request (``wsa:RelatesTo``, signed) must also match
that request (see ``oso_gateway.transfer.pull``): otherwise it is refused, never imported.
"""

from __future__ import annotations

from typing import Protocol

from lxml import etree

from oso_gateway.errors import XmlLimitExceeded
from oso_gateway.security.xmlparse import DEFAULT_LIMITS
from oso_gateway.transfer import wire
from oso_gateway.transfer.handlers.base import Accepted, Inbound, Persist
from oso_gateway.transfer.schools import School, sending_school


class DeliveryMatcher(Protocol):
    """Matches a delivery to the request it relates to (the requesting side's request store)."""

    def match_delivery(
        self, message: Inbound, *, request_id: str, sending: School, dossier: etree._Element
    ) -> Persist:
        """Raise a ``GatewayError`` when the delivery does not belong to the request; return
        what to write in the import transaction (the request becomes ``delivered``)."""
        ...


#: a serialised dossier larger than this is not held while the dossier is validated (the rules
#: decode each attachment): it is serialised again afterwards, which costs less than holding it
_HOLD_WHILE_VALIDATING = 8 * 1024 * 1024


def _serialise(dossier: etree._Element) -> bytes:
    return etree.tostring(dossier, encoding="utf-8", xml_declaration=True)


class DossierDelivery:
    action = wire.ACTION_DELIVER

    def __init__(self, *, matcher: DeliveryMatcher | None = None) -> None:
        self.matcher = matcher

    def accept(self, message: Inbound) -> Accepted:
        opened = message.opened
        sending = sending_school(opened.payload)
        message.directory.check_mandate(message.signer_oin, sending.brin, sending.vestiging)
        dossier: bytes | None = _serialise(opened.payload)
        assert dossier is not None
        if len(dossier) > DEFAULT_LIMITS.max_bytes:  # the bound of a dossier parsed on its own
            raise XmlLimitExceeded(f"dossier of {len(dossier)} bytes exceeds the limit")
        if len(dossier) > _HOLD_WHILE_VALIDATING:
            dossier = None  # serialised again below: not held while the rules decode attachments
        message.validator(opened.payload, message.now)
        if dossier is None:
            dossier = _serialise(opened.payload)
        persist = None
        if opened.relates_to is not None:
            from oso_gateway.errors import DeliveryRequestUnknown

            if self.matcher is None:
                raise DeliveryRequestUnknown("this gateway keeps no requests")
            persist = self.matcher.match_delivery(
                message, request_id=opened.relates_to, sending=sending, dossier=opened.payload
            )
        return Accepted(
            counterpart_school=sending,
            payload=dossier,
            dossier=opened.payload,
            relates_to=opened.relates_to,
            persist=persist,
        )
