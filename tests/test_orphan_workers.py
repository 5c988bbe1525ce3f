"""The worker processes of ``serve`` end with their supervisor, however it ends: a first process
killed with SIGKILL left its receivers listening on the port, unsupervised, beside the gateway
started again (no drain on a stop, no trust reload, the old code after an upgrade), and its
outbox worker delivering (an operator's drill). Real processes from the example configuration.
The workers name themselves for ``ps`` (they showed as ``python3 -B -c from multiprocessing…``)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from test_first_run_examples import PORTS, REPO, Server, _free_port, _oso_gateway
from test_scale_out_postgres import _children, _run

pytestmark = [pytest.mark.integration]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _title(pid: int) -> str:
    """What ``ps`` shows for ``pid`` (its command line, as the process may have set it), once
    the worker has named itself (right after its start)."""
    deadline = time.monotonic() + 30
    while True:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        if not title.startswith(("python", "/")) or time.monotonic() > deadline:
            return title
        time.sleep(0.1)


def test_workers_end_when_their_serve_is_killed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "config", root / "examples" / "config")
    shutil.copytree(REPO / "certs" / "dev", root / "certs" / "dev")
    config = root / "examples" / "config" / "gateway-devcollege.toml"
    port = _free_port()
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(f"port = {PORTS['devcollege']}\n", f"port = {port}\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    cli = _oso_gateway()
    cfg = ["--config", "examples/config/gateway-devcollege.toml"]
    _run([*cli, "db", "keygen", "--out", "var/demo/devcollege/storage.key"], cwd=root, env=env)
    _run([*cli, "db", "upgrade", *cfg], cwd=root, env=env)
    server = Server([*cli, "serve", *cfg, "--workers", "2", "--outbox-workers", "1"],
                    cwd=root, env=env)  # fmt: skip
    children: list[int] = []
    try:
        assert server.wait_started(90), "".join(server.lines)
        deadline = time.monotonic() + 90
        while len(children) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            children = _children(server.process.pid)
        assert len(children) == 2, children  # a receiver and an outbox worker
        titles = sorted(_title(pid) for pid in children)
        serve = f"(serve {server.process.pid})"
        assert titles == [f"oso-gateway-outbox-1 {serve}", f"oso-gateway-receiver-1 {serve}"]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in children), "workers outlived their serve"
    finally:
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if server.process.poll() is None:
            server.process.kill()
