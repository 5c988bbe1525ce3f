"""``oso_gateway_database_errors_total``: what met an outage of our database, counted without it.

An inbound message refused with OSO-E502 (our database down), or refused for another reason
that could not be recorded, is missing from ``oso_gateway_rejections_total``: that family is read
from the transfer log, in the same database. ``DatabaseErrors`` counts such events in the
process's memory, by where they happened (``WHERE``), so ``/metrics`` shows them through the
outage (next to ``oso_gateway_database_up 0``).

One gateway's services hold one ``DatabaseErrors`` (``GatewayServices.database_errors``); in
a single process ``/metrics`` reports its counts (it is a prometheus-client collector). Under
prometheus-client's multi-process mode (``serve --workers N``, ``PROMETHEUS_MULTIPROC_DIR``)
every count also goes to one process-wide ``Counter`` written to the shared directory, which a
scrape of any process adds up over all of them; the collector then reports nothing itself.

prometheus-client is imported at the first count or scrape, never at import of this module:
the library picks its single- or multi-process value store when it is imported (``serve``
sets the directory first).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from prometheus_client import Counter
    from prometheus_client.core import Metric

NAME = "oso_gateway_database_errors"
HELP = (
    "Events that met an outage of this gateway's own database (OSO-E502), counted in memory "
    "without it, by where: receive (an inbound message refused with OSO-E502, or refused and "
    "its rejection not recorded: absent from oso_gateway_rejections_total), api (a school API "
    "call answered OSO-E502), outbox (an outbox worker's run failed on the database)."
)
RECEIVE = "receive"
API = "api"
OUTBOX = "outbox"
WHERE = (RECEIVE, API, OUTBOX)

_shared_lock = threading.Lock()
_shared: list[Counter] = []  # the process-wide Counter of the multi-process mode, once made


def shared_counter() -> Counter | None:
    """The process-wide ``Counter`` when prometheus-client runs in multi-process mode (its
    values in the shared directory, each ``where`` from 0), else None."""
    from prometheus_client import Counter, values

    if values.ValueClass is values.MutexValue:
        return None  # single process: each DatabaseErrors reports its own counts
    with _shared_lock:
        if not _shared:
            counter = Counter(NAME, HELP, ("where",), registry=None)
            for where in WHERE:
                counter.labels(where)
            _shared.append(counter)
        return _shared[0]


class DatabaseErrors:
    """Counts of ``WHERE`` events in this process, for one gateway; a prometheus-client
    collector of them (single-process mode: ``web.metrics`` registers it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(WHERE, 0)

    def count(self, where: str) -> None:
        if where not in self._counts:
            raise ValueError(f"unknown place of a database error: {where!r}")
        with self._lock:
            self._counts[where] += 1
        shared = shared_counter()
        if shared is not None:
            shared.labels(where).inc()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def collect(self) -> list[Metric]:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(NAME, HELP, labels=("where",))
        for where, count in self.counts().items():
            family.add_metric((where,), count)
        return [family]
