"""What an error code means, for operators: the one source for the CLI, the console and the docs.

A lookup in the registry: every error class lives in this package, so importing it registers every
code and ``describe`` imports nothing else.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from oso_gateway.errors.base import GatewayError, LocalError, RemoteError, error_class_for


@dataclass(frozen=True, kw_only=True)
class ErrorDescription:
    """What a code means, for operators."""

    code: str
    name: str
    side: str  #: "local" (our side), "remote" (the peer or the input), or "—"
    public_message: str  #: what the peer is told
    explanation: str  #: the class's own docstring (what our log records it for), or "—"
    transient: bool
    http_status: int
    soap_fault: str


def side_of(cls: type[GatewayError]) -> str:
    if issubclass(cls, LocalError):
        return "local"
    if issubclass(cls, RemoteError):
        return "remote"
    return "—"


def own_docstring(cls: type) -> str:
    """The class's own docstring on one line (not an inherited one), or "—"."""
    doc = cls.__dict__.get("__doc__")
    return " ".join(inspect.cleandoc(doc).split()) if doc else "—"


def describe_class(cls: type[GatewayError]) -> ErrorDescription:
    return ErrorDescription(
        code=cls.code,
        name=cls.__name__,
        side=side_of(cls),
        public_message=cls.public_message,
        explanation=own_docstring(cls),
        transient=cls.transient,
        http_status=cls.http_status,
        soap_fault=cls.soap_fault,
    )


def describe(code: str) -> ErrorDescription | None:
    """The description of ``code``; None for a code this gateway version does not know."""
    cls = error_class_for(code)
    return None if cls is None else describe_class(cls)


def sender_reading(code: str) -> str:
    """How a sender reads ``code`` answered by the receiving gateway ("" when the code's
    explanation reads the same from both sides)."""
    cls = error_class_for(code)
    return cls.sender_reading if cls is not None else ""
