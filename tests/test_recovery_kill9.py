"""Recovery (issue 14, point 3): a sender killed with SIGKILL mid-send resumes after a restart.

Real processes: the receiving gateway (``serve``) and the sender's ``outbox run`` from the example
configuration, with a TCP relay in front of the receiver that holds the first connection (so the
kill lands while the sender waits for the receipt, its message ``awaiting_receipt`` and leased)
and relays every later one. After SIGKILL the sender is restarted; the message must be delivered
within 30 seconds of the restart (a bounded wait on its state, not a timing benchmark): the
claim's lease (``retry.lease_seconds``, 15 s in the examples) runs out because nobody renews it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from test_first_run_examples import PORTS, REPO, Server, _free_port, _oso_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RESUME_WITHIN = 30.0


class HoldFirstRelay:
    """Listens on a free port; holds the first connection (reads, never answers), relays others."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.held = threading.Event()
        self.release = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            target = self._hold if self.connections == 1 else self._relay
            threading.Thread(target=target, args=(client,), daemon=True).start()

    def _hold(self, client: socket.socket) -> None:
        with client:
            client.settimeout(60)
            received = 0
            while received < 4096:  # the TLS handshake starts; the body follows it
                chunk = client.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
                self.held.set()
            self.release.wait(120)

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=60)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while chunk := src.recv(65536):
                    dst.sendall(chunk)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

    def close(self) -> None:
        self.release.set()
        self.listener.close()


def _status(database: Path) -> str | None:
    with sqlite3.connect(database, timeout=15) as connection:
        row = connection.execute(
            "SELECT status FROM messages WHERE direction = 'out' ORDER BY id LIMIT 1"
        ).fetchone()
    return None if row is None else str(row[0])


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (argv, result.stdout, result.stderr)


def test_a_sender_killed_mid_send_delivers_within_30s_of_its_restart(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "config", root / "examples" / "config")
    shutil.copytree(REPO / "certs" / "dev", root / "certs" / "dev")
    config = root / "examples" / "config"
    receiver_port = _free_port()
    relay = HoldFirstRelay(receiver_port)
    text = (config / "gateway-devcollege.toml").read_text(encoding="utf-8")
    (config / "gateway-devcollege.toml").write_text(
        text.replace(f"port = {PORTS['devcollege']}\n", f"port = {receiver_port}\n")
    )
    directory = (config / "directory.toml").read_text(encoding="utf-8")
    directory = directory.replace(f"localhost:{PORTS['devcollege']}/", f"localhost:{relay.port}/")
    (config / "directory.toml").write_text(directory, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    cli = _oso_gateway()
    sender = ["--config", "examples/config/gateway-regenboog.toml"]
    receiver_cfg = ["--config", "examples/config/gateway-devcollege.toml"]
    for name in ("regenboog", "devcollege"):
        _run([*cli, "db", "keygen", "--out", f"var/demo/{name}/storage.key"], cwd=root, env=env)
        _run([*cli, "db", "upgrade", "--config", f"examples/config/gateway-{name}.toml"],
             cwd=root, env=env)  # fmt: skip
    _run([*cli, "generate", "--overstap", "POVO", "--school", "00YY00", "--out", "dossiers"],
         cwd=root, env=env)  # fmt: skip
    _run([*cli, "send", "dossiers", "--to", "01AB00", *sender], cwd=root, env=env)
    database = root / "var" / "demo" / "regenboog" / "gateway.sqlite"
    assert _status(database) == "queued"
    receiver = Server([*cli, "serve", *receiver_cfg, "--no-outbox"], cwd=root, env=env)
    first = restarted = None
    try:
        assert receiver.wait_started(60), "".join(receiver.lines)
        first = subprocess.Popen(
            [*cli, "outbox", "run", *sender], cwd=root, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert relay.held.wait(60), "the sender never posted"
        deadline = time.monotonic() + 30
        while _status(database) != "awaiting_receipt" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _status(database) == "awaiting_receipt"
        first.send_signal(signal.SIGKILL)  # mid-send: the POST is out, no answer yet
        first.wait(timeout=30)
        relay.release.set()  # the held connection closes; the receiver never saw the message
        restarted = subprocess.Popen(
            [*cli, "outbox", "run", *sender], cwd=root, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        started = time.monotonic()
        status = _status(database)
        while status != "delivered" and time.monotonic() - started < RESUME_WITHIN:
            time.sleep(0.25)
            status = _status(database)
        assert status == "delivered", f"{status} {RESUME_WITHIN} s after the restart"
        assert relay.connections >= 2
    finally:
        for process in (first, restarted):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        receiver.stop()
        relay.close()
    with sqlite3.connect(root / "var" / "demo" / "devcollege" / "gateway.sqlite") as connection:
        imported = connection.execute(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND status = 'imported'"
        ).fetchone()[0]
    assert imported == 1
