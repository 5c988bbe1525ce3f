"""Privacy: after real transfers of generated dossiers carrying marker names and BSNs (delivered,
retried, rejected for a missing mandate, rejected for a bad BSN), none of those values appears in
any ``oso-gateway log`` output, log export, ``/metrics`` page or log line of either gateway.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from _gateway_apps import World, two_gateways
from click.testing import CliRunner
from lxml import etree

from oso_gateway.cli import main
from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.dossier.rules import bsn_is_valid
from oso_gateway.protocol import DOSSIER_NS


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with two_gateways(tmp_path) as world:
        yield world


def _pupil_values(data: bytes) -> list[str]:
    """The pupil's BSN, names and birth date (both notations) as they stand in the dossier."""
    root = etree.fromstring(data)
    pupil = root.find(f"{{{DOSSIER_NS}}}huidigeschool/{{{DOSSIER_NS}}}leerling")
    assert pupil is not None
    values = []
    for name in ("bsn", "achternaam", "voornaam", "geboortedatum"):
        values += [e.text for e in pupil.iter(f"{{{DOSSIER_NS}}}{name}") if e.text]
    born = next(e.text for e in pupil.iter(f"{{{DOSSIER_NS}}}geboortedatum") if e.text)
    year, month, day = born.split("-")
    return [*values, f"{day}-{month}-{year}"]


def _replace(data: bytes, element: str, text: str) -> bytes:
    root = etree.fromstring(data)
    target = next(root.iter(f"{{{DOSSIER_NS}}}{element}"))
    target.text = text
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _bad_bsn(bsn: str) -> str:
    for last in range(10):
        candidate = bsn[:-1] + str(last)
        if not bsn_is_valid(candidate):
            return candidate
    raise AssertionError("no invalid variant")


def test_no_marker_name_or_bsn_reaches_log_output_exports_metrics_or_log_lines(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    secrets: list[str] = []
    delivered: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for seed in range(3):
            marker = f"Qzvprivacy{seed}"
            data = generate_dossier(
                overstap="POVO", seed=40 + seed, now=world.clock(), marker=marker
            )
            secrets += [marker, *_pupil_values(data)]
            prepared = world.queue(data)
            delivered.append(prepared.message_id)
        world.transport.down = True  # the first attempts fail: retries are logged
        world.sender.outbox.run_once()
        world.transport.down = False
        world.clock.now += timedelta(seconds=30)
        world.sender.outbox.run_once()
        # Rejected at the receiver after decryption: a school that did not mandate the signer,
        # and a BSN that fails the 11-proef (rule messages must not quote it).
        data = generate_dossier(overstap="POVO", seed=50, now=world.clock(), marker="Qzvmandate")
        secrets += ["Qzvmandate", *_pupil_values(data)]
        unmandated = world.post_sealed(_replace(data, "brincode", "03EF"))
        data = generate_dossier(overstap="POVO", seed=51, now=world.clock(), marker="Qzvbadbsn")
        bad = _bad_bsn(_pupil_values(data)[0])
        secrets += ["Qzvbadbsn", bad, *_pupil_values(data)]
        badbsn = world.post_sealed(_replace(data, "bsn", bad))

        outputs: list[str] = []
        listed: list[list[dict[str, str]]] = []
        runner = CliRunner()
        for config in world.configs:
            for args in (
                ["list"],
                ["list", "--json", "--limit", "0"],
                ["export", "--format", "csv"],
                ["export", "--format", "jsonl"],
                ["anchor"],
                ["verify"],
                ["verify", "--json"],
            ):
                result = runner.invoke(main, ["log", *args, "--config", str(config)])
                assert result.exit_code == 0, result.output
                outputs.append(result.output)
                if args[:2] == ["list", "--json"]:
                    listed.append(json.loads(result.output))
            for message_id in [*delivered, unmandated, badbsn]:
                for extra in ([], ["--json"]):
                    result = runner.invoke(
                        main, ["log", "show", message_id, *extra, "--config", str(config)]
                    )
                    outputs.append(result.output)
        for app in (world.sender_app, world.receiver_app):
            outputs.append(world.metrics(app))

    # The test can fail: the transfers happened and were logged with their codes.
    sender_log, receiver_log = listed
    assert {e["message_id"] for e in sender_log if e["status"] == "delivered"} == set(delivered)
    assert any(e["status"] == "retrying" for e in sender_log)
    rejected = {
        e.get("message_id"): e["error_code"] for e in receiver_log if e["status"] == "rejected"
    }
    assert rejected[unmandated] == "OSO-E431"
    assert rejected[badbsn].startswith("OSO-E1")
    assert 'oso_gateway_rejections_total{code="OSO-E431"} 1.0' in outputs[-1]
    assert "OSO-E431" in caplog.text  # the receiver did log the rejection, by its code

    everything = "\n".join([*outputs, caplog.text])
    everything += "\n".join(str(r.args) for r in caplog.records)
    leaked = sorted({s for s in secrets if len(s) >= 4 and s in everything})
    assert leaked == []
