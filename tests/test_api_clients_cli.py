"""`oso-gateway api-client add|list|revoke` and `oso-gateway api spec`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from oso_gateway.cli import main
from oso_gateway.transfer.demo import VENDOR_OIN, setup_dev_gateways


def test_add_shows_the_secret_once_list_never_and_revoke_marks_it(tmp_path: Path) -> None:
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    runner = CliRunner()
    added = runner.invoke(
        main, ["--config", config, "api-client", "add", "LAS Noord", "--school", "02CD00", "--json"]
    )
    assert added.exit_code == 0, added.output
    body = json.loads(added.output)
    client_id, credential = body["client_id"], body["credential"]
    assert credential.startswith(client_id + ".") and body["schools"] == ["02CD00"]
    listed = runner.invoke(main, ["--config", config, "api-client", "list", "--json"])
    assert json.loads(listed.output)[0]["client_id"] == client_id
    assert credential.split(".")[1] not in listed.output
    stored = (Path(config).parent / "gateway.sqlite").read_bytes()
    assert credential.split(".")[1].encode() not in stored  # only its hash is stored
    revoked = runner.invoke(main, ["--config", config, "api-client", "revoke", client_id])
    assert revoked.exit_code == 0
    listed = runner.invoke(main, ["--config", config, "api-client", "list", "--json"])
    assert json.loads(listed.output)[0]["revoked_at"] is not None


def test_a_client_only_for_schools_the_gateway_serves(tmp_path: Path) -> None:
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    for school, code in (("01AB00", "OSO-E616"), ("bogus", "OSO-E616")):
        result = CliRunner().invoke(
            main, ["--config", config, "api-client", "add", "LAS", "--school", school]
        )
        assert result.exit_code == 2 and code in result.output


def test_api_spec_prints_an_openapi_3_1_document_with_every_operation() -> None:
    result = CliRunner().invoke(main, ["api", "spec"])
    assert result.exit_code == 0, result.output
    spec = json.loads(result.output)
    assert spec["openapi"] == "3.1.0"
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert operations >= {
        "submitDossier", "dryRunDossier", "listOutbox", "getOutboxMessage",
        "retryOutboxMessage", "cancelOutboxMessage", "listInbox", "getInboxMessage",
        "getInboxDossier", "ackInboxMessage", "declineInboxMessage", "getReceipt",
        "health", "ready",
    }  # fmt: skip
    from openapi_spec_validator import validate

    validate(spec)
