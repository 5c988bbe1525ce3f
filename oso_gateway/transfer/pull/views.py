"""The JSON shape of a dossier request, shared by the CLI (``request … --json``) and the school
API (``/api/v1/requests``). No pupil data: callers that may show the pupil add it themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oso_gateway.store.pull import OPEN_STATUSES, InzageEntry, RequestRecord, effective_status


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def request_dict(record: RequestRecord, now: datetime) -> dict[str, Any]:
    """A request as JSON (no pupil data)."""
    status = effective_status(record, now)
    return {
        "request_id": record.request_id,
        "side": "sent" if record.side == "requester" else "received",
        "our_school": record.our_school,
        "counterpart_school": record.counterpart_school,
        "counterpart_oin": record.counterpart_oin,
        "status": status,
        "requested_date": record.requested_date,
        "deadline": _iso(record.deadline),
        "overdue": status in OPEN_STATUSES and record.deadline < now,
        "ready_by": record.ready_by,
        "decline_reason": record.decline_reason,
        "delivery_message_id": record.delivery_message_id,
        "dossier_held_for_inzage": record.held,
        "name_warning": record.name_warning,
        "last_error_code": record.last_error_code,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
    }


def inzage_dict(entry: InzageEntry | None) -> dict[str, Any] | None:
    """A request's inzage record as the old school sees it (no free text: whether the parents
    gave a view, not the view), with the version the parents were shown when it named one."""
    if entry is None:
        return None
    return {
        "date": entry.inzage_date,
        "how": entry.how,
        "zienswijze": entry.zienswijze,
        "waived": entry.waived,
        "recorded_at": _iso(entry.recorded_at),
        "previewed": entry.previewed,
    }
