"""The receive path's message kinds: one handler per ``wsa:Action`` (see ``base``).

Adding a kind: a module here with a handler class (``action`` + ``accept``), its payload XSD in
``schemas/``, and ONE line in ``default_handlers`` below. The receive service has no branch per
kind; the outbox sends any kind (``Outbox.enqueue`` takes the action). docs/architecture.md walks
through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from oso_gateway.transfer.handlers.base import Accepted, Handler, Inbound, Persist

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.transfer.pull.service import PullService

__all__ = ["Accepted", "Handler", "Inbound", "Persist", "default_handlers"]


def default_handlers(*, pull: PullService | None = None) -> Mapping[str, Handler]:
    """The registered kinds, by action. ``pull``: the pull workflow's service (None: this
    gateway keeps no requests: a request or an answer is refused, E452, and a delivery that
    relates to a request is refused, E476)."""
    from oso_gateway.transfer.handlers.delivery import DossierDelivery
    from oso_gateway.transfer.handlers.receipt import ReceiptHandler

    handlers: list[Handler] = [DossierDelivery(matcher=pull), ReceiptHandler()]
    if pull is not None:
        from oso_gateway.transfer.handlers.answer import RequestAnswerHandler
        from oso_gateway.transfer.handlers.request import DossierRequestHandler

        handlers.append(DossierRequestHandler(pull=pull))
        handlers.append(RequestAnswerHandler(pull=pull))
    return {handler.action: handler for handler in handlers}
