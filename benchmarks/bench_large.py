"""The largest dossier end to end: peak memory per side, two gateways, real mutual TLS.

A dossier with 50 MiB of attachments (``generate_dossier(attachments_kb=51200)``, about 70 MB of
XML: the largest allowed, ``oso_gateway.limits``) goes from one development gateway to another
over mutual TLS on loopback. Each side runs in its own fresh process:

* the receiver: ``oso-gateway serve --no-outbox`` (cheroot, SQLite), as in production;
* the sender: a child of this module that prepares the dossier (validate, minimise, seal once),
  queues it, and runs the outbox until the signed receipt is verified.

Reported per side, read from the process's own ``/proc/PID/status``: its resident set when idle
(after start-up, before the dossier: the interpreter, the libraries, the keys), its high-water
mark (``VmHWM``, the peak resident set over the whole run), and the ratio of (peak − idle) to the
dossier's size: the memory the dossier itself costs (target ≤ 4×). The peak over the size,
interpreter included, is shown too. ``--quick`` skips this benchmark (it takes about a minute).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.__main__ import Report

ATTACHMENTS_KB = 51200
TARGET = 4.0
REPO = Path(__file__).resolve().parent.parent


def _status_kib(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _mb(kib: float) -> str:
    return f"{kib / 1024:.0f} MB"


def _sender(config_file: str, dossier_file: str) -> dict[str, object]:  # pragma: no cover
    """In the sending child: prepare, queue and deliver one dossier; report its memory."""
    from oso_gateway.config import load_settings
    from oso_gateway.runtime import build_services
    from oso_gateway.store import models as m
    from oso_gateway.transfer.receive import School
    from oso_gateway.transfer.send import prepare_dossier

    services = build_services(load_settings(Path(config_file), {}))
    idle = _status_kib("self", "VmRSS")
    started = time.perf_counter()
    data = Path(dossier_file).read_bytes()
    now = datetime.now(UTC)
    prepared = prepare_dossier(
        data,
        to=School("01AB", "00"),
        directory=services.directory,
        config=services.sender_config,
        now=now,
    )
    del data
    services.outbox.enqueue(prepared)
    message_id = prepared.message_id
    del prepared
    record = services.outbox.wait_for(message_id, timeout=600)
    elapsed = time.perf_counter() - started
    services.close()
    return {
        "status": record.status,
        "delivered": record.status == m.DELIVERED,
        "idle_kib": idle,
        "peak_kib": _status_kib("self", "VmHWM"),
        "seconds": elapsed,
    }


def _wait_ready(
    url: str, cert: tuple[str, str], verify: str, proc: subprocess.Popen[bytes]
) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the receiving gateway exited during start-up")
        try:
            if requests.get(url + "/healthz", cert=cert, verify=verify, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("the receiving gateway did not become ready")


def measure(dossier_file: Path, workdir: Path) -> dict[str, dict[str, object]]:
    """Send ``dossier_file`` between two fresh gateway processes; each side's memory."""
    from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, setup_dev_gateways

    gateways = setup_dev_gateways(workdir)
    sender_gw, receiver_gw = gateways[PRIMARY_OIN], gateways[SECONDARY_OIN]
    env = dict(os.environ, OSO_GATEWAY_CONFIG=str(receiver_gw.config_file))
    receiver = subprocess.Popen(
        [sys.executable, "-m", "oso_gateway.cli", "serve", "--no-outbox"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    identity = sender_gw.settings.identities[0]
    cert = (str(identity.cert_file), str(identity.key_file))
    verify = str(Path(identity.cert_file).parent / "ca-bundle.pem")
    try:
        _wait_ready(receiver_gw.url.removesuffix("/oso/v1/messages"), cert, verify, receiver)
        time.sleep(0.5)
        receiver_idle = _status_kib(receiver.pid, "VmRSS")
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_large",
                "--sender",
                str(sender_gw.config_file),
                str(dossier_file),
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
        sender = json.loads(out.stdout.strip().splitlines()[-1])
        receiver_peak = _status_kib(receiver.pid, "VmHWM")
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    return {
        "sender": sender,
        "receiver": {"idle_kib": receiver_idle, "peak_kib": receiver_peak},
    }


def run(report: Report, quick: bool) -> None:
    report.section("transfer: a large dossier (50 MiB of attachments), two processes, mutual TLS")
    if quick:
        report.line("skipped in --quick", "-", "run `make bench` for the large-dossier memory")
        return
    if not Path("/proc/self/status").is_file():
        report.line("skipped", "-", "needs Linux /proc to read each process's peak memory")
        return
    from oso_gateway.dossier.generator import generate_dossier

    with tempfile.TemporaryDirectory(prefix="oso-bench-large-") as tmp:
        dossier_file = Path(tmp) / "dossier.xml"
        data = generate_dossier(
            overstap="POVO", seed=51200, now=datetime.now(UTC), attachments_kb=ATTACHMENTS_KB
        )
        dossier_file.write_bytes(data)
        size_kib = len(data) / 1024
        del data
        result = measure(dossier_file, Path(tmp) / "gateways")
    sender = result["sender"]
    report.line("dossier size", _mb(size_kib), f"{ATTACHMENTS_KB // 1024} MiB of attachments")
    report.line(
        "delivered, receipt verified",
        "yes" if sender["delivered"] else "NO",
        f"{sender['seconds']:.1f} s (prepare + seal + send + receipt)",
    )
    for side in ("sender", "receiver"):
        values = result[side]
        idle, peak = float(values["idle_kib"]), float(values["peak_kib"])  # type: ignore[arg-type]
        ratio = (peak - idle) / size_kib
        verdict = "ok" if ratio <= TARGET else f"OVER the {TARGET:.0f}x target"
        report.line(f"{side}: idle / peak resident set", f"{_mb(idle)} / {_mb(peak)}")
        report.line(f"{side}: (peak - idle) / dossier size", f"{ratio:.2f}x", f"{verdict}")
        report.line(
            f"{side}: peak / dossier size", f"{peak / size_kib:.2f}x", "(interpreter included)"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--sender":
        print(json.dumps(_sender(sys.argv[2], sys.argv[3])))
    else:
        raise SystemExit("usage: python -m benchmarks.bench_large --sender CONFIG DOSSIER")
