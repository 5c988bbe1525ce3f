"""Rows for store tests: an outbound message queued, an inbound dossier imported (one shape for
every test that only needs such a row to exist)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine

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
    bsn: str = "123456782",
    our_school: str = "01AB00",
    signer_oin: str = "00000001000000000001",
    message_id: str | None = None,
) -> Imported:
    """Import ``dossier`` (its own message id, unless given, and digest) from school 00YY00,
    signed by ``signer_oin``, for ``our_school``, with the pupil ``family_name`` and ``bsn``,
    born 2014-05-06."""
    result = store.import_inbound(
        message_id=message_id or f"urn:uuid:{uuid.uuid4()}",
        action="urn:oso:dossier:deliver",
        dossier=dossier,
        payload_digest=uuid.uuid4().hex * 2,
        receipt=b"<receipt/>",
        now=now,
        counterpart_oin=signer_oin,
        counterpart_school="00YY00",
        our_school=our_school,
        pupil=PupilFacts(family_name=family_name, birth_date=date(2014, 5, 6), bsn=bsn),
    )
    assert isinstance(result, Imported)
    return result


def sqlite_files(engine: Engine) -> bytes:
    """The SQLite database file and its WAL, as a copy of them would hold (to look for bytes
    that must be gone)."""
    path = Path(engine.url.database or "")
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def payload_blobs(engine: Engine, message_id: str) -> int:
    """How many stored blobs (payload, sealed envelope) an outbound message still has."""
    with engine.connect() as conn:
        count = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM outbox_blobs b JOIN messages x ON x.id = b.message_pk "
            "WHERE x.message_id = ? AND x.direction = 'out'",
            (message_id,),
        ).scalar_one()
    return int(count)
