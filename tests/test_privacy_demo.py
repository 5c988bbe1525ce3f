"""Issue 12's acceptance path on the demo's gateways, as an operator types it.

After ``demo --workdir W``: on the receiving gateway ``keys rotate`` and ``inbox export`` still
returns the dossier; ``retention purge --older-than 0s --yes`` makes ``inbox export`` fail with
the "purged" code while ``log verify`` passes and the purge is in the log; on the sending gateway
``disclosure report --message ID --out r.pdf`` names the recipient school and the categories sent
and withheld, and none it did not send.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pypdf
import pytest
from click.testing import CliRunner

from oso_gateway.cli import main
from oso_gateway.dossier.categories import CATEGORIES

pytestmark = pytest.mark.integration

SENDER = "gateway-00000001000000000001/config.toml"
RECEIVER = "gateway-00000001000000000002/config.toml"


def test_rotate_export_purge_verify_and_the_parents_report(tmp_path: Path) -> None:
    runner = CliRunner()
    work = tmp_path / "w"
    demo = runner.invoke(main, ["demo", "--workdir", str(work)])
    assert demo.exit_code == 0, demo.output
    message_id = re.search(r"urn:uuid:[0-9a-f-]{36}", demo.output)
    assert message_id is not None
    mid = message_id.group(0)

    def run(config: str, *args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["--config", str(work / config), *args])
        return result.exit_code, result.output

    assert run(RECEIVER, "keys", "rotate")[0] == 0
    code, out = run(RECEIVER, "inbox", "export", mid, "--out", str(tmp_path / "d.xml"))
    assert code == 0, out
    assert (tmp_path / "d.xml").read_bytes().startswith(b"<?xml")
    assert (tmp_path / "d.xml").stat().st_mode & 0o777 == 0o600  # personal data: owner only

    code, out = run(RECEIVER, "retention", "purge", "--older-than", "0s", "--yes")
    assert code == 0 and mid in out
    code, out = run(RECEIVER, "inbox", "export", mid, "--out", str(tmp_path / "d2.xml"))
    assert code != 0 and "OSO-E530" in out and "purged" in out
    code, out = run(RECEIVER, "log", "verify")
    assert code == 0, out
    code, out = run(RECEIVER, "log", "export", "--format", "jsonl")
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert any(e.get("status") == "purged" and e.get("message_id") == mid for e in events), out

    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"")  # an existing file readable by all is made the owner's alone
    pdf.chmod(0o644)
    code, out = run(SENDER, "disclosure", "report", "--message", mid, "--out", str(pdf))
    assert code == 0, out
    assert pdf.stat().st_mode & 0o777 == 0o600
    text = " ".join(
        " ".join(
            p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages
        ).split()
    )
    assert "Het Dev College (01AB00)" in text
    assert "Basisschool De Regenboog (00YY00)" in text  # the sending school by name as well
    code, out = run(SENDER, "disclosure", "list", "--message", mid)
    record = json.loads(out)
    assert record["sending_school"] == "00YY00"  # a vendor's list of many schools names it
    code, out = run(SENDER, "disclosure", "list", "--school", "00YY00", "--since", "2000-01-01")
    assert code == 0 and [json.loads(line)["message_id"] for line in out.splitlines()] == [mid]
    for other in (("--school", "01AB00"), ("--since", "2999-01-01")):
        code, out = run(SENDER, "disclosure", "list", *other)
        assert code == 0 and out == "", other
    sent, withheld = set(record["sent"]), {w["category"] for w in record["withheld"]}
    assert "toetsresultaten" in withheld  # the demo pupil's parents opted out
    shown = text.split("Gedeelde gegevens (categorieën)")[1]
    listed_sent, listed_withheld = shown.split("Niet gedeeld")
    for c in CATEGORIES:
        assert (c.label_nl in listed_withheld) == (c.key in withheld), c.key
        if c.key in sent:
            assert c.label_nl in listed_sent, c.key
        elif not any(c.label_nl in o.label_nl for o in CATEGORIES if o.key in sent):
            assert c.label_nl not in listed_sent, f"{c.key} was not sent"
