"""The store the services use: one facade (``Store``) over the repositories, each in its module:

* ``store.outbox``: outbound messages (queue, claim, attempts, receipts, retries);
* ``store.inbound``: the exactly-once import of inbound messages, and rejections;
* ``store.messages``: messages and events as services and the console ask for them;
* ``store.dossiers``: imported dossiers and their encrypted search index;
* the transfer log (below); ``store.group_commit`` shares COMMITs between concurrent imports.

Every method is one transaction and returns plain frozen records (``store.records``: no ORM
objects leak out), so callers never hold a session. Time is always an argument (``now``: an
aware datetime).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from oso_gateway.store import translog
from oso_gateway.store.engine import checkpoint_after_delete
from oso_gateway.store.inbound import InboundRepository
from oso_gateway.store.logchain import StoredEvent
from oso_gateway.store.outbox import OutboxRepository
from oso_gateway.store.records import (
    AfterInsert,
    DossierSummary,
    Duplicate,
    EventRecord,
    Imported,
    MessageRecord,
    PupilFacts,
)

__all__ = [
    "AfterInsert",
    "DossierSummary",
    "Duplicate",
    "EventRecord",
    "Imported",
    "MessageRecord",
    "PupilFacts",
    "Store",
]


class Store(OutboxRepository, InboundRepository):
    """Repository over one engine. ``cipher`` is needed for anything stored encrypted."""

    def checkpoint_after_delete(self) -> bool:
        """``engine.checkpoint_after_delete``: bounded, and never failing the deletion."""
        return checkpoint_after_delete(self.engine)

    def append_log(
        self, events: Sequence[Mapping[str, str]], *, now: datetime
    ) -> list[StoredEvent]:
        """Append events to the hash-chained transfer log, in a transaction of their own."""
        return self._write(lambda session: translog.append_log_events(session, events, now=now))

    def log_entries(
        self, *, after_seq: int = 0, limit: int | None = None, containing: str | None = None
    ) -> list[StoredEvent]:
        """Stored log entries in order (for verification, export and search; ``containing``: a
        text the stored event JSON must contain)."""
        return self._read(
            lambda session: translog.log_entries(
                session, after_seq=after_seq, limit=limit, containing=containing
            )
        )

    def log_head(self) -> tuple[int, str]:
        """(seq, hash) of the newest log entry ((0, 64 zeros) for an empty log)."""
        return self._read(translog.log_head)

    def log_base(self) -> tuple[int, str]:
        """(seq, hash) of the last event pruned from the log ((0, 64 zeros): none was)."""
        return self._read(translog.log_base)
