"""`oso-gateway demo`: one dossier between two dev gateways; `--keep-running` serves consoles."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner

from oso_gateway.cli import main

pytestmark = pytest.mark.integration

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_demo_prints_the_receipt_inbox_line_and_both_logs_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    message_id = re.search(r"message\s+(urn:uuid:\S+)", result.output)
    assert message_id is not None
    assert "receipt (signature verified):" in result.output
    assert re.search(r"status\s+imported", result.output)
    inbox = result.output.split("receiving school's inbox:")[1].splitlines()[1]
    assert message_id.group(1) in inbox and "imported" in inbox
    sender_log = result.output.split("sender's transfer log:")[1]
    assert "delivered attempt 1" in sender_log
    assert "imported" in result.output.split("receiver's transfer log:")[1]
    assert "press Ctrl-C" not in result.output


def test_demo_shows_what_will_be_shared_without_the_pupils_data(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from lxml import etree

    from oso_gateway.dossier.generator import generate_dossier

    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    shared = result.output.split("message ")[0]
    assert "what will be shared" in shared
    assert re.search(r"Pupil\s+VERPLICHT\s+will be shared", shared)
    assert re.search(r"Early childhood education\s+VERBODEN\s+not present", shared)
    dossier = etree.fromstring(generate_dossier(overstap="POVO", seed=2019, now=datetime.now(UTC)))
    ns = {"d": dossier.nsmap[None]}
    pupil = [
        dossier.xpath(f"string(.//d:leerling/d:{name})", namespaces=ns)
        for name in ("voornaam", "achternaam", "bsn", "geboortedatum")
    ]
    assert all(pupil), pupil
    for value in pupil:
        assert value not in result.output


def _read_until(process: subprocess.Popen[str], marker: str) -> str:
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError("demo ended early:\n" + "".join(lines))


def _login(console: str, name: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(console + "login", timeout=10)
    token = _CSRF.search(page.text)
    assert token is not None
    response = session.post(
        console + "login",
        data={"csrf": token.group(1), "name": name, "password": password},
        timeout=30,
    )
    assert response.status_code == 200 and "Dashboard" in response.text, response.text[:300]
    return session


def test_keep_running_serves_both_consoles_with_demo_accounts_until_interrupted(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oso_gateway.cli",
            "demo",
            "--keep-running",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    consoles: list[str] = []
    try:
        output = _read_until(process, "press Ctrl-C")
        consoles = re.findall(r"console\s+(http://\S+/)", output)
        admins = re.findall(r"admin\s+login\s+demo-admin / (\S+)", output)
        viewers = re.findall(r"viewer login\s+demo-viewer / (\S+)", output)
        assert len(consoles) == len(admins) == len(viewers) == 2, output
        receiver = _login(consoles[1], "demo-admin", admins[1])
        transfers = receiver.get(consoles[1] + "transfers?status=imported", timeout=10)
        assert "imported" in transfers.text and "urn:uuid:" in transfers.text
        sender = _login(consoles[0], "demo-viewer", viewers[0])
        assert "delivered" in sender.get(consoles[0] + "transfers", timeout=10).text
        assert sender.get(consoles[0] + "operators", timeout=10).status_code == 403
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "stopped" in rest
    for url in consoles:
        parts = urlsplit(url)
        with socket.socket() as sock:
            assert sock.connect_ex((parts.hostname or "", parts.port or 0)) != 0


def test_demo_sends_the_given_dossier_file_instead_of_a_generated_one(tmp_path: Path) -> None:
    import hashlib
    from datetime import date

    from lxml import etree

    from oso_gateway.dossier.generator import generate_dossier

    data = generate_dossier(overstap="POVO", seed=77, now=date.today(), attachments_kb=40)
    dossier = tmp_path / "dossier.xml"
    dossier.write_bytes(data)
    canonical = etree.tostring(etree.fromstring(data), method="c14n", exclusive=True)
    result = CliRunner().invoke(
        main, ["demo", "--workdir", str(tmp_path / "demo"), "--dossier", str(dossier)]
    )
    assert result.exit_code == 0, result.output
    inbox = result.output.split("receiving school's inbox:")[1].splitlines()[1]
    # the payload digest is the SHA-256 of the given dossier's canonical form (nothing minimised)
    assert "imported" in inbox and hashlib.sha256(canonical).hexdigest() in inbox


def test_demo_refuses_a_dossier_file_that_does_not_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--dossier", str(tmp_path / "missing.xml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_demo_takes_a_relative_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--workdir reldemo` failed (E505): the configs it wrote named relative paths, which each
    config resolved against its own folder (a vendor's walkthrough)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--workdir", "reldemo"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reldemo" / "directory.toml").is_file()
    # a second demo into the same directory wrote new storage keys over the first one's
    # gateways: their data could no longer be opened (an operator's walkthrough)
    config = tmp_path / "reldemo" / "gateway-00000001000000000002" / "config.toml"
    before = config.read_bytes()
    again = CliRunner().invoke(main, ["demo", "--flow", "pull", "--workdir", "reldemo"])
    assert again.exit_code == 2 and "give a new --workdir" in again.output
    assert config.read_bytes() == before
    inbox = CliRunner().invoke(main, ["--config", str(config), "inbox", "list", "--json"])
    assert inbox.exit_code == 0, inbox.output  # the first demo's data still opens
