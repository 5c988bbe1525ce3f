"""First run (issue 14, point 5): each trap a new operator fell into, caught by a test."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from dossier_samples import sample_xml as _sample_xml
from gateway_pair import (
    DEV,
    RECEIVER_OIN,
    RECEIVER_SCHOOL,
    RECEIVER_URL,
    GatewayPair,
    directory_toml,
    renewed_identity,
    with_sending_school,
)

from oso_gateway.cli import main
from oso_gateway.commands.log import error_meaning
from oso_gateway.config import load_settings
from oso_gateway.errors import RecipientCertificateUntrusted
from oso_gateway.store import models as m
from oso_gateway.transfer import wire
from oso_gateway.transfer.directory import Directory
from oso_gateway.transfer.receive import ReceiverConfig, ReceiveService
from oso_gateway.transfer.send import prepare_dossier
from oso_gateway.transfer.services import served_schools
from oso_gateway.web.console.queries import explain
from oso_gateway.web.soap import SOAP_PATH, answers_path, endpoint_path_problems

REPO = Path(__file__).resolve().parent.parent


def sample_xml() -> bytes:
    """The sample dossier, sent by De Regenboog (00YY00: the sender's own school)."""
    return with_sending_school(_sample_xml(), "00YY")


EXAMPLES = REPO / "examples" / "config"


# --- the directory endpoint answers (was: /oso, a 404, the first send failed for good) --------


def test_the_example_directory_endpoints_are_paths_the_server_answers() -> None:
    directory = Directory.load(EXAMPLES / "directory.toml")
    served = [(s.code, s.endpoint) for s in directory.schools()]
    assert len(served) == 4
    assert endpoint_path_problems(served) == []


def test_answers_path_is_the_soap_route_and_one_name_below_it() -> None:
    assert answers_path(SOAP_PATH) and answers_path(SOAP_PATH + "/02CD00")
    for path in ("/oso", "/", "", SOAP_PATH + "/", SOAP_PATH + "/a/b", "/oso/v1/message"):
        assert not answers_path(path), path


def test_directory_check_reports_an_endpoint_of_ours_the_server_would_answer_with_404(
    tmp_path: Path,
) -> None:
    text = (EXAMPLES / "directory.toml").read_text(encoding="utf-8")
    text = text.replace("localhost:8441/oso/v1/messages", "localhost:8441/oso")
    text = text.replace('"../../certs/dev/', f'"{DEV}/')
    bad = tmp_path / "directory.toml"
    bad.write_text(text, encoding="utf-8")
    config = EXAMPLES / "gateway-regenboog.toml"
    result = CliRunner().invoke(
        main, ["directory", "check", "--config", str(config), "--file", str(bad)]
    )
    assert result.exit_code == 1
    assert "school 00YY00: endpoint path '/oso' is not served by this gateway" in result.output


# --- docs/protocol.md shows URIs the receiver accepts -----------------------------------------


def test_the_protocol_doc_shows_only_action_uris_the_gateway_uses() -> None:
    text = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    shown = re.findall(r"<wsa:Action[^>]*>([^<]+)</wsa:Action>", text)
    known = {v for k, v in vars(wire).items() if k.startswith("ACTION_")}
    assert shown and set(shown) <= known, set(shown) - known
    to = re.findall(r"<wsa:To[^>]*>([^<]+)</wsa:To>", text)
    assert to and all(
        "/addressing/anonymous?oin=" in u or answers_path(urlsplit(u).path) for u in to
    ), to


# --- no configuration: an error, not a silent new database ------------------------------------


def test_a_store_command_without_config_does_not_create_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("OSO_GATEWAY_CONFIG", "OSO_GATEWAY_DATABASE_URL", "OSO_GATEWAY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["log", "list"])
    assert result.exit_code == 2
    assert "OSO-E560" in result.output and "--config" in result.output
    assert "no matching events" not in result.output
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["inbox", "list"],
        ["outbox", "list"],
        ["request", "list"],
        ["keys", "list"],
        ["log", "list"],
        ["operator", "list"],
        ["subject", "access", "--bsn", "123456782"],
    ],
)
def test_every_command_without_config_says_none_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """They stopped at the first thing the defaults lack (an identity, a storage key) without
    saying why that was missing (found by a helper's walkthrough)."""
    monkeypatch.chdir(tmp_path)
    for name in ("OSO_GATEWAY_CONFIG", "OSO_GATEWAY_DATABASE_URL", "OSO_GATEWAY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2, result.output
    # the database the defaults name is missing, before the identity or key they lack (each
    # command gave another code, found by a helper's walkthrough)
    assert "OSO-E560" in result.output
    assert "no configuration file was given" in result.output and "--config" in result.output
    assert not (tmp_path / "data").exists()


def test_db_upgrade_without_config_warns_where_it_creates_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("OSO_GATEWAY_CONFIG", "OSO_GATEWAY_DATABASE_URL", "OSO_GATEWAY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "warning: no --config given" in result.output
    assert (tmp_path / "data" / "gateway.sqlite").exists()


# --- a lost storage key: restore it, do not make a new one ---------------------------------------


def _gateway_with_key_file(tmp_path: Path, *, write: bool = True) -> tuple[Path, Path]:
    """A dev gateway whose storage key is in a file (``storage.key``; not written when
    ``write`` is False) instead of the configuration: its config file and the key file."""
    from oso_gateway.transfer.demo import PRIMARY_OIN, setup_dev_gateways

    config = setup_dev_gateways(tmp_path / "gw")[PRIMARY_OIN].config_file
    text = config.read_text()
    match = re.search(r'^key = "([^"]+)"$', text, re.M)
    assert match is not None
    key_file = tmp_path / "storage.key"
    if write:
        key_file.write_text(match.group(1) + "\n")
        key_file.chmod(0o600)
    config.write_text(text.replace(match.group(0), f'key_file = "{key_file.as_posix()}"'))
    return config, key_file


def test_a_missing_key_file_of_a_database_with_data_says_restore_it_not_keygen(
    tmp_path: Path,
) -> None:
    """The plain advice for a missing storage.key_file is `db keygen`, right for a new gateway;
    for one whose database holds data it made a key that could read none of it (found by a
    helper's walkthrough): the error names the key id and says to restore the file."""
    from oso_gateway.dossier.generator import generate_dossier

    config, key_file = _gateway_with_key_file(tmp_path)
    fresh = CliRunner().invoke(main, ["outbox", "list", "--config", str(config)])
    assert fresh.exit_code == 0, fresh.output  # an empty database: no data keys yet
    key_id = re.search(
        r"\b([0-9a-f]{16})\b",
        CliRunner().invoke(main, ["keys", "list", "--config", str(config)]).output,
    )
    assert key_id is not None
    dossier = tmp_path / "export.xml"
    dossier.write_bytes(generate_dossier(overstap="POVO", seed=5, now=datetime.now(UTC)))
    queued = CliRunner().invoke(
        main, ["send", str(dossier), "--to", "01AB00", "--config", str(config)]
    )
    assert queued.exit_code == 0, queued.output

    key_file.unlink()
    lost = CliRunner().invoke(main, ["outbox", "list", "--config", str(config)])
    assert lost.exit_code == 2, lost.output
    assert "OSO-E501" in lost.output and "restore that key file" in lost.output
    assert key_id.group(1) in lost.output and "db keygen --out" not in lost.output


def test_a_missing_key_file_of_a_database_with_only_objections_says_restore_it(
    tmp_path: Path,
) -> None:
    """An objection has no key id, only a hash keyed with the storage key: after `db keygen`
    the gateway found it no more and sent the category again (found by a review)."""
    config, key_file = _gateway_with_key_file(tmp_path)
    added = CliRunner().invoke(
        main,
        ["objection", "add", "--config", str(config), "--school", "00YY00", "--bsn", "-",
         "--category", "toetsresultaten"],
        input="999999187\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    key_file.unlink()
    lost = CliRunner().invoke(main, ["outbox", "list", "--config", str(config)])
    assert lost.exit_code == 2 and "restore that key file" in lost.output, lost.output
    assert "parents' objections" in lost.output and "db keygen --out" not in lost.output


def test_another_storage_key_over_a_database_with_objections_is_refused(
    tmp_path: Path,
) -> None:
    """With another key file (not a missing one), the objections were found no more and
    `objection list` answered nothing, silently: the category would have been sent (a
    security review). The database now holds a check value of its lookup key."""
    config, key_file = _gateway_with_key_file(tmp_path)
    objection = ["objection", "list", "--config", str(config), "--school", "00YY00",
                 "--bsn", "999999187"]  # fmt: skip
    added = CliRunner().invoke(
        main,
        ["objection", "add", "--config", str(config), "--school", "00YY00", "--bsn", "-",
         "--category", "toetsresultaten"],
        input="999999187\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert CliRunner().invoke(main, objection).output.split() == ["toetsresultaten"]
    original = key_file.read_bytes()
    key_file.unlink()
    made = CliRunner().invoke(main, ["db", "keygen", "--out", str(key_file)])
    assert made.exit_code == 0 and key_file.read_bytes() != original
    for command in (objection, ["outbox", "list", "--config", str(config)]):
        refused = CliRunner().invoke(main, command)
        assert refused.exit_code == 2, refused.output
        assert "OSO-E501" in refused.output and "keyed hashes" in refused.output
    key_file.write_bytes(original)  # the right one again
    assert CliRunner().invoke(main, objection).output.split() == ["toetsresultaten"]


def test_a_new_key_over_a_database_that_holds_nothing_yet_is_taken(tmp_path: Path) -> None:
    """The check value of the lookup key is recorded at the first open: a new install whose
    key was replaced before anything was stored must not be refused for good."""
    config, key_file = _gateway_with_key_file(tmp_path)
    listing = ["outbox", "list", "--config", str(config)]
    assert CliRunner().invoke(main, listing).exit_code == 0  # records the first key's value
    key_file.unlink()
    assert CliRunner().invoke(main, ["db", "keygen", "--out", str(key_file)]).exit_code == 0
    assert CliRunner().invoke(main, listing).exit_code == 0, "nothing was made with the old key"


def test_a_missing_key_file_of_a_new_gateway_still_says_keygen(tmp_path: Path) -> None:
    config, _missing = _gateway_with_key_file(tmp_path, write=False)
    result = CliRunner().invoke(main, ["outbox", "list", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "does not exist: create it" in result.output and "db keygen --out" in result.output


# --- a refused send names the rule and the file -----------------------------------------------


def test_a_refused_send_names_the_file_and_the_rule(tmp_path: Path) -> None:
    from dossier_samples import build_dossier, set_text

    root = build_dossier()
    set_text(root, "huidigeschool/leerling/bsn", "123456789")  # fails the 11-proef
    from lxml import etree

    path = tmp_path / "klas-8b-export.xml"
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    config = _upgraded_example(tmp_path)
    result = CliRunner().invoke(
        main, ["send", str(path), "--to", "01AB00", "--config", str(config)]
    )
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.startswith("rejected:"))
    assert "klas-8b-export.xml" in line
    assert re.search(r"OSO-E1\d\d .*\(\S+ at /\S*bsn", line), line
    assert "123456789" not in result.output


def test_a_send_that_the_set_up_stops_is_a_set_up_error_not_rejected_dossiers(
    tmp_path: Path,
) -> None:
    """The directory gives the receiving gateway a certificate that cannot be used (revoked):
    every dossier would fail alike. It read 'rejected: dossier 1/2 …' for each, exit 1 ("input
    rejected"); now one error naming the set-up, exit 2 (found by an operator's walkthrough)."""
    from oso_gateway.dossier.generator import generate_dossier

    folder = tmp_path / "klas"
    folder.mkdir()
    for n in (1, 2):  # from De Regenboog (00YY00), the example's school
        (folder / f"{n}.xml").write_bytes(
            generate_dossier(overstap="POVO", seed=n, now=datetime.now(UTC))
        )
    config = _upgraded_example(tmp_path)
    directory = (EXAMPLES / "directory.toml").read_text(encoding="utf-8")
    directory = directory.replace('"../../certs/dev/', f'"{DEV}/').replace(
        "gateway-00000001000000000002.crt.pem", "gateway-00000001000000000009.crt.pem"
    )
    (tmp_path / "directory.toml").write_text(directory, encoding="utf-8")
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            str(EXAMPLES / "directory.toml"), str(tmp_path / "directory.toml")
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["send", str(folder), "--to", "01AB00", "--config", str(config)]
    )
    assert result.exit_code == 2, result.output
    assert "OSO-E321" in result.output and "the set-up, not a dossier" in result.output
    assert "rejected:" not in result.output and "queued 0 dossier(s)" in result.output


def test_send_stops_at_an_outage_of_our_own_database_and_says_whose_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our database went down mid-run: each dossier left read "rejected: … OSO-E502 The
    receiving gateway is temporarily unavailable", exit 1, although the receiver was fine and
    no dossier was at fault (an operator's drill). Now one error naming our database, exit 2."""
    from oso_gateway.dossier.generator import generate_dossier
    from oso_gateway.errors import StoreUnavailable
    from oso_gateway.transfer.outbox import Outbox

    folder = tmp_path / "klas"
    folder.mkdir()
    for n in (1, 2, 3):
        (folder / f"{n}.xml").write_bytes(
            generate_dossier(overstap="POVO", seed=n, now=datetime.now(UTC))
        )
    config = _upgraded_example(tmp_path)
    real = Outbox.enqueue
    calls: list[int] = []

    def enqueue(self: Outbox, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) > 1:  # the database goes down after the first
            raise StoreUnavailable("database unavailable: OperationalError: connection refused")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Outbox, "enqueue", enqueue)
    result = CliRunner().invoke(
        main, ["send", str(folder), "--to", "01AB00", "--config", str(config)]
    )
    assert result.exit_code == 2, result.output
    assert "OSO-E502: this gateway's own database" in result.output
    assert "nothing more was queued (1 before it)" in result.output
    assert "rejected:" not in result.output and "receiving gateway" not in result.output
    assert "queued 1 dossier(s)" in result.output and len(calls) == 2


def test_every_failed_message_is_sent_again_at_once_after_an_outage(tmp_path: Path) -> None:
    """A peer was down longer than the retries last: its messages failed. `outbox retry` took
    one id at a time (found by an operator's walkthrough); `outbox retry-failed` queues them
    all again, those to one school with --counterpart, and leaves alone what it cannot send."""
    import json as json_

    from store_support import queue_outbound

    from oso_gateway.config import load_settings
    from oso_gateway.store import open_store
    from oso_gateway.store.lifecycle import REJECTED_FAILED, Lifecycle, PurgeCandidate

    config = _upgraded_example(tmp_path)
    store = open_store(load_settings(config, {}))
    now = datetime.now(UTC)
    pks = [queue_outbound(store, now=now) for _ in range(3)]  # to 01AB00
    for _ in pks:
        claimed = store.claim_next_outbound(now=now, lease=timedelta(minutes=1))
        assert claimed is not None
        store.mark_failed(claimed.pk, error_code="OSO-E461", now=now)
    ids = [store.get_message(pk).message_id for pk in pks]
    erased = ids[0]  # its content is gone: nothing to send
    Lifecycle(store.engine, store.cipher).purge(
        [PurgeCandidate(pk=pks[0], message_id=erased, kind=REJECTED_FAILED, direction="out")],
        now=now,
    )
    store.engine.dispose()
    args = ["outbox", "retry-failed", "--config", str(config), "--yes", "--json"]
    other = CliRunner().invoke(main, [*args, "--counterpart", "02CD00"])
    assert other.exit_code == 0 and json_.loads(other.stdout) == {"retried": [], "left": []}
    result = CliRunner().invoke(main, [*args, "--counterpart", "01ab00"])
    assert result.exit_code == 0, result.output
    answer = json_.loads(result.stdout)
    assert answer["retried"] == ids[1:]
    assert answer["left"] == [{"message_id": erased, "status": "failed"}]
    store = open_store(load_settings(config, {}))
    assert [store.get_message(pk).status for pk in pks] == ["failed", "queued", "queued"]
    store.engine.dispose()
    # without --yes and no terminal to ask on: refused, nothing queued (the erased one is left)
    unasked = CliRunner().invoke(main, ["outbox", "retry-failed", "--config", str(config)])
    assert unasked.exit_code == 2 and "--yes" in unasked.output
    none = ["outbox", "retry-failed", "--config", str(config), "--counterpart", "02CD00"]
    nothing = CliRunner().invoke(main, none)
    assert nothing.exit_code == 0 and "(no failed messages)" in nothing.output


def _upgraded_example(tmp_path: Path, name: str = "regenboog") -> Path:
    """``_example_copy`` with a storage key of its own and its database made."""
    key = tmp_path / "storage.key"
    CliRunner().invoke(main, ["db", "keygen", "--out", str(key)])
    config = _example_copy(tmp_path, name, key=key)
    assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    return config


def _example_copy(tmp_path: Path, name: str, *, key: Path) -> Path:
    """One example gateway file with absolute certificate paths and its data in tmp."""
    text = (EXAMPLES / f"gateway-{name}.toml").read_text(encoding="utf-8")
    text = text.replace('"../../certs/dev/', f'"{DEV}/')
    text = text.replace(f'"../../var/demo/{name}/storage.key"', f'"{key}"')
    text = text.replace(f'"../../var/demo/{name}"', f'"{tmp_path / "data"}"')
    text = text.replace('file = "directory.toml"', f'file = "{EXAMPLES / "directory.toml"}"')
    config = tmp_path / f"gateway-{name}.toml"
    config.write_text(text, encoding="utf-8")
    return config


# --- sealing checks the recipient's encryption certificate ------------------------------------


def test_sealing_refuses_a_directory_certificate_that_is_revoked(pair: GatewayPair) -> None:
    revoked = "00000001000000000009"
    text = directory_toml().replace(
        'encryption_certificate = "gateway-00000001000000000002.crt.pem"',
        f'encryption_certificate = "gateway-{revoked}.crt.pem"',
    )
    directory = Directory.from_toml(text.encode(), DEV, source="<test>")
    with pytest.raises(RecipientCertificateUntrusted) as caught:
        prepare_dossier(
            sample_xml(),
            to=RECEIVER_SCHOOL,
            directory=directory,
            config=pair.sender_config,
            now=pair.clock(),
        )
    assert caught.value.code == "OSO-E321" and "00000001000000000002" in caught.value.detail


def test_sealing_refuses_a_certificate_of_another_gateway(pair: GatewayPair) -> None:
    text = directory_toml().replace(
        'encryption_certificate = "gateway-00000001000000000002.crt.pem"',
        'encryption_certificate = "gateway-00000001000000000003.crt.pem"',
    )
    directory = Directory.from_toml(text.encode(), DEV, source="<test>")
    with pytest.raises(RecipientCertificateUntrusted, match="OSO-E312"):
        prepare_dossier(
            sample_xml(),
            to=RECEIVER_SCHOOL,
            directory=directory,
            config=pair.sender_config,
            now=pair.clock(),
        )


# --- the sender reads a recipient-side decryption failure the right way round ----------------


def test_a_decryption_failure_on_an_outgoing_message_reads_as_the_receivers() -> None:
    for code in ("OSO-E208", "OSO-E210"):
        outgoing = error_meaning(code, direction="out")
        assert outgoing.startswith("Reported by the receiving gateway")
        assert "our directory" in outgoing
        assert "our identities" not in outgoing
        assert error_meaning(code, direction="in") != outgoing
        shown = explain(code, direction="out")
        assert shown is not None and shown.explanation == outgoing


# --- the console's Retry asks the directory again ---------------------------------------------


def test_a_retry_goes_to_the_address_the_directory_gives_now(pair: GatewayPair) -> None:
    prepared = pair.prepare(sample_xml())
    record = pair.outbox.enqueue(prepared)
    receiver = pair.transport.receivers.pop(RECEIVER_URL)
    pair.transport.intercept = None
    # the receiver's URL was wrong (a 404 is permanent): failed
    from oso_gateway.transfer.send import TransportResponse

    class NotFound:
        def post(self, url: str, data: bytes, *, action: str) -> TransportResponse:
            return TransportResponse(status=404, body=b"not found")

    real = pair.outbox.transport
    pair.outbox.transport = NotFound()
    assert pair.outbox.run_once().failed == 1
    # the operator fixes the directory, then presses Retry
    moved = "https://gw2-new.test/oso/v1/messages"
    fixed = Directory.from_toml(directory_toml(receiver_url=moved).encode(), DEV, source="<fixed>")
    pair.set_sender_directory(fixed)
    pair.outbox.transport = real
    pair.transport.receivers[moved] = ReceiveService(
        config=ReceiverConfig(
            identities=receiver.config.identities,
            trust=receiver.config.trust,
            served=served_schools(fixed, receiver.config.identities),
        ),
        directory=fixed,
        store=pair.inbound,
        clock=pair.clock,
    )
    pair.sender_store.requeue_outbound(record.pk, now=pair.clock())
    assert pair.outbox.run_once().delivered == 1
    assert pair.transport.posts[-1][0] == moved
    stored = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert stored is not None and stored.endpoint == moved and stored.status == m.DELIVERED


def test_a_retry_after_the_directory_got_the_new_certificate_is_sealed_to_it(
    pair: GatewayPair, tmp_path: Path
) -> None:
    """Our directory gives the receiver an encryption certificate that is valid and names its
    OIN but whose key the receiver does not hold: it cannot decrypt (E208, 'fix the directory,
    then retry'). After the fix the retry is sealed to the certificate the directory gives now;
    it re-sent the envelope sealed to the other one while that was still valid (found by an
    operator's walkthrough)."""
    _other, _key_file, other_cert = renewed_identity(RECEIVER_OIN, tmp_path, now=pair.clock())
    wrong = directory_toml().replace(
        f'encryption_certificate = "gateway-{RECEIVER_OIN}.crt.pem"',
        f'encryption_certificate = "{other_cert.as_posix()}"',
    )
    pair.set_sender_directory(Directory.from_toml(wrong.encode(), DEV, source="<wrong>"))
    prepared = pair.prepare(sample_xml())
    record = pair.outbox.enqueue(prepared)
    assert pair.outbox.run_once().failed == 1
    failed = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert failed is not None and failed.last_error_code == "OSO-E208"
    fixed = Directory.from_toml(directory_toml().encode(), DEV, source="<fixed>")
    pair.set_sender_directory(fixed)
    pair.sender_store.requeue_outbound(record.pk, now=pair.clock())  # the envelope is valid
    assert pair.outbox.run_once().delivered == 1


# --- the outbox lease is kept alive while a send runs -----------------------------------------


def test_a_long_send_keeps_its_claim_and_a_dead_ones_claim_runs_out(pair: GatewayPair) -> None:
    import threading
    import time

    prepared = pair.prepare(sample_xml())
    pair.outbox.enqueue(prepared)
    pair.outbox.lease = timedelta(seconds=0.3)
    inside, release = threading.Event(), threading.Event()
    real = pair.transport.post

    def slow(url: str, data: bytes, *, action: str) -> object:
        inside.set()
        release.wait(10)
        return real(url, data, action=action)

    pair.transport.post = slow  # type: ignore[method-assign]
    worker = threading.Thread(target=pair.outbox.run_once)
    worker.start()
    assert inside.wait(10)
    # well past the lease, the running send still holds its claim (heartbeat)
    for _ in range(4):
        time.sleep(0.3)
        pair.clock.advance(timedelta(seconds=0.3))
        assert pair.sender_store.claim_next_outbound(now=pair.clock(), lease=timedelta(0)) is None
    release.set()
    worker.join(10)
    stored = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert stored is not None and stored.status == m.DELIVERED


def test_extend_lease_refuses_a_claim_that_is_no_longer_ours(pair: GatewayPair) -> None:
    prepared = pair.prepare(sample_xml())
    pair.outbox.enqueue(prepared)
    lease = timedelta(seconds=5)
    first = pair.sender_store.claim_next_outbound(now=pair.clock(), lease=lease)
    assert first is not None
    until = pair.clock() + lease
    assert pair.sender_store.extend_lease(first.pk, attempt=first.attempts, until=until)
    pair.clock.advance(timedelta(seconds=30))  # the worker died: its lease ran out
    second = pair.sender_store.claim_next_outbound(now=pair.clock(), lease=lease)
    assert second is not None and second.attempts == first.attempts + 1
    assert not pair.sender_store.extend_lease(first.pk, attempt=first.attempts, until=until)


def test_the_lease_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[retry]\nlease_seconds = 4\n[server]\nmetrics_port = 0\n")
    settings = load_settings(path, {})
    assert settings.retry.lease_seconds == 4.0 and settings.server.metrics_port == 0
    path.write_text("[retry]\nlease_seconds = 0.1\n")
    from oso_gateway.errors import ConfigError

    with pytest.raises(ConfigError, match=r"retry\.lease_seconds"):
        load_settings(path, {})


# --- serve on a busy port: an error code, not a traceback -------------------------------------


def test_serve_on_a_busy_port_ends_with_an_error_code(tmp_path: Path) -> None:
    key = tmp_path / "storage.key"
    CliRunner().invoke(main, ["db", "keygen", "--out", str(key)])
    config = _example_copy(tmp_path, "devcollege", key=key)
    assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "oso_gateway.cli",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--no-outbox",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert f"OSO-E561: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


# --- a plain pip install prints no warnings ---------------------------------------------------


def _package_source(tmp_path: Path) -> Path:
    """What a build of the package reads, copied out of the checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("oso_gateway", "schemas"):
        shutil.copytree(
            REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    return src


def _assert_quiet(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    for marker in ("Warning", "deprecated", "!!"):
        assert marker not in output, output[-3000:]


@pytest.mark.slow
def test_building_the_package_prints_no_warnings(tmp_path: Path) -> None:
    src = _package_source(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "w"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    _assert_quiet(result)


@pytest.mark.slow
def test_an_editable_install_prints_no_warnings(tmp_path: Path) -> None:
    """``make venv`` installs the checkout editable: setuptools 80+ printed a boxed
    "Editable installation" warning for it until the package directory was declared."""
    src = _package_source(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-e",
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    _assert_quiet(result)
    where = subprocess.run(
        [str(python), "-c", "import oso_gateway; print(oso_gateway.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert Path(where.stdout.strip()).resolve() == (src / "oso_gateway" / "__init__.py").resolve()


@pytest.mark.parametrize("command", [["inbox", "list"], ["outbox", "run", "--once"]])
def test_a_crl_file_that_does_not_parse_is_a_configuration_error_everywhere(
    tmp_path: Path, command: list[str]
) -> None:
    """``directory check`` exited 2 for it, other commands 1 (found by a helper's walkthrough);
    every one names the file."""
    from oso_gateway.transfer.demo import PRIMARY_OIN, setup_dev_gateways

    config = setup_dev_gateways(tmp_path)[PRIMARY_OIN].config_file
    broken = tmp_path / "broken.crl.pem"
    broken.write_bytes(b"-----BEGIN X509 CRL-----\nbroken\n-----END X509 CRL-----\n")
    text = config.read_text()
    start = text.index("crl_files = [")
    end = text.index("]", start) + 1
    config.write_text(text[:start] + f'crl_files = ["{broken}"]' + text[end:])
    result = CliRunner().invoke(main, ["--config", str(config), *command])
    assert result.exit_code == 2, result.output
    assert "OSO-E320" in result.output and str(broken) in result.output


def test_the_commands_without_their_own_config_option_are_the_ones_the_doc_names() -> None:
    """operations.md said every command takes --config after its name; `validate`,
    `generate` and others refused it (found by a helper's walkthrough). The doc now names
    the ones that take none; this holds the list to the commands."""
    import click

    def without(command: click.Command, path: tuple[str, ...]) -> list[str]:
        if isinstance(command, click.Group):
            return [
                n for name, sub in command.commands.items() for n in without(sub, (*path, name))
            ]
        own = any(isinstance(p, click.Option) and "--config" in p.opts for p in command.params)
        return [] if own else [" ".join(path)]

    doc = (REPO / "docs" / "operations.md").read_text()
    sentence = doc.split("The commands that need no gateway (", 1)[1].split(")", 1)[0]
    named = {n.strip().strip("`").removesuffix(" …") for n in sentence.split(",")}
    found = {n.split()[0] if n.startswith("pki ") else n for n in without(main, ())}
    assert found == named
