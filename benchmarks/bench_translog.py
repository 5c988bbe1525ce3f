"""Transfer log: verifying the chain against its floor (one SHA-256 per event over the same bytes),
appending to a real SQLite store, and one /metrics computation over that store."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.__main__ import Report, median_time
from oso_gateway.store import Store, create_store_engine, logchain, upgrade
from oso_gateway.transfer import metrics

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def _events(n: int) -> list[dict[str, str]]:
    return [
        logchain.make_event(
            at=NOW + timedelta(seconds=i),
            kind="message",
            direction="out",
            message_id=f"urn:uuid:{i:08x}-1111-4222-8333-444444444444",
            action="urn:oso-gateway:action:dossier:deliver:1",
            status="delivered",
            counterpart_brin="01AB",
            counterpart_vestiging="00",
            counterpart_oin="00000001000000000002",
            size_bytes=30000 + i,
            payload_digest=f"{i:064x}",
        )
        for i in range(n)
    ]


def run(report: Report, quick: bool) -> None:
    n = 2_000 if quick else 20_000
    report.section(f"transfer log ({n} events)")
    rows = logchain.chain(_events(n))
    canonical = [logchain.canonical(r.seq, r.event) for r in rows]

    def floor() -> None:
        prev = b"\0" * 32
        for data in canonical:
            prev = hashlib.sha256(prev + data).digest()

    base = median_time(floor, repeat=3 if quick else 5)
    verify = median_time(lambda: logchain.verify_chain(rows), repeat=3 if quick else 5)
    report.line("verify_chain per event", f"{verify / n * 1e6:.1f} us", "")
    report.line(
        "  ratio to SHA-256 of the bytes", f"{verify / base:.1f}x", "(includes canonical JSON)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{Path(tmp) / 'gateway.sqlite'}")
        upgrade(engine)
        store = Store(engine)
        batch = _events(200)
        counter = iter(range(10**9))

        def append_one() -> None:
            store.append_log([batch[next(counter) % len(batch)]], now=NOW)

        append = median_time(append_one, repeat=3 if quick else 5)
        report.line("append one event (own transaction, SQLite)", f"{append * 1e3:.2f} ms", "")
        entries = len(store.log_entries())
        scrape = median_time(lambda: metrics.store_families(store, now=NOW), repeat=3)
        report.line(f"/metrics store part ({entries} log events)", f"{scrape * 1e3:.1f} ms", "")
        engine.dispose()
