"""What a message-kind handler receives and returns (the seam of the receive path).

The receive service does the steps every kind shares: open and verify the sealed message, find
the school it is addressed to, answer a duplicate with its original receipt. It then hands the
verified message to the ONE handler registered for its ``wsa:Action``. The handler checks what is
particular to its kind (payload schema, mandate, state) and returns ``Accepted``: what to store.
The service seals the receipt and stores message, receipt and the handler's own rows in one
transaction. A handler rejects by raising a ``GatewayError``; nothing is stored then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from lxml import etree

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.security.wss import OpenedMessage
    from oso_gateway.transfer.receive import Validator
    from oso_gateway.transfer.schools import DirectoryLike, School, ServedSchool

#: Runs inside the import transaction with the store's session and the stored message row; it
#: writes the kind's own rows through a ``store`` repository function (no SQL in a handler).
Persist = Callable[[Any, Any], None]


@dataclass(frozen=True, kw_only=True)
class Inbound:
    """A verified message, addressed to one school we serve, seen for the first time."""

    opened: OpenedMessage
    served: ServedSchool
    signer_oin: str
    directory: DirectoryLike
    validator: Validator
    now: datetime


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """A handler's decision to accept: what the receipt confirms and what the store keeps."""

    #: the school on whose behalf the signer sent it (mandate already checked by the handler)
    counterpart_school: School
    #: the payload as received (its size goes into the receipt; a dossier is stored encrypted)
    payload: bytes
    #: a dossier to import (stored encrypted, with its searchable fields); None: no dossier
    dossier: etree._Element | None = None
    #: the request this message answers or delivers for (``wsa:RelatesTo``), if any
    relates_to: str | None = None
    #: the kind's own rows, written in the import transaction
    persist: Persist | None = None
    #: run once that transaction committed (e.g. flush content it deleted from the WAL)
    after_commit: Callable[[], object] | None = None


class Handler(Protocol):
    """One message kind on the receiving side."""

    #: the ``wsa:Action`` it handles (its registration key)
    action: str

    def accept(self, message: Inbound) -> Accepted:
        """Check the kind's rules; raise a ``GatewayError`` to reject."""
        ...
