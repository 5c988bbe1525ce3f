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
from oso_gateway.security import largetext
from oso_gateway.security.c14n import CUT_TEXT
from oso_gateway.security.xmlparse import DEFAULT_LIMITS, parse_xml
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


def _serialise(dossier: etree._Element) -> bytes:
    return etree.tostring(dossier, encoding="utf-8", xml_declaration=True)


def _parse(document: bytes) -> etree._Element:
    return parse_xml(document, limits=DEFAULT_LIMITS).getroot()


class DossierDelivery:
    action = wire.ACTION_DELIVER

    def __init__(self, *, matcher: DeliveryMatcher | None = None) -> None:
        self.matcher = matcher

    def accept(self, message: Inbound) -> Accepted:
        opened = message.opened
        sending = sending_school(opened.payload)
        message.directory.check_mandate(message.signer_oin, sending.brin, sending.vestiging)
        # The dossier is stored as lxml serialises it. A large one is made from the canonical
        # form with its attachments' base64 cut out (its size is known first, and the tree is
        # not serialised: libxml2 would hold about three times each large text node).
        large = largetext.serialise(opened.payload_c14n, parse=_parse, min_size=CUT_TEXT)
        dossier = None if large is not None else _serialise(opened.payload)
        size = large.size if large is not None else len(dossier or b"")
        if size > DEFAULT_LIMITS.max_bytes:  # the bound of a dossier parsed on its own
            raise XmlLimitExceeded(f"dossier of {size} bytes exceeds the limit")
        message.validator(opened.payload, message.now)
        if large is not None:
            dossier = large.build()
        assert dossier is not None
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
