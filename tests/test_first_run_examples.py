"""End to end: a new operator follows docs/operations.md "First run" with examples/config/.

The commands are taken from the document's code block itself (so the test fails when the
document and the software drift apart) and run in a copy of the repository's layout
(``examples/config/`` and ``certs/dev/``) in a temporary directory. The only change made is the
one the document allows: free ports instead of 8441/8442, in the gateway files and the directory.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "operations.md"
PORTS = {"regenboog": 8441, "devcollege": 8442}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def first_run_commands() -> list[str]:
    """The shell lines of the first ```sh block of the "First run" section."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## First run") :]
    block = section[section.index("```sh\n") + 6 :]
    block = block[: block.index("```")]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _oso_gateway() -> list[str]:
    script = Path(sys.executable).parent / "oso-gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "oso_gateway.cli"]


class Server:
    """A background ``oso-gateway serve``: its output collected, its start line awaited."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.started = threading.Event()
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "oso-gateway serving on" in line:
                self.started.set()
        self.started.set()  # ended: nothing more to wait for

    def wait_started(self, timeout: float) -> bool:
        self.started.wait(timeout)
        return self.process.poll() is None and any("serving on" in x for x in self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "config", root / "examples" / "config")
    shutil.copytree(REPO / "certs" / "dev", root / "certs" / "dev")
    ports = {name: _free_port() for name in PORTS}
    config = root / "examples" / "config"
    directory = (config / "directory.toml").read_text(encoding="utf-8")
    for name, port in ports.items():
        gateway = config / f"gateway-{name}.toml"
        text = gateway.read_text(encoding="utf-8")
        assert f"port = {PORTS[name]}\n" in text
        gateway.write_text(text.replace(f"port = {PORTS[name]}\n", f"port = {port}\n"))
        directory = directory.replace(f"localhost:{PORTS[name]}/", f"localhost:{port}/")
    (config / "directory.toml").write_text(directory, encoding="utf-8")
    yield root, ports


def test_a_new_operator_following_the_first_run_section_gets_a_delivered_dossier(
    layout: tuple[Path, dict[str, int]],
) -> None:
    root, ports = layout
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    commands = first_run_commands()
    assert any(c.startswith("oso-gateway send") for c in commands)
    servers: list[Server] = []
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for command in commands:
            background = command.endswith("&")
            argv = shlex.split(command.rstrip("&").strip())
            assert argv[0] == "oso-gateway", command
            argv = _oso_gateway() + argv[1:]
            if background:
                server_env = dict(env)
                if "gateway-devcollege" in command:  # also the optional plain metrics listener
                    server_env["OSO_GATEWAY_SERVER_METRICS_PORT"] = "0"
                servers.append(Server(argv, cwd=root, env=server_env))
                continue
            for server in servers:  # "start send once the receiver has printed ..."
                assert server.wait_started(60), "".join(server.lines)
            result = subprocess.run(
                argv, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
            outputs[argv[len(_oso_gateway())]] = result
        assert "delivered: urn:uuid:" in outputs["send"].stdout
        listing = outputs["log"].stdout
        assert re.search(r"\bimported\s+01AB00<00YY00\b", listing), listing  # ours<theirs: in
        receiver = next(
            s for s in servers if f"localhost:{ports['devcollege']}" in "".join(s.lines)
        )
        metrics_url = next(
            m.group(1)
            for line in receiver.lines
            if (m := re.search(r"(http://127\.0\.0\.1:\d+/metrics)", line))
        )
        with urllib.request.urlopen(metrics_url, timeout=10) as response:
            body = response.read().decode()
        assert 'oso_gateway_messages{direction="in",status="imported"} 1.0' in body
        ready_url = metrics_url.replace("/metrics", "/readyz")  # the probe without a certificate
        with urllib.request.urlopen(ready_url, timeout=10) as response:
            assert response.status == 200 and b'"ready"' in response.read()
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert server.process.returncode == 0, "".join(server.lines)
        assert "Traceback" not in "".join(server.lines)
