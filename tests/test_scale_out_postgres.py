"""Scale-out (issue 14, point 2): two receiver processes and two outbox worker processes against
one PostgreSQL server; one of each is killed with SIGKILL mid-flight. The supervisor starts them
again, every dossier is imported exactly once, and both transfer logs verify.

Real processes (``oso-gateway serve --workers 2`` and ``serve --outbox-workers 2``) from the
example configuration, each gateway on its own throw-away schema of the shared test database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from test_first_run_examples import PORTS, REPO, Server, _free_port, _oso_gateway

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

DOSSIERS = 12


def _children(pid: int) -> list[int]:
    """Worker processes of a serve process (spawned children, not the resource tracker): by
    the title a worker gives itself (``oso-gateway-receiver-1 (serve PID)``), or, in the moment
    before it does, by the interpreter's spawn command line."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            spawned = b"multiprocessing-fork" in cmdline and b"resource_tracker" not in cmdline
            if spawned or cmdline.startswith(b"oso-gateway-"):
                found.append(int(child))
    return sorted(found)


def _count(engine_url: str, sql: str) -> int:
    engine = create_engine(engine_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def schemas(postgres_url: str) -> Iterator[dict[str, str]]:
    admin = create_engine(postgres_url)
    names = {gw: f"scale_{gw}_{uuid.uuid4().hex[:10]}" for gw in PORTS}
    with admin.begin() as connection:
        for schema in names.values():
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield {
            gw: f"{postgres_url}?options={quote(f'-csearch_path={schema}')}"
            for gw, schema in names.items()
        }
    finally:
        with admin.begin() as connection:
            for schema in names.values():
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (argv, result.stdout, result.stderr)
    return result.stdout


def test_two_receivers_and_two_outbox_workers_survive_sigkill_exactly_once(
    tmp_path: Path, schemas: dict[str, str]
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "config", root / "examples" / "config")
    shutil.copytree(REPO / "certs" / "dev", root / "certs" / "dev")
    config = root / "examples" / "config"
    ports = {gw: _free_port() for gw in PORTS}
    directory = (config / "directory.toml").read_text(encoding="utf-8")
    for gw, port in ports.items():
        path = config / f"gateway-{gw}.toml"
        body = path.read_text(encoding="utf-8").replace(f"port = {PORTS[gw]}\n", f"port = {port}\n")
        path.write_text(f'database_url = "{schemas[gw]}"\n' + body, encoding="utf-8")
        directory = directory.replace(f"localhost:{PORTS[gw]}/", f"localhost:{port}/")
    (config / "directory.toml").write_text(directory, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    env["OSO_GATEWAY_RETRY_BASE_DELAY"] = "1"  # a refused connection is retried soon
    cli = _oso_gateway()
    cfg = {gw: ["--config", f"examples/config/gateway-{gw}.toml"] for gw in PORTS}
    for gw in PORTS:
        _run([*cli, "db", "keygen", "--out", f"var/demo/{gw}/storage.key"], cwd=root, env=env)
        _run([*cli, "db", "upgrade", *cfg[gw]], cwd=root, env=env)
    generate = ["generate", "--overstap", "POVO", "--school", "00YY00", "--count", str(DOSSIERS)]
    _run([*cli, *generate, "--attachments-kb", "200", "--out", "dossiers"], cwd=root, env=env)
    _run([*cli, "send", "dossiers", "--to", "01AB00", *cfg["regenboog"]], cwd=root, env=env)
    receiver = Server([*cli, "serve", *cfg["devcollege"], "--workers", "2", "--no-outbox"],
                      cwd=root, env=env)  # fmt: skip
    sender = None
    delivered_sql = "SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'delivered'"
    try:
        assert receiver.wait_started(90), "".join(receiver.lines)
        deadline = time.monotonic() + 60
        while len(_children(receiver.process.pid)) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        sender = Server([*cli, "serve", *cfg["regenboog"], "--outbox-workers", "2"],
                        cwd=root, env=env)  # fmt: skip
        assert sender.wait_started(90), "".join(sender.lines)
        deadline = time.monotonic() + 120
        while len(_children(sender.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        receivers, workers = _children(receiver.process.pid), _children(sender.process.pid)
        assert len(receivers) == 1 and len(workers) == 2, (receivers, workers)
        while _count(schemas["regenboog"], delivered_sql) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        delivered_before = _count(schemas["regenboog"], delivered_sql)
        assert delivered_before < DOSSIERS, "all delivered before the kill: not mid-flight"
        os.kill(receivers[0], signal.SIGKILL)
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 240
        while _count(schemas["regenboog"], delivered_sql) < DOSSIERS:
            assert time.monotonic() < deadline, "not every dossier was delivered"
            time.sleep(0.5)
        # the supervisors start the killed ones again (after a short pause, which may end only
        # after the last dossier was delivered by the surviving worker)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            len(_children(receiver.process.pid)) < 1 or len(_children(sender.process.pid)) < 2
        ):
            time.sleep(0.2)
        assert receivers[0] not in _children(receiver.process.pid)
        assert len(_children(receiver.process.pid)) == 1
        assert workers[0] not in _children(sender.process.pid)
        assert len(_children(sender.process.pid)) == 2
    finally:
        for server in (sender, receiver):
            if server is not None:
                server.stop()
    imported = _count(
        schemas["devcollege"],
        "SELECT count(DISTINCT message_id) FROM messages "
        "WHERE direction = 'in' AND status = 'imported'",
    )
    rows = _count(schemas["devcollege"], "SELECT count(*) FROM dossiers")
    assert imported == DOSSIERS and rows == DOSSIERS
    for gw in PORTS:
        out = _run([*cli, "log", "verify", *cfg[gw]], cwd=root, env=env)
        assert "BROKEN" not in out and "transfer log intact" in out
    for server in (sender, receiver):
        assert server is not None and server.process.returncode == 0, "".join(server.lines)
