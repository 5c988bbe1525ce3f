"""The roots of the error tree and the registry of codes.

Every class that sets ``code`` registers itself here when its module is imported; two classes with
the same code are refused at import time.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    code: ClassVar[str] = "OSO-E000"
    http_status: ClassVar[int] = 500
    #: SOAP 1.1 fault code: "Client" (sender's fault) or "Server" (ours / transient)
    soap_fault: ClassVar[str] = "Server"
    #: True when retrying the same message later may succeed (sender keeps it in the outbox).
    transient: ClassVar[bool] = False
    #: What the peer is told. Coarse on purpose for authentication failures.
    public_message: ClassVar[str] = "The request could not be processed."
    #: How the SENDER reads this code when the receiving gateway answered with it, where the
    #: explanation (written from the receiver's side: "our identities") would read backwards.
    sender_reading: ClassVar[str] = ""
    #: The detail is written for the school's system that caused it (a state, a field name,
    #: a date it sent; never a value from a dossier): the school API answers it as the
    #: problem's ``detail`` instead of ``public_message``.
    client_detail: ClassVar[bool] = False

    def __init__(self, detail: str = "") -> None:
        self.detail = detail or self.public_message
        super().__init__(f"{self.code}: {self.detail}")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is not None:
            other = _REGISTRY.get(code)
            if other is not None and other is not cls:
                raise TypeError(f"duplicate error code {code}: {other.__name__} and {cls.__name__}")
            _REGISTRY[code] = cls


_REGISTRY: dict[str, type[GatewayError]] = {}


def error_class_for(code: str) -> type[GatewayError] | None:
    """The error class registered for a wire code, or None."""
    return _REGISTRY.get(code)


def all_error_classes() -> list[type[GatewayError]]:
    """Every registered error class, sorted by code (for docs and tests)."""
    return [_REGISTRY[c] for c in sorted(_REGISTRY)]


class LocalError(GatewayError):
    """We misused something or are misconfigured."""

    code = "OSO-E500"
    http_status = 500
    soap_fault = "Server"
    public_message = "Internal error at the receiving gateway."


class RemoteError(GatewayError):
    """The peer or the input sent something bad."""

    code = "OSO-E001"
    http_status = 400
    soap_fault = "Client"
    public_message = "The message was rejected."
