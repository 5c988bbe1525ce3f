"""Rows for store tests: an outbound message queued, an inbound dossier imported (one shape for
every test that only needs such a row to exist)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from oso_gateway.store import Duplicate, Imported, PupilFacts, Store


def queue_outbound(
    store: Store, payload: bytes = b"<dossier/>", *, now: datetime, **extra: object
) -> int:
    """Queue ``payload`` from our gateway to gateway 2 (``extra``: more ``enqueue_outbound``
    arguments, such as a sealed envelope); returns the row's pk."""
    record = store.enqueue_outbound(
        message_id=f"urn:uuid:{uuid.uuid4()}",
        action="urn:oso:dossier:deliver",
        payload=payload,
        payload_digest="ab" * 32,
        now=now,
        our_oin="00000001000000000001",
        counterpart_oin="00000001000000000002",
        counterpart_school="01AB00",
        endpoint="https://gw2.example/oso",
        **extra,  # type: ignore[arg-type]
    )
    assert not isinstance(record, Duplicate)
    return record.pk


def import_received(
    store: Store,
    *,
    now: datetime,
    dossier: bytes = b"<dossier>content</dossier>",
    family_name: str = "Shredded",
) -> Imported:
    """Import ``dossier`` (its own message id and digest) from school 00YY00 for 01AB00, with
    the pupil ``family_name``, born 2014-05-06."""
    result = store.import_inbound(
        message_id=f"urn:uuid:{uuid.uuid4()}",
        action="urn:oso:dossier:deliver",
        dossier=dossier,
        payload_digest=uuid.uuid4().hex * 2,
        receipt=b"<receipt/>",
        now=now,
        counterpart_oin="00000001000000000001",
        counterpart_school="00YY00",
        our_school="01AB00",
        pupil=PupilFacts(family_name=family_name, birth_date=date(2014, 5, 6), bsn="123456782"),
    )
    assert isinstance(result, Imported)
    return result
