"""The schools' inbox and outbox as services (used by the CLI and the school API alike).

A caller acts for a set of schools (``Scope``): an API client for the schools it was given, the
command line for every school the gateway serves. Everything here is scoped: a message of
another school is ``MessageNotFound`` (OSO-E602), exactly like a missing one.

* Inbox: list metadata only; show one with its events; export the dossier as OSO XML, as JSON in
  the stable shape of ``oso_gateway.dossier.jsonview``, or only chosen categories (the rest
  never leaves the store); acknowledge (``fetched``); decline with a reason (content dropped).
* Outbox: submit (validate, minimise, address, queue; an Idempotency-Key makes a retried submit
  return the same message; the same dossier for the same school within the duplicate window is
  ``DuplicateDossier``); dry-run (findings and the preview, nothing queued); list, show (with the
  verified receipt's content), retry, cancel (only before delivery), the receipt XML.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lxml import etree

from oso_gateway.errors import (
    ContentDropped,
    DuplicateDossier,
    GatewayError,
    IdempotencyKeyReused,
    MessageNotFound,
    NoReceipt,
    RequestInvalid,
    SchoolNotInScope,
    StatusConflict,
    UnknownCategory,
)
from oso_gateway.protocol import UUID_PATTERN, is_clean_text, shown_id
from oso_gateway.store import models as m
from oso_gateway.store.api_clients import ApiClientStore, remembering, stored_key
from oso_gateway.store.engine import is_conflict
from oso_gateway.store.mailbox import (
    Mailbox,
    MessageQuery,
    TransitionRefused,
    recheck_digest,
)
from oso_gateway.store.records import AfterInsert, in_turn
from oso_gateway.store.repository import EventRecord, MessageRecord, Store
from oso_gateway.transfer import wire
from oso_gateway.transfer.send import payload_version

MAX_PAGE = 200
DEFAULT_PAGE = 50
#: the default duplicate window: the same dossier for the same school within it is refused
DEFAULT_DUPLICATE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Scope:
    """The schools a caller acts for (BRIN + vestiging codes); None: every school (operator)."""

    schools: tuple[str, ...] | None
    client_id: str | None = None

    def allows(self, school: str | None) -> bool:
        return self.schools is None or (school is not None and school in self.schools)


EVERY_SCHOOL = Scope(None)


#: a page's items (named here: ``_Boxes.list`` hides the builtin inside the class)
Items = list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, kw_only=True)
class ListFilter:
    statuses: tuple[str, ...] = ()
    counterpart_school: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None
    limit: int = DEFAULT_PAGE


#: a MessageID given without its ``urn:uuid:`` prefix
_BARE_UUID = re.compile(UUID_PATTERN, re.IGNORECASE)
#: the start of a UUID as an operator types it (lower-cased): at least 4 characters
_UUID_PREFIX = re.compile(r"[0-9a-f][0-9a-f-]{3,35}")


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def summary(record: MessageRecord) -> dict[str, Any]:
    """A message's metadata (no pupil data): the stable JSON of list/show."""
    return {
        "message_id": record.message_id,
        "direction": record.direction,
        "status": record.status,
        "school": record.our_school,
        "counterpart_school": record.counterpart_school,
        "counterpart_oin": record.counterpart_oin,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
        "size_bytes": record.payload_size,
        "payload_digest": record.payload_digest,
        "categories": [c for c in (record.categories or "").split(",") if c],
        "attempts": record.attempts,
        "last_error_code": record.last_error_code,
        #: the dossier request this delivery answers (pull workflow; None: a push)
        "request_id": record.relates_to,
        #: when its content was erased (purge or erasure on request): a fetch then says so
        "purged_at": _iso(record.purged_at),
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "status": event.status,
        "attempt": event.attempt,
        "error_code": event.error_code,
    }


