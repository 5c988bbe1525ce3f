"""``serve --workers 2``: one scrape adds up the requests of both server processes
(prometheus-client's multi-process mode, set up by the supervisor), also after a worker was
killed and started again.

Real processes from the example configuration; requests over real mutual TLS on loopback, each
on a new connection, so SO_REUSEPORT spreads them over both processes.
"""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from metrics_support import parse, value
from test_first_run_examples import Server, _oso_gateway, layout
from test_scale_out_postgres import _children

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["layout"]  # the fixture

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
HEALTHZ = {"endpoint": "/healthz", "method": "GET", "status": "200"}
COUNT = "oso_gateway_http_request_duration_seconds_count"


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(DEV / "ca-bundle.pem"))
    context.check_hostname = False  # the server's certificate names localhost; we dial 127.0.0.1
    context.load_cert_chain(
        DEV / "gateway-00000001000000000001.crt.pem", DEV / "gateway-00000001000000000001.key.pem"
    )
    return context


def _healthz(port: int, context: ssl.SSLContext) -> None:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def _scrape(url: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as response:
        return value(parse(response.read().decode()), COUNT, **HEALTHZ)


def _writers(shared: Path) -> set[str]:
    """The processes whose request histogram is in the shared directory (files per pid)."""
    return {p.stem.rsplit("_", 1)[1] for p in shared.glob("histogram_*.db")}


def test_one_scrape_adds_up_the_requests_of_every_serve_process(
    layout: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    root, ports = layout
    shared = tmp_path / "prometheus"
    shared.mkdir()
    (shared / "histogram_424242.db").write_bytes(b"an earlier run's file")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    env |= {"PROMETHEUS_MULTIPROC_DIR": str(shared), "OSO_GATEWAY_SERVER_METRICS_PORT": "0"}
    config = ["--config", "examples/config/gateway-devcollege.toml"]
    cli = _oso_gateway()
    for argv in (["db", "keygen", "--out", "var/demo/devcollege/storage.key"], ["db", "upgrade"]):
        args = [*cli, *argv] + (config if argv[1] == "upgrade" else [])
        subprocess.run(args, cwd=root, env=env, check=True, capture_output=True, timeout=120)
    port = ports["devcollege"]
    server = Server([*cli, "serve", *config, "--workers", "2", "--no-outbox"], cwd=root, env=env)
    try:
        assert server.wait_started(60), "".join(server.lines)
        assert not (shared / "histogram_424242.db").exists()  # emptied at start
        # printed just after "serving on", which wait_started waits for: read it when it came
        # (looking at once raced the reader under load: a CI run)
        deadline = time.monotonic() + 30
        while not any("metrics (plain" in line for line in server.lines):
            assert time.monotonic() < deadline, "".join(server.lines)
            time.sleep(0.05)
        metrics_url = next(
            line.split(" on ")[1].strip() for line in server.lines if "metrics (plain" in line
        )
        context = _client_context()
        sent = 0
        deadline = time.monotonic() + 60
        while len(_writers(shared)) < 2 or sent < 20:  # until both processes answered some
            assert time.monotonic() < deadline, (sent, _writers(shared))
            _healthz(port, context)
            sent += 1
        assert _scrape(metrics_url) == sent  # the first process reports both processes' counts

        (worker,) = _children(server.process.pid)
        os.kill(worker, signal.SIGKILL)
        while _children(server.process.pid) in ([], [worker]):  # the supervisor starts another
            assert time.monotonic() < deadline + 60, "".join(server.lines)
            time.sleep(0.2)
        assert _scrape(metrics_url) == sent  # the killed worker's requests still count
        for _ in range(10):
            _healthz(port, context)
        assert _scrape(metrics_url) == sent + 10
    finally:
        server.stop()
    assert server.process.returncode == 0, "".join(server.lines)
    assert "Traceback" not in "".join(server.lines)


def test_serve_empties_the_operators_directory_or_makes_a_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oso_gateway.commands.supervise import shared_metrics_dir

    given = tmp_path / "given"
    given.mkdir()
    (given / "counter_1.db").write_bytes(b"old")
    (given / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    with shared_metrics_dir() as path:
        assert path == given
        assert sorted(p.name for p in given.iterdir()) == ["keep.txt"]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(given)  # the operator's stays
    # Without one, in a fresh process: a temporary directory, set for the children, then gone.
    code = (
        "import os\n"
        "from oso_gateway.commands.supervise import shared_metrics_dir\n"
        "with shared_metrics_dir() as path:\n"
        "    print(path.is_dir(), os.environ['PROMETHEUS_MULTIPROC_DIR'] == str(path))\n"
        "print(path.exists(), 'PROMETHEUS_MULTIPROC_DIR' in os.environ)\n"
    )
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["True", "True", "False", "False"]


def test_serve_inside_a_process_that_imported_prometheus_client_leaves_the_environment_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from oso_gateway.cli import main

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path.as_posix()}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(config)])
    assert result.exit_code != 0  # no database: it stops at once
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_a_multiprocess_directory_set_after_prometheus_client_was_imported_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oso_gateway.web.metrics import metrics_blueprint

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # too late for this process
    with pytest.raises(RuntimeError, match="after prometheus-client was imported"):
        metrics_blueprint(None)  # type: ignore[arg-type]


def test_the_cli_does_not_import_prometheus_client_before_serve_sets_it_up() -> None:
    code = "import sys, oso_gateway.cli; print('prometheus_client' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


_OTHER_PROCESS = """
from oso_gateway.transfer.outage import DatabaseErrors

DatabaseErrors().count("receive")  # a receiver process's refusal
DatabaseErrors().count("outbox")  # an outbox worker's failed run (another gateway object)
"""

_SCRAPING_PROCESS = """
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, "tests")
from _gateway_apps import two_gateways
from metrics_support import parse, value

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.store import Store, create_store_engine

with two_gateways(Path(sys.argv[1])) as world:
    dead = Store(create_store_engine("postgresql://nobody:x@127.0.0.1:9/none"))
    world.receiver.store = world.receiver.inbound.store = dead
    world.queue(generate_dossier(overstap="POVO", seed=12, now=world.clock()))
    assert world.sender.outbox.run_once().retrying == 1  # refused here: OSO-E502
    page = world.metrics(world.receiver_app)
    samples = parse(page)
    name = "oso_gateway_database_errors_total"
    print(value(samples, "oso_gateway_database_up"), value(samples, name, where="receive"),
          value(samples, name, where="outbox"), value(samples, name, where="api"),
          page.count("# TYPE " + name))
"""


def test_messages_refused_while_our_database_is_down_are_counted_over_every_serve_process(
    tmp_path: Path,
) -> None:
    """Under the multi-process mode (``serve --workers N``) the database-error counts of every
    process are added up by a scrape of any, read from the shared directory (never from our
    database, which is down), and given once."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    root = Path(__file__).resolve().parent.parent
    run = {"cwd": root, "env": env, "capture_output": True, "text": True, "timeout": 120}
    other = subprocess.run([sys.executable, "-c", _OTHER_PROCESS], **run)  # type: ignore[call-overload]
    assert other.returncode == 0, other.stderr
    scrape = subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-c", _SCRAPING_PROCESS, str(tmp_path / "gateways")], **run
    )
    assert scrape.returncode == 0, scrape.stderr
    # database down; receive: the other process's refusal and this one's; once, not twice
    assert scrape.stdout.split() == ["0.0", "2.0", "1.0", "0.0", "1"]
