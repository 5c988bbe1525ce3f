"""The receive path's message kinds: one handler per ``wsa:Action`` (see ``base``).

Adding a kind: a module here with a handler class (``action`` + ``accept``), its payload XSD in
``schemas/``, and ONE line in ``default_handlers`` below. The receive service has no branch per
kind; the outbox sends any kind (``Outbox.enqueue`` takes the action). docs/architecture.md walks
through it.
"""

from __future__ import annotations

from collections.abc import Mapping

from oso_gateway.transfer.handlers.base import Accepted, Handler, Inbound, Persist

__all__ = ["Accepted", "Handler", "Inbound", "Persist", "default_handlers"]


def default_handlers(*, requests: object | None = None) -> Mapping[str, Handler]:
    """The registered kinds, by action. ``requests``: the pull-request service (None: this
    gateway keeps no requests, so request-related kinds are refused)."""
    from oso_gateway.transfer.handlers.delivery import DossierDelivery
    from oso_gateway.transfer.handlers.receipt import ReceiptHandler

    handlers: tuple[Handler, ...] = (
        DossierDelivery(matcher=requests),  # type: ignore[arg-type]
        ReceiptHandler(),
    )
    return {handler.action: handler for handler in handlers}
