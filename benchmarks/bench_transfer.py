"""Receiver throughput and latency: 30 KB dossiers over mutual TLS with keep-alive.

The receiving gateway (cheroot, ``oso-gateway serve`` in a child process, SQLite) is fed
pre-sealed messages by several concurrent sender threads, each with its own keep-alive
``requests`` session and client certificate. Reported: dossiers per second (target >= 100 on a
2-core machine), p50/p99 latency, and the ratio of the measured cost per dossier to the floor of
its in-process work (open + validate + import + receipt, measured alone).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks.__main__ import Report, median_time

SIZE = 30 * 1024


def _listeners(port: int) -> int | None:
    """How many sockets listen on ``port`` (one per ``serve --workers`` process, SO_REUSEPORT);
    None where /proc/net/tcp is not available."""
    count, found = 0, False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                count += 1
    return count if found else None


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of process ``pid`` and its children so far (Linux /proc), or
    None. Unlike throughput, it barely depends on what else the machine is running."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ticks = 0
        for each in [pid, *map(int, children)]:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_ready(
    url: str,
    cert: tuple[str, str],
    verify: str,
    proc: subprocess.Popen[bytes],
    *,
    port: int,
    workers: int,
) -> None:
    """Until every worker process listens (not only the first: the others start later, and a
    run that began before them would measure one process) and the health check answers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the receiving gateway exited during start-up")
        listening = _listeners(port)
        try:
            healthy = requests.get(url + "/healthz", cert=cert, verify=verify, timeout=2).ok
        except requests.RequestException:
            healthy = False
        if healthy and (listening is None or listening >= workers):
            return
        time.sleep(0.2)
    raise RuntimeError("the receiving gateway did not become ready")


def run(report: Report, quick: bool) -> None:
    from oso_gateway.dossier.generator import generate_dossier_of_size
    from oso_gateway.runtime import build_services
    from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, setup_dev_gateways
    from oso_gateway.transfer.schools import School
    from oso_gateway.transfer.send import new_message_id, seal_attempt

    load_before = os.getloadavg()[0]
    count = 60 if quick else 400
    senders = 4
    workers = int(os.environ.get("OSO_BENCH_WORKERS", "2"))
    report.section(
        f"transfer: receiver ({workers} processes), {SIZE // 1024} KB dossiers, mutual TLS, "
        f"{senders} senders"
    )
    with tempfile.TemporaryDirectory(prefix="oso-bench-") as tmp:
        gateways = setup_dev_gateways(Path(tmp))
        sender_gw, receiver_gw = gateways[PRIMARY_OIN], gateways[SECONDARY_OIN]
        sender = build_services(sender_gw.settings)
        now = datetime.now(UTC)
        school = School("01AB", "00")
        base = generate_dossier_of_size(SIZE, seed=1, now=now)
        messages = [
            seal_attempt(
                base,
                message_id=new_message_id(),
                to=school,
                directory=sender.directory,
                config=sender.sender_config,
                now=now,
            ).data
            for _ in range(count)
        ]

        # Floor: the receiver's in-process work for one message, no HTTP, no TLS.
        floor_services = build_services(receiver_gw.settings)
        spare = iter(
            seal_attempt(
                base,
                message_id=new_message_id(),
                to=school,
                directory=sender.directory,
                config=sender.sender_config,
                now=now,
            ).data
            for _ in range(2000)
        )
        floor = median_time(lambda: floor_services.receiver.handle(next(spare)), repeat=5)
        floor_services.close()
        sender.close()

        env = dict(os.environ, OSO_GATEWAY_CONFIG=str(receiver_gw.config_file))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oso_gateway.cli",
                "serve",
                "--no-outbox",
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = receiver_gw.url.removesuffix("/oso/v1/messages")
        certs = Path(sender_gw.settings.identities[0].cert_file).parent
        cert = (
            str(sender_gw.settings.identities[0].cert_file),
            str(sender_gw.settings.identities[0].key_file),
        )
        verify = str(certs / "ca-bundle.pem")
        try:
            _wait_ready(url, cert, verify, proc, port=receiver_gw.port, workers=workers)
            latencies: list[float] = []
            failures: list[int] = []
            lock = threading.Lock()

            def post_share(share: list[bytes]) -> None:
                session = requests.Session()
                session.cert, session.verify = cert, verify
                session.trust_env = False  # no REQUESTS_CA_BUNDLE override
                headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
                for data in share:
                    start = time.perf_counter()
                    response = session.post(receiver_gw.url, data=data, headers=headers, timeout=60)
                    elapsed = time.perf_counter() - start
                    with lock:
                        latencies.append(elapsed)
                        if response.status_code != 200:
                            failures.append(response.status_code)
                session.close()

            # warm-up: imports and caches in every worker process (the kernel spreads new
            # connections over the processes: one message on each of several connections)
            warm = 4 * workers
            for data in messages[:warm]:
                post_share([data])
            work = messages[warm:]
            latencies.clear()
            threads = [
                threading.Thread(target=post_share, args=(work[i::senders],))
                for i in range(senders)
            ]
            cpu_before = _cpu_seconds(proc.pid)
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - start
            cpu_after = _cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    rate = len(work) / wall
    quantiles = statistics.quantiles(latencies, n=100)
    report.line("dossiers received", f"{len(work)}", f"{len(failures)} not 200")
    report.line("throughput", f"{rate:.0f} /s", "target >= 100 /s")
    report.line("latency p50", f"{quantiles[49] * 1000:.1f} ms")
    report.line("latency p99", f"{quantiles[98] * 1000:.1f} ms")
    if cpu_before is not None and cpu_after is not None:
        cpu = (cpu_after - cpu_before) / len(work)
        cores = os.cpu_count() or 1
        report.line(
            "receiver CPU per dossier",
            f"{cpu * 1000:.1f} ms",
            f"{cores / cpu:.0f} /s if the receiver had all {cores} cores",
        )
    report.line(
        "load average (1 min) before the run",
        f"{load_before:.2f}",
        "other work on the machine lowers throughput",
    )
    report.line("floor: receive in-process (one message)", f"{floor * 1000:.1f} ms")
    report.line(
        "cost per dossier / floor", f"{(wall / len(work)) / floor:.2f}x", "(< 1: parallelism)"
    )
