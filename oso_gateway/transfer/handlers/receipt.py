"""Message kind: receipt (``wire.ACTION_RECEIPT``).

A receipt is the signed answer to every other kind, sealed here for the receive service and
checked by the sender (``oso_gateway.transfer.send.verify_receipt``). It never arrives on its own:
a receipt posted as a message is refused (E452), since it confirms nothing we sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509

from oso_gateway.errors import GatewayError, UnexpectedAction
from oso_gateway.security.namespaces import WSA_ANONYMOUS
from oso_gateway.security.wss import KT_RSA_OAEP, Identity, OpenedMessage
from oso_gateway.security.wss import seal as wss_seal
from oso_gateway.transfer import wire
from oso_gateway.transfer.handlers.base import Accepted, Inbound

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.transfer.schools import DirectoryLike, School, ServedSchool


class ReceiptHandler:
    action = wire.ACTION_RECEIPT

    def accept(self, message: Inbound) -> Accepted:
        raise UnexpectedAction("a receipt arrived as a message of its own")


def seal_receipt(
    opened: OpenedMessage,
    *,
    served: ServedSchool,
    counterpart: School,
    signer_oin: str,
    payload_size: int,
    directory: DirectoryLike,
    sender: Identity,
    ttl: timedelta,
    now: datetime,
) -> bytes:
    """The sealed receipt for an accepted message of any kind (RelatesTo, SignatureConfirmation)."""
    payload = wire.build_receipt(
        wire.Receipt(
            request_message_id=opened.message_id,
            status="imported",
            received_at=now,
            payload_digest=opened.payload_digest,
            payload_bytes=payload_size,
            receiver_brin=served.school.brin,
            receiver_vestiging=served.school.vestiging,
        )
    )
    certificate, key_transport = _recipient(opened, counterpart, signer_oin, directory)
    sealed = wss_seal(
        payload,
        sender=sender,
        recipient_certificate=certificate,
        to=f"{WSA_ANONYMOUS}?oin={signer_oin}",
        action=wire.ACTION_RECEIPT,
        message_id=f"urn:uuid:{uuid.uuid4()}",
        now=now,
        relates_to=opened.message_id,
        signature_confirmation=opened.signature_value,
        key_transport=key_transport,
        ttl=ttl,
    )
    return sealed.data


def _recipient(
    opened: OpenedMessage, counterpart: School, signer_oin: str, directory: DirectoryLike
) -> tuple[x509.Certificate, str]:
    """The sender's encryption certificate from the directory, else its signing certificate."""
    try:
        entry = directory.lookup(counterpart.brin, counterpart.vestiging)
    except GatewayError:
        entry = None
    if entry is not None and entry.oin == signer_oin:
        return entry.encryption_certificate, entry.key_transport
    return opened.signer.certificate, KT_RSA_OAEP
