"""The school API's request and response models (pydantic v2): the OpenAPI document's schemas.

Responses are built by the services as plain dicts (``oso_gateway.transfer.mailbox``); these
models describe them (and the schemathesis run checks every answer against them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from oso_gateway.protocol import (
    FREE_TEXT_FORBIDDEN,
    MESSAGE_ID_PATTERN,
    NAME_FORBIDDEN,
    SCHOOL_BRIN_PATTERN,
    VESTIGING_PATTERN,
)
from oso_gateway.store import models as m
from oso_gateway.transfer.mailbox import DEFAULT_PAGE, MAX_PAGE

MESSAGE_ID = f"^{MESSAGE_ID_PATTERN}$"
#: free text a person types (a reason, a view) and a name (one line): ``protocol``'s classes
TEXT = f"^[^{FREE_TEXT_FORBIDDEN}]*$"
NAME = f"^[^{NAME_FORBIDDEN}]*$"
SCHOOL = f"^{SCHOOL_BRIN_PATTERN}{VESTIGING_PATTERN}$"  # as School.parse_new takes them
#: a category list's form: the keys themselves are checked by the service, so that an unknown
#: or miscased key (``Verzuim``) is E612 naming it, as on the command line (it was E606)
CATEGORIES = r"^[A-Za-z ,_-]+$"

InboxStatus = Literal["imported", "fetched", "declined", "duplicate"]
OutboxStatus = Literal[
    "queued", "sending", "awaiting_receipt", "delivered", "retrying", "failed", "cancelled"
]
assert set(OutboxStatus.__args__) == set(m.OUTBOUND_STATUSES)  # type: ignore[attr-defined]


class Event(BaseModel):
    at: str
    status: str
    attempt: int | None = None
    error_code: str | None = None


class Message(BaseModel):
    """A message's metadata: never pupil data."""

    message_id: str
    direction: Literal["in", "out"]
    status: str
    school: str | None = Field(description="Our school (BRIN + vestiging)")
    counterpart_school: str | None = Field(description="The other school")
    counterpart_oin: str | None
    created_at: str
    updated_at: str
    size_bytes: int | None
    payload_digest: str | None = Field(description="SHA-256 of the dossier as sent (hex)")
    categories: list[str] = Field(description="categorie_uitlevering keys the dossier holds")
    attempts: int
    last_error_code: str | None
    request_id: str | None = Field(
        default=None, description="The dossier request this delivery answers (null: a push)"
    )
    purged_at: str | None = Field(
        default=None,
        description="When its content was erased (retention purge or erasure on request); "
        "null: the content is held",
    )


class MessagePage(BaseModel):
    items: list[Message]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class InboxItem(Message):
    duplicate_of: str | None = Field(
        default=None, description="A duplicate's first copy (its MessageID); absent otherwise"
    )


class InboxPage(BaseModel):
    items: list[InboxItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class InboxMessage(InboxItem):
    events: list[Event]
    decline_reason: str | None = None


class Receipt(BaseModel):
    """The receipt's content, verified again (signature, certificate, confirmation)."""

    verified: bool
    error_code: str | None = None
    request_message_id: str | None = None
    status: str | None = None
    received_at: str | None = None
    receiver_school: str | None = None
    payload_digest: str | None = None
    payload_bytes: int | None = None
    signer_fingerprint: str | None = None


class OutboxMessage(Message):
    events: list[Event]
    receipt: Receipt | None = None


class Submitted(BaseModel):
    message: Message
    created: bool = Field(description="false: the Idempotency-Key named an earlier submit")
    removed: dict[str, int] = Field(description="Elements removed per category (minimisation)")


class Finding(BaseModel):
    """A validation finding: rule code and location, never a value from the dossier."""

    code: str
    severity: str
    path: str
    line: int | None = None
    message: str


class CategoryPreview(BaseModel):
    key: str
    status: str | None
    present: bool
    action: str = Field(description="shared, removed, absent or missing")
    attachments: int


class DryRun(BaseModel):
    would_queue: bool
    error_code: str | None
    duplicate_of: str | None = Field(
        default=None,
        description="With error_code OSO-E610: the MessageID of the copy already queued",
    )
    version: str | None = Field(
        description="The dossier's version as it would leave (16 hex digits): what a push "
        "inzage names (`previewed`); null when it would not be prepared"
    )
    findings: list[Finding]
    categories: list[CategoryPreview]


class ProblemError(BaseModel):
    code: str = Field(description="Rule or field code")
    location: str = Field(description="Element path or request field")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with our stable error code."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable error code, OSO-Exxx (docs/errors.md)")
    instance: str | None = None
    errors: list[ProblemError] | None = None
    duplicate_of: str | None = None


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]


# --- requests -------------------------------------------------------------------------------


class MessagePath(BaseModel):
    message_id: str = Field(max_length=100, description="The MessageID (urn:uuid:...)")


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime | None = Field(
        default=None, description="Created at or after (ISO 8601; without a zone: UTC)"
    )
    until: datetime | None = Field(
        default=None, description="Created before (ISO 8601; without a zone: UTC)"
    )

    @field_validator("since", "until")
    @classmethod
    def _utc_unless_zoned(cls, value: datetime | None) -> datetime | None:
        """A date or a time without a zone (``2026-12-01``) is UTC, as the CLI reads it (it was
        compared with the store's zoned times and answered 500)."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,18}$", description="From a page")
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class InboxListQuery(ListQuery):
    status: InboxStatus | None = None
    sender: str | None = Field(default=None, pattern=SCHOOL, description="Sending school")


class OutboxListQuery(ListQuery):
    status: OutboxStatus | None = None
    recipient: str | None = Field(default=None, pattern=SCHOOL, description="Receiving school")


class DossierQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["xml", "json"] = "xml"
    categories: str | None = Field(
        default=None,
        pattern=CATEGORIES,
        max_length=400,
        description="Only these categorie_uitlevering keys (comma-separated), plus the ones the "
        "schema requires (metadata, school, leerling); the rest never leaves the store",
    )


class SubmitQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: str = Field(pattern=SCHOOL, description="Receiving school: BRIN + vestiging")


class IdempotencyHeader(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Same key + same body: the same message; same key + other body: 409",
    )


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=500,
        pattern=TEXT,
        description="Kept for audit, never logged (no control characters)",
    )