def _cursor(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise RequestInvalid("cursor: not a cursor this API returned")
    return int(text)


def parse_categories(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"a,b"`` or ``["a", "b"]`` → the keys (checked); None/empty: every category."""
    from oso_gateway.dossier.categories import BY_KEY

    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    keys = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not keys:
        return None
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        printable = tuple(k[:40] for k in unknown[:5] if k.isascii() and k.isprintable())
        # the keys only in ``keys`` (the API's errors, to the caller alone): the detail goes
        # to the process log, and a school system may send anything there (a name: a review)
        raise UnknownCategory(
            f"{len(unknown)} unknown category key(s)", keys=printable or ("(unprintable)",)
        )
    return keys


class _Boxes:
    """What the inbox and outbox services share."""

    direction: str
    #: the boxes hold dossiers: requests and answers of the pull workflow are ``request list``'s
    actions: tuple[str, ...] = (wire.ACTION_DELIVER,)

    def __init__(self, store: Store, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.mailbox = Mailbox(store)
        self.clock = clock

    def list(self, scope: Scope, where: ListFilter) -> Page:
        limit = max(1, min(where.limit, MAX_PAGE))
        rows = self.mailbox.list(
            MessageQuery(
                direction=self.direction,
                schools=scope.schools,
                statuses=where.statuses,
                counterpart_school=where.counterpart_school,
                since=where.since,
                until=where.until,
                before_pk=_cursor(where.cursor),
                limit=limit + 1,
                actions=self.actions,
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(
            items=self._items(rows),
            next_cursor=str(rows[-1].pk) if more and rows else None,
        )

    def _items(self, rows: Sequence[MessageRecord]) -> Items:
        return [summary(r) for r in rows]

    def find(self, scope: Scope, message_id: str) -> MessageRecord:
        """A message the scope's lists show. A school's client sees the dossiers there; the
        pull workflow's own messages (requests, answers) it handles through its requests, not
        as inbox or outbox items (an operator, every school's scope, reaches them all)."""
        if not message_id or len(message_id) > 100:
            raise MessageNotFound("message id empty or too long")
        if _BARE_UUID.fullmatch(message_id):  # as `log show` takes it: the urn:uuid: form
            message_id = "urn:uuid:" + message_id.lower()
        actions = None if scope.schools is None else self.actions
        record = self.mailbox.get(
            self.direction, message_id, schools=scope.schools, actions=actions
        )
        if record is None:
            box = "inbox" if self.direction == m.IN else "outbox"
            raise MessageNotFound(f"no message {shown_id(message_id)} in the {box}")
        return record

    def resolve(self, scope: Scope, text: str) -> str:
        """The MessageID that ``text`` names for an operator: a full id as it is, or a unique
        prefix (4 or more characters) of its UUID, as ``log show`` takes it."""
        wanted = text.strip().lower().removeprefix("urn:uuid:")
        if _BARE_UUID.fullmatch(wanted) or not _UUID_PREFIX.fullmatch(wanted):
            return text  # a full id, or not an id: ``find`` answers
        actions = None if scope.schools is None else self.actions
        box = "inbox" if self.direction == m.IN else "outbox"
        ids = self.mailbox.ids_starting(
            self.direction, "urn:uuid:" + wanted, schools=scope.schools, actions=actions
        )
        if len(ids) != 1:
            what = "no message" if not ids else "more than one message"
            raise MessageNotFound(f"{what} in the {box} starts with {wanted}")
        return ids[0]

    def show(self, scope: Scope, message_id: str) -> dict[str, Any]:
        record = self.find(scope, message_id)
        body = summary(record)
        body["events"] = [event_json(e) for e in self.store.events(record.pk)]
        return body

    def _transition(self, action: Callable[[], MessageRecord], what: str) -> MessageRecord:
        try:
            return action()
        except TransitionRefused as exc:
            raise StatusConflict(f"cannot {what} a message in status {exc.status}") from None


class InboxService(_Boxes):
    direction = m.IN

    def _items(self, rows: Sequence[MessageRecord]) -> Items:
        """A duplicate's item names its first copy, as its detail does (one read a page)."""
        firsts = self.store.message_ids([r.duplicate_of for r in rows if r.duplicate_of])
        items = super()._items(rows)
        for row, item in zip(rows, items, strict=True):
            if row.duplicate_of is not None:
                item["duplicate_of"] = firsts.get(row.duplicate_of)
        return items

    def show(self, scope: Scope, message_id: str) -> dict[str, Any]:
        body = super().show(scope, message_id)
        record = self.find(scope, message_id)
        if record.duplicate_of is not None:
            body["duplicate_of"] = self.store.get_message(record.duplicate_of).message_id
        if record.note is not None:
            reason = self.mailbox.decline_reason(record)
            if reason is not None:
                body["decline_reason"] = reason
        return body

    def _dossier_root(self, scope: Scope, message_id: str) -> etree._Element:
        from oso_gateway.security.xmlparse import ParseLimits, parse_xml

        record = self.find(scope, message_id)
        if record.duplicate_of is not None and record.status == m.DUPLICATE:
            record = self.store.get_message(record.duplicate_of)
        data = None if record.status == m.DECLINED else self.mailbox.dossier(record)
        if data is None:
            raise ContentDropped(f"message {message_id[:100]} has no stored dossier")
        root = parse_xml(data, limits=ParseLimits(max_bytes=len(data) + 1)).getroot()
        # the first time the school's system takes it out: subject access says when (it said
        # "not fetched" after a fetch, as nothing wrote it: a privacy walkthrough)
        from oso_gateway.store.lifecycle import Lifecycle

        Lifecycle(self.store.engine, self.store.cipher).acknowledge(
            record.pk, now=self.clock(), fetched_only=True
        )
        return root

    def export(
        self,
        scope: Scope,
        message_id: str,
        *,
        fmt: str = "xml",
        categories: tuple[str, ...] | None = None,
    ) -> bytes:
        """The dossier as OSO XML (``fmt="xml"``) or stable JSON (``"json"``), optionally only
        ``categories`` (plus those the schema requires)."""
        import json

        from oso_gateway.dossier.jsonview import dossier_json
        from oso_gateway.dossier.minimise import keep_categories

        if fmt not in ("xml", "json"):
            raise RequestInvalid("format must be xml or json")
        root = self._dossier_root(scope, message_id)
        if categories is not None:
            root = keep_categories(root, categories)
        if fmt == "json":
            body = dossier_json(root)
            body["message_id"] = message_id
            return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")
        return etree.tostring(root, encoding="utf-8", xml_declaration=True)

    def acknowledge(self, scope: Scope, message_id: str) -> dict[str, Any]:
        record = self.find(scope, message_id)
        now = self.clock()
        done = self._transition(lambda: self.mailbox.acknowledge(record.pk, now=now), "ack")
        return summary(done)

    def decline(self, scope: Scope, message_id: str, *, reason: str) -> dict[str, Any]:
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise RequestInvalid("reason: 1 to 500 characters")
        if not is_clean_text(reason):  # as the school API refuses it, for the CLI too
            raise RequestInvalid("reason: control or bidirectional-override characters")
        record = self.find(scope, message_id)
        now = self.clock()
        done = self._transition(
            lambda: self.mailbox.decline(record.pk, reason=reason, now=now), "decline"
        )
        return summary(done)


@dataclass(frozen=True, kw_only=True)
class Submitted:
    message: dict[str, Any]
    #: False: the Idempotency-Key named an earlier submit, which is returned
    created: bool
    removed: dict[str, int] = field(default_factory=dict)


class OutboxService(_Boxes):
    direction = m.OUT

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        prepare: Callable[..., Any],
        outbox: Any,
        duplicate_window: timedelta = DEFAULT_DUPLICATE_WINDOW,
        receipt_reader: Callable[[MessageRecord], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(store, clock=clock)
        self.receipt_reader = receipt_reader
        self.prepare = prepare  #: (data, to=School, now=) -> PreparedDossier (per school identity)
        self.outbox = outbox
        self.duplicate_window = duplicate_window
        self.clients = ApiClientStore(store.engine)

    def show(self, scope: Scope, message_id: str) -> dict[str, Any]:
        body = super().show(scope, message_id)
        record = self.find(scope, message_id)
        if record.status == m.DELIVERED and self.receipt_reader is not None:
            body["receipt"] = self.receipt_reader(record)
        return body

    def receipt(self, scope: Scope, message_id: str) -> bytes:
        record = self.find(scope, message_id)
        if record.status != m.DELIVERED or record.receipt is None:
            raise NoReceipt(f"message {message_id[:100]} is {record.status}")
        return record.receipt

    def retry(self, scope: Scope, message_id: str) -> dict[str, Any]:
        record = self.find(scope, message_id)
        now = self.clock()
        return summary(self._transition(lambda: self.mailbox.retry(record.pk, now=now), "retry"))

    def cancel(self, scope: Scope, message_id: str) -> dict[str, Any]:
        record = self.find(scope, message_id)
        now = self.clock()
        done = self._transition(lambda: self.mailbox.cancel(record.pk, now=now), "cancel")
        return summary(done)

    def submit(
        self,
        scope: Scope,
        data: bytes,
        *,
        to: Any,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Validate, minimise, address and queue ``data`` for school ``to`` (a ``School``)."""
        request_digest = hashlib.sha256(to.code.encode() + b"\n" + data).hexdigest()
        if idempotency_key is not None:
            earlier = self._idempotent(scope, idempotency_key, request_digest)
            if earlier is not None:
                return earlier
        now = self.clock()
        objections = getattr(self.outbox, "objections", None)
        prepared = self.prepare(data, to=to, now=now, **_scoped(objections, scope))
        if not scope.allows(prepared.sending_school.code):
            raise SchoolNotInScope(f"sending school {prepared.sending_school} not in scope")
        after = None
        if idempotency_key is not None and scope.client_id is not None:
            after = remembering(
                client_id=scope.client_id,
                key=self._stored_key(idempotency_key),
                request_digest=request_digest,
                now=now,
            )
        try:
            again = refuse_duplicate(
                self.mailbox, prepared, to=to, now=now, window=self.duplicate_window
            )
            record = self.outbox.enqueue(
                prepared, client_id=scope.client_id, after_insert=in_turn(again, after)
            )
        except Exception as exc:  # the same key raced us: answer with the winner's message
            raced = is_conflict(exc) or isinstance(exc, DuplicateDossier)
            if idempotency_key is None or not raced:
                raise
            earlier = self._idempotent(scope, idempotency_key, request_digest)
            if earlier is None:
                raise
            return earlier
        return Submitted(message=summary(record), created=True, removed=prepared.removed)

    def _idempotent(self, scope: Scope, key: str, request_digest: str) -> Submitted | None:
        if scope.client_id is None:
            return None
        if not key or len(key) > 200 or not key.isascii() or not key.isprintable():
            raise RequestInvalid("Idempotency-Key: 1 to 200 printable ASCII characters")
        known = self.clients.idempotency(scope.client_id, self._stored_key(key), legacy=key)
        if known is None:
            return None
        if known.request_digest != request_digest:
            raise IdempotencyKeyReused("Idempotency-Key reused with another body or school")
        message = self.store.get_message(known.message_pk)
        if not scope.allows(message.our_school):
            # a school of the credential's that this gateway no longer serves: its message is
            # out of scope here as everywhere else (the replay showed it: a review)
            raise MessageNotFound(f"no message {shown_id(message.message_id)} in the outbox")
        return Submitted(message=summary(message), created=False)

    def _stored_key(self, key: str) -> str:
        cipher = self.store.cipher
        assert cipher is not None  # the school API runs with the at-rest key
        return stored_key(cipher.provider.lookup_mac, key)

    def dry_run(self, scope: Scope, data: bytes, *, to: Any) -> dict[str, Any]:
        """What a submit would do: the validation findings and the preview of the categories
        kept and removed (counts only). Nothing is queued."""
        return dry_run_report(
            data,
            to=to,
            scope=scope,
            prepare=self.prepare,
            clock=self.clock,
            objections=getattr(self.outbox, "objections", None),
            gate=getattr(self.outbox, "gate", None),
            duplicate=lambda prepared: refuse_duplicate(
                self.mailbox, prepared, to=to, now=self.clock(), window=self.duplicate_window
            ),
        )


def refuse_duplicate(
    mailbox: Mailbox, prepared: Any, *, to: Any, now: datetime, window: timedelta
) -> AfterInsert | None:
    """The duplicate check of every way in (the API's submit, the ``send`` command): the same
    dossier (payload digest) that the same sending school queued for school ``to`` within
    ``window`` (``[duplicates] outbound_window_hours``; zero: never) is refused, E610, naming
    the first message.

    Checked now (before the work of queueing) and again inside the queueing transaction: the
    returned ``after_insert`` takes a lock on the dossier's digest (``lock_digest``) and looks
    again, so that of several submits of one dossier at once only the first is queued."""
    if window <= timedelta(0):
        return None
    school, digest = prepared.sending_school.code, prepared.payload_digest
    first = mailbox.first_with_digest(
        m.OUT,
        our_school=school,
        counterpart_school=to.code,
        payload_digest=digest,
        since=now - window,
    )
    if first is not None:
        raise _duplicate(first, to)

    return recheck_digest(
        our_school=school,
        counterpart_school=to.code,
        payload_digest=digest,
        since=now - window,
        refuse=lambda earlier: _duplicate(earlier, to),
    )


def _duplicate(first: MessageRecord, to: Any) -> DuplicateDossier:
    return DuplicateDossier(
        f"same dossier queued for {to} as {first.message_id}", original=first.message_id
    )


def dry_run_report(
    data: bytes,
    *,
    to: Any,
    scope: Scope,
    prepare: Callable[..., Any],
    clock: Callable[[], datetime],
    objections: Callable[[str, str], Sequence[str]] | None = None,
    gate: Callable[[Any], None] | None = None,
    duplicate: Callable[[Any], object] | None = None,
) -> dict[str, Any]:
    """``objections``: the parents' objections (``Outbox.objections``), shown as withheld.
    ``gate``: the outbox's gate (``Outbox.gate``: the push inzage, E471), as a submit meets it
    (a dry-run said "would queue" of a push the submit then refused: a walkthrough).
    ``duplicate``: the submit's duplicate check (``refuse_duplicate``: E610, with the first
    copy's id as ``duplicate_of``; it said "would queue" of a dossier already queued: an
    integrator's walkthrough). The report's ``version`` is the one an inzage names
    (``send.dossier_version``)."""
    from oso_gateway.dossier.minimise import minimise, with_opt_out
    from oso_gateway.dossier.preview import preview
    from oso_gateway.dossier.validate import validate_dossier
    from oso_gateway.errors import DossierError, DossierParseError
    from oso_gateway.security.xmlparse import ParseLimits, parse_xml

    now = clock()
    try:
        root = parse_xml(data, limits=ParseLimits(max_bytes=len(data) + 1)).getroot()
    except GatewayError:
        # as a submit refuses it (E101), with the parser's finding: its line and column
        return {
            "would_queue": False,
            "error_code": DossierParseError.code,
            "findings": [finding_json(f) for f in validate_dossier(data, now=now).findings],
            "categories": [],
        }
    try:
        if objections is not None:
            root = with_opt_out(root, _objections_in_scope(root, objections, scope))
        shown = preview(root)
        minimised = minimise(root)
        payload = etree.tostring(minimised.root, encoding="utf-8", xml_declaration=True)
        report = validate_dossier(payload, now=now)
        findings = [finding_json(f) for f in report.findings]
    except DossierError as exc:
        return {"would_queue": False, "error_code": exc.code, "findings": [], "categories": []}
    error_code = version = duplicate_of = None
    try:
        prepared = prepare(data, to=to, now=now, **_scoped(objections, scope))
        if not scope.allows(prepared.sending_school.code):
            raise SchoolNotInScope(f"sending school {prepared.sending_school} not in scope")
        version = payload_version(prepared.payload_digest)
        if gate is not None:
            gate(prepared)
        if duplicate is not None:
            duplicate(prepared)
    except DuplicateDossier as exc:
        error_code, duplicate_of = exc.code, exc.original
    except GatewayError as exc:
        error_code = exc.code
    return {
        "would_queue": error_code is None,
        "error_code": error_code,
        **({"duplicate_of": duplicate_of} if duplicate_of else {}),
        "version": version,
        "findings": findings,
        "categories": [
            {
                "key": c.key,
                "status": c.status,
                "present": c.present,
                "action": str(c.action),
                "attachments": c.attachments,
            }
            for c in shown.categories
        ],
    }


def _only_in(
    objections: Callable[[str, str], Sequence[str]], scope: Scope
) -> Callable[[str, str], Sequence[str]]:
    """``objections`` for the client's own schools only: for another school's dossier (which
    it is then refused, E603) the answer must not depend on whether those parents objected
    (an objection to a mandatory category refuses the dossier E105 first)."""

    def lookup(school: str, pupil_number: str) -> Sequence[str]:
        return objections(school, pupil_number) if scope.allows(school) else ()

    return lookup


def _scoped(objections: Callable[[str, str], Sequence[str]] | None, scope: Scope) -> dict[str, Any]:
    """The ``objections`` argument of a ``prepare`` on the client's behalf (``_only_in``)."""
    return {} if objections is None else {"objections": _only_in(objections, scope)}


def _objections_in_scope(
    root: etree._Element, objections: Callable[[str, str], Sequence[str]], scope: Scope
) -> Sequence[str]:
    """The parents' objections a dry-run shows (``_only_in``), and none for a dossier that
    names no sending school (validation then reports that, with its finding)."""
    from oso_gateway.errors import DossierError
    from oso_gateway.transfer.send import objections_of

    try:
        return objections_of(root, _only_in(objections, scope))
    except DossierError:
        return ()


def dossier_findings(data: bytes, *, now: datetime) -> list[dict[str, Any]]:
    """The validation findings of ``data`` as the sender checks it (after minimisation)."""
    from oso_gateway.dossier.minimise import minimise
    from oso_gateway.dossier.validate import validate_dossier
    from oso_gateway.security.xmlparse import ParseLimits, parse_xml

    try:
        root = parse_xml(data, limits=ParseLimits(max_bytes=len(data) + 1)).getroot()
        payload = etree.tostring(minimise(root).root, encoding="utf-8", xml_declaration=True)
    except GatewayError as exc:
        return [
            {"code": exc.code, "severity": "error", "path": "/", "line": None,
             "message": exc.public_message}
        ]  # fmt: skip
    return [finding_json(f) for f in validate_dossier(payload, now=now).findings]


def finding_json(finding: Any) -> dict[str, Any]:
    """A validation finding without any value from the dossier: code, severity, location."""
    return {
        "code": finding.code,
        "severity": str(finding.severity),
        "path": finding.path,
        "line": finding.line,
        "message": finding.message_en,
    }
