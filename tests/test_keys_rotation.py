"""Storage keyring: per-item data keys, rotation (online, batched, resumable), retire and delete.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from gateway_pair import cli_config_and_store
from sqlalchemy import Engine, delete, select, update

from oso_gateway.errors import (
    AtRestDecryptionError,
    ConfigError,
    KeyringReadOnly,
    KeyStateError,
    KeyStillReferenced,
    UnknownStorageKey,
)
from oso_gateway.store import Imported, PupilFacts, Store
from oso_gateway.store import models as m
from oso_gateway.store.crypto import AtRestCipher, aad_for
from oso_gateway.store.keyring import (
    ACTIVE,
    INACTIVE,
    LocalKeyProvider,
    legacy_key_id,
)
from oso_gateway.store.lifecycle import Lifecycle
from oso_gateway.transfer.lifecycle import delete_key, list_keys, retire, rotate

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
KEY = bytes(range(32))
MARKER = b"Keyring-Marker-Pupil"


@pytest.fixture
def provider(tmp_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider(base_key=KEY, keyring_file=tmp_path / "keyring.json")


def _store(engine: Engine, provider: LocalKeyProvider) -> Store:
    return Store(engine, AtRestCipher(provider=provider))


def _import(store: Store, *, school: str = "01AB00") -> Imported:
    result = store.import_inbound(
        message_id=f"urn:uuid:{uuid.uuid4()}",
        action="urn:oso:dossier:deliver",
        dossier=b"<dossier>" + MARKER + b"</dossier>",
        payload_digest="cd" * 32,
        receipt=b"<receipt/>",
        now=NOW,
        counterpart_oin="00000001000000000001",
        counterpart_school="00YY00",
        our_school=school,
        pupil=PupilFacts(family_name="Jansen", birth_date=date(2014, 5, 6), bsn="123456782"),
    )
    assert isinstance(result, Imported)
    return result


def _make_legacy(store: Store, dossier_id: str) -> None:
    """Turn a dossier into the form rows had before data keys (directly under the storage key)."""
    plain = store.load_dossier(dossier_id)
    cipher = store.cipher
    with store.engine.begin() as conn:
        row = conn.execute(select(m.Dossier).where(m.Dossier.id == dossier_id)).one()
        message_id = conn.execute(
            select(m.Message.message_id).where(m.Message.id == row.message_pk)
        ).scalar_one()
        blob = cipher.encrypt(plain, aad=aad_for("dossiers", dossier_id, message_id))
        shown = cipher.encrypt(
            b'{"family_name": "Jansen"}', aad=aad_for("dossier_index", dossier_id)
        )
        conn.execute(delete(m.DataKeyRow).where(m.DataKeyRow.id == row.data_key_id))
        conn.execute(
            update(m.Dossier)
            .where(m.Dossier.id == dossier_id)
            .values(key_id=legacy_key_id(KEY), data_key_id=None, ciphertext=blob)
        )
        conn.execute(
            update(m.DossierIndex)
            .where(m.DossierIndex.dossier_id == dossier_id)
            .values(key_id=legacy_key_id(KEY), data_key_id=None, ciphertext=shown)
        )


def test_each_dossier_has_its_own_data_key_wrapped_by_the_storage_key(
    engine: Engine, provider: LocalKeyProvider
) -> None:
    store = _store(engine, provider)
    a, b = _import(store), _import(store)
    with engine.connect() as conn:
        rows = conn.execute(select(m.DataKeyRow.id, m.DataKeyRow.kek_id)).all()
        dossier_keys = conn.execute(select(m.Dossier.data_key_id)).scalars().all()
    assert len(rows) == 2 and {r.kek_id for r in rows} == {legacy_key_id(KEY)}
    assert set(dossier_keys) == {r.id for r in rows}
    assert store.load_dossier(a.dossier_id) == store.load_dossier(b.dossier_id)


def test_rotation_rewraps_every_data_key_and_old_rows_still_open(
    engine: Engine, provider: LocalKeyProvider
) -> None:
    store = _store(engine, provider)
    fresh, old = _import(store), _import(store)
    _make_legacy(store, old.dossier_id)
    lifecycle = Lifecycle(engine, store.cipher)
    assert lifecycle.key_use(legacy_key_id(KEY)).legacy_rows == 1

    result = rotate(lifecycle, now=NOW)

    assert result.new_key_id is not None and result.upgraded == 1 and result.rewrapped == 1
    assert lifecycle.key_use(legacy_key_id(KEY)).total == 0
    assert lifecycle.key_use(result.new_key_id).data_keys == 2
    states = {k.key_id: k.state for k in provider.keys()}
    assert states == {legacy_key_id(KEY): INACTIVE, result.new_key_id: ACTIVE}
    # another process (its own provider over the same keyring file) opens everything
    other = _store(engine, LocalKeyProvider(base_key=KEY, keyring_file=provider._file))
    for d in (fresh, old):
        assert MARKER in other.load_dossier(d.dossier_id)
    found = {d.dossier_id: d.pupil for d in other.find_dossiers(family_name="Jansen")}
    assert found[fresh.dossier_id].family_name == "Jansen"


def test_an_interrupted_rotation_resumes_where_it_stopped(
    engine: Engine, provider: LocalKeyProvider
) -> None:
    store = _store(engine, provider)
    dossiers = [_import(store) for _ in range(5)]
    lifecycle = Lifecycle(engine, store.cipher)

    class Crash(Exception):
        pass

    def crash(_: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        rotate(lifecycle, now=NOW, batch=2, after_batch=crash)
    new_key = provider.active_key_id()
    assert lifecycle.key_use(new_key).data_keys == 2  # one batch committed, then the crash
    assert lifecycle.key_use(legacy_key_id(KEY)).data_keys == 3
    for d in dossiers:  # mid-rotation everything still opens (both keys unwrap)
        assert MARKER in store.load_dossier(d.dossier_id)

    result = rotate(lifecycle, now=NOW, new_key=False, batch=2)

    assert result.new_key_id is None and result.rewrapped == 3
    assert lifecycle.key_use(legacy_key_id(KEY)).total == 0
    assert provider.active_key_id() == new_key


def test_a_retired_key_is_deleted_only_once_nothing_refers_to_it(
    engine: Engine, provider: LocalKeyProvider
) -> None:
    store = _store(engine, provider)
    dossier = _import(store)
    lifecycle = Lifecycle(engine, store.cipher)
    old = provider.active_key_id()
    with pytest.raises(KeyStateError) as active:
        retire(lifecycle, old, now=NOW)
    assert active.value.code == "OSO-E531"

    new = provider.create_key()  # a new key, but nothing re-wrapped yet
    retire(lifecycle, old, now=NOW)
    with pytest.raises(KeyStillReferenced) as referenced:
        delete_key(lifecycle, old, now=NOW)
    assert referenced.value.code == "OSO-E532"

    rotate(lifecycle, now=NOW, new_key=False)
    delete_key(lifecycle, old, now=NOW)

    assert {k.key_id: k.state for k in list_keys(lifecycle) for k in [k.info]}[old] == "destroyed"
    assert MARKER in store.load_dossier(dossier.dossier_id)
    # even with the configured key still in storage.key, a destroyed key is never used again
    reread = LocalKeyProvider(base_key=KEY, keyring_file=provider._file)
    assert reread.active_key_id() == new
    with pytest.raises(AtRestDecryptionError):
        reread.unwrap(old, b"\x00" * 60, aad=b"x")
    saved = json.loads(provider._file.read_text())
    assert all(k["key"] is None for k in saved["keys"] if k["id"] == old)


def test_unknown_keys_and_a_read_only_keyring_are_typed_errors(
    engine: Engine, tmp_path: Path
) -> None:
    provider = LocalKeyProvider(base_key=KEY, keyring_file=tmp_path / "keyring.json")
    lifecycle = Lifecycle(engine, AtRestCipher(provider=provider))
    with pytest.raises(UnknownStorageKey) as unknown:
        retire(lifecycle, "0123456789abcdef", now=NOW)
    assert unknown.value.code == "OSO-E533"
    provider.create_key()
    from_env = LocalKeyProvider(keyring_text=provider._file.read_text())
    with pytest.raises(KeyringReadOnly) as readonly:
        from_env.create_key()
    assert readonly.value.code == "OSO-E534"


def test_per_school_keys_wrap_only_that_schools_data(
    engine: Engine, provider: LocalKeyProvider
) -> None:
    store = _store(engine, provider)
    lifecycle = Lifecycle(engine, store.cipher)
    ours, other = _import(store, school="01AB00"), _import(store, school="02CD00")
    result = rotate(lifecycle, now=NOW, school="01AB00")
    assert result.new_key_id is not None
    with engine.connect() as conn:
        by_school = dict(conn.execute(select(m.DataKeyRow.school, m.DataKeyRow.kek_id)).all())
    assert by_school == {"01AB00": result.new_key_id, "02CD00": legacy_key_id(KEY)}
    assert MARKER in store.load_dossier(ours.dossier_id)
    assert MARKER in store.load_dossier(other.dossier_id)
    later = _import(store, school="01AB00")
    with engine.connect() as conn:
        kek = conn.execute(
            select(m.DataKeyRow.kek_id)
            .join(m.Dossier, m.Dossier.data_key_id == m.DataKeyRow.id)
            .where(m.Dossier.id == later.dossier_id)
        ).scalar_one()
    assert kek == result.new_key_id


def test_a_rotation_of_all_schools_gives_each_school_with_a_key_a_new_one(
    engine: Engine, provider: LocalKeyProvider
) -> None:
    """A plain rotation left the schools' own keys as they were (the docs said "every data
    key"), and a vendor's loop of `keys rotate --school` took about 3 s a school."""
    store = _store(engine, provider)
    lifecycle = Lifecycle(engine, store.cipher)
    for school in ("01AB00", "02CD00", "03EF00"):
        _import(store, school=school)
    first = {s: rotate(lifecycle, now=NOW, school=s).new_key_id for s in ("01AB00", "02CD00")}
    plain = rotate(lifecycle, now=NOW)
    with engine.connect() as conn:
        by_school = dict(conn.execute(select(m.DataKeyRow.school, m.DataKeyRow.kek_id)).all())
    assert by_school == {**first, "03EF00": plain.new_key_id}  # the schools' keys stayed

    result = rotate(lifecycle, now=NOW, all_schools=True)
    with engine.connect() as conn:
        after = dict(conn.execute(select(m.DataKeyRow.school, m.DataKeyRow.kek_id)).all())
    active = {k.school: k.key_id for k in provider.keys() if k.state == "active"}
    assert after == {s: active[s] for s in ("01AB00", "02CD00")} | {"03EF00": active[None]}
    assert active[None] == result.new_key_id
    assert not set(after.values()) & {*first.values(), plain.new_key_id}  # every one new
    assert result.rewrapped == 3


def test_the_keys_commands_list_rotate_retire_and_delete(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from oso_gateway.cli import main

    config, store = cli_config_and_store(tmp_path)
    engine = store.engine
    dossier = _import(store)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, [*args, "--config", str(config)])
        assert result.exit_code == 0, result.output
        return result.output

    old = legacy_key_id(KEY)
    assert old in run("keys", "list") and "active" in run("keys", "list")
    refused = runner.invoke(main, ["keys", "retire", old, "--config", str(config)])
    assert refused.exit_code == 1 and "OSO-E531" in refused.output
    out = run("keys", "rotate")
    assert "re-wrapped 1 data key" in out
    listed = [json.loads(line) for line in run("keys", "list", "--json").splitlines()]
    assert {k["key_id"]: (k["state"], k["data_keys"]) for k in listed}[old] == ("inactive", 0)
    run("keys", "retire", old)
    run("keys", "delete", old)
    table = {line.split()[0]: line.split() for line in run("keys", "list").splitlines()[1:]}
    assert table[old][1] == "destroyed" and table[old][4] == "NO"  # the AVAILABLE column
    assert [row[4] for key, row in table.items() if key != old] == ["yes"]
    assert (tmp_path / "storage-keyring.json").stat().st_mode & 0o777 == 0o600
    reopened = Store(
        engine,
        AtRestCipher(
            provider=LocalKeyProvider(base_key=KEY, keyring_file=tmp_path / "storage-keyring.json")
        ),
    )
    assert MARKER in reopened.load_dossier(dossier.dossier_id)
    assert "re-wrapped 1 data key" in run("keys", "rotate", "--all-schools")
    both = runner.invoke(
        main, ["keys", "rotate", "--all-schools", "--school", "00YY00", "--config", str(config)]
    )
    assert both.exit_code == 2 and "not both" in both.output


def test_the_keys_commands_answer_json(tmp_path: Path) -> None:
    """rotate, retire and delete had no --json (README: "Every command takes --json")."""
    from click.testing import CliRunner

    from oso_gateway.cli import main

    config, store = cli_config_and_store(tmp_path)
    _import(store)

    def run(*args: str) -> object:
        result = CliRunner().invoke(main, [*args, "--json", "--config", str(config)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    old = legacy_key_id(KEY)
    rotated = run("keys", "rotate")
    assert isinstance(rotated, dict) and rotated["rewrapped"] == 1 and rotated["new_key_id"]
    assert rotated["school"] is None
    assert run("keys", "retire", old) == {"key_id": old, "state": "retired"}
    assert run("keys", "delete", old) == {"key_id": old, "deleted": True}


def test_rotation_moves_the_pull_workflows_rows_and_only_then_frees_the_old_key(
    engine: Engine, provider: LocalKeyProvider
) -> None:
    from oso_gateway.store.pull import NewInzage, NewRequest, PullStore

    store = _store(engine, provider)
    pull = PullStore(store)
    request = pull.insert(
        NewRequest(
            side=m.HOLDER,
            request_id=f"urn:uuid:{uuid.uuid4()}",
            our_school="00YY00",
            counterpart_school="01AB00",
            counterpart_oin="00000001000000000002",
            status="received",
            requested_date="2026-09-01",
            deadline=NOW,
            pupil={"achternaam": "Pullmarker"},
        ),
        now=NOW,
    )
    pull.hold(request.pk, MARKER, now=NOW, name_warning=False)
    pull.record(
        NewInzage(
            school="00YY00",
            request_pk=request.pk,
            pupil_identifier="123456782",
            inzage_date="2026-08-30",
            how="gesprek",
            zienswijze="de ouders zijn het eens",
            waiver=None,
        ),
        now=NOW,
    )
    lifecycle = Lifecycle(engine, store.cipher)
    old = provider.active_key_id()
    assert lifecycle.key_use(old).legacy_rows == 2
    rotate(lifecycle, now=NOW)
    assert lifecycle.key_use(old).total == 0
    retire(lifecycle, old, now=NOW)
    delete_key(lifecycle, old, now=NOW)
    assert pull.pupil(request.pk) == {"achternaam": "Pullmarker"}
    assert pull.held_payload(request.pk) == MARKER


def test_a_keyring_shared_by_two_gateways_is_refused(tmp_path: Path) -> None:
    """Three example configurations in one directory shared the default keyring beside them: a
    rotation at one gateway made the others wrap their data under its key, search with its
    lookup key (objections no longer found) and lose data when it deleted that key (found by a
    helper's walkthrough). A keyring now names the storage.key of its gateway."""
    shared = tmp_path / "storage-keyring.json"
    first = LocalKeyProvider(base_key=KEY, keyring_file=shared)
    first.create_key()
    assert json.loads(shared.read_text())["config_key_id"] == legacy_key_id(KEY)
    other_key = bytes(range(1, 33))
    with pytest.raises(ConfigError) as refused:
        LocalKeyProvider(base_key=other_key, keyring_file=shared)
    assert refused.value.code == "OSO-E501"
    assert "another storage.key" in refused.value.detail
    assert LocalKeyProvider(base_key=KEY, keyring_file=shared).active_key_id() in {
        k.key_id for k in first.keys()
    }


def test_a_keyring_written_before_it_named_its_gateway_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "storage-keyring.json"
    LocalKeyProvider(base_key=KEY, keyring_file=path).create_key()
    doc = json.loads(path.read_text())
    del doc["config_key_id"]
    path.write_text(json.dumps(doc))
    provider = LocalKeyProvider(base_key=KEY, keyring_file=path)
    assert len(provider.keys()) == 2
    provider.create_key()  # the next save names this gateway
    assert json.loads(path.read_text())["config_key_id"] == legacy_key_id(KEY)


def test_the_example_gateways_each_have_a_keyring_of_their_own() -> None:
    from oso_gateway.config import load_settings
    from oso_gateway.store.keyring import keyring_file_for

    examples = Path(__file__).resolve().parent.parent / "examples" / "config"
    files = {keyring_file_for(load_settings(p, {})) for p in examples.glob("gateway-*.toml")}
    assert len(files) == 3


def test_a_row_written_under_a_key_another_process_added_opens_without_a_restart(
    tmp_path: Path,
) -> None:
    """``serve`` keeps its keyring: after ``keys rotate`` in another process, a pull row the
    CLI encrypted under the new key failed in ``serve`` with "the keyring does not hold X
    (the active key is X)" (found by a helper's walkthrough on PostgreSQL)."""
    path = tmp_path / "storage-keyring.json"
    serving = AtRestCipher(provider=LocalKeyProvider(base_key=KEY, keyring_file=path))
    assert serving.key_id == legacy_key_id(KEY)  # loaded before the rotation
    cli = AtRestCipher(provider=LocalKeyProvider(base_key=KEY, keyring_file=path))
    new_key = cli.provider.create_key()  # type: ignore[attr-defined]
    assert cli.key_id == new_key
    blob = cli.encrypt(b"pull row", aad=b"row-1")
    assert serving.decrypt(blob, aad=b"row-1", key_id=new_key) == b"pull row"


def test_keys_list_names_a_key_the_items_need_that_the_keyring_lacks(tmp_path: Path) -> None:
    """A keyring not restored after a rotation: the key that wraps the data was simply not
    listed, and every listed key read "available" (found by a helper's walkthrough of the
    restore check)."""
    from click.testing import CliRunner

    from oso_gateway.cli import main

    config, store = cli_config_and_store(tmp_path)
    _import(store)
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "rotate", "--config", str(config)]).exit_code == 0
    keyring = tmp_path / "storage-keyring.json"
    listed = [
        json.loads(line)
        for line in runner.invoke(
            main, ["keys", "list", "--json", "--config", str(config)]
        ).output.splitlines()
    ]
    new_key = next(k["key_id"] for k in listed if k["state"] == "active")
    keyring.rename(tmp_path / "elsewhere.json")  # the restore forgot it
    result = runner.invoke(main, ["keys", "list", "--json", "--config", str(config)])
    # exit 3, so that automation sees it (it exited 0: an operator's walkthrough)
    assert result.exit_code == 3, result.output
    assert new_key in result.stderr and "restore the keyring" in result.stderr
    rows = {k["key_id"]: k for k in map(json.loads, result.stdout.splitlines())}
    assert rows[new_key]["state"] == "unknown" and rows[new_key]["available"] is False
    assert rows[new_key]["data_keys"] == 1
    table = runner.invoke(main, ["keys", "list", "--config", str(config)]).output
    assert any(line.startswith(new_key) and " NO " in line for line in table.splitlines())


def test_a_writer_refuses_to_start_over_data_whose_storage_key_is_not_configured(
    tmp_path: Path,
) -> None:
    """Restored without its keyring, a gateway started "ready" and stored new dossiers under
    the key file's key; with the keyring back they could not be opened (an operator's
    walkthrough). Every command that builds the gateway's services (``serve``, ``outbox run``,
    ``send``, ``request``, the mailbox commands) now refuses, exit 2."""
    from datetime import UTC, datetime

    from click.testing import CliRunner

    from oso_gateway.cli import main
    from oso_gateway.dossier.generator import generate_dossier
    from oso_gateway.transfer.demo import SECONDARY_OIN, setup_dev_gateways

    gateway = setup_dev_gateways(tmp_path / "gw")[SECONDARY_OIN]
    config = str(gateway.config_file)
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "rotate", "--config", config]).exit_code == 0
    data = generate_dossier(overstap="POVO", seed=3, now=datetime.now(UTC)).decode()
    bsn = data.split("<bsn>")[1].split("<")[0]
    birth = data.split("<geboortedatum>")[1].split("<")[0]
    ask = ["request", "send", "--config", config, "--from", "01AB00", "--to", "00YY00",
           "--bsn", bsn, "--birth-date", birth, "--family-name", "Jansen"]  # fmt: skip
    sent = runner.invoke(main, ask)
    assert sent.exit_code == 0, sent.output  # a request: its pupil facts under the new key
    assert runner.invoke(main, ["outbox", "run", "--once", "--config", config]).exit_code == 0
    keyring = gateway.config_file.parent / "storage-keyring.json"
    assert keyring.exists()
    keyring.rename(tmp_path / "elsewhere.json")
    refused = runner.invoke(main, ["outbox", "run", "--once", "--config", config])
    assert refused.exit_code == 2, refused.output
    assert "OSO-E501" in refused.output and "restore the keyring" in refused.output
    # every command that builds the gateway's services: `request send` wrote on (a review)
    again = runner.invoke(main, [*ask, "--json"])
    assert again.exit_code == 2 and "OSO-E501" in again.output, again.output
    (tmp_path / "elsewhere.json").rename(keyring)  # restored: it runs again
    assert runner.invoke(main, ["outbox", "run", "--once", "--config", config]).exit_code == 0


def test_keys_list_says_when_a_rotation_is_unfinished(tmp_path: Path) -> None:
    """A rotation killed half-way left an inactive key wrapping items, and `keys list` showed
    it as any other (an operator's drill): it now says so, and how to finish."""
    from click.testing import CliRunner

    from oso_gateway.cli import main

    config, store = cli_config_and_store(tmp_path)
    for _ in range(3):
        _import(store)
    from oso_gateway.commands.keys import open_lifecycle

    lifecycle = open_lifecycle(config)  # as `keys rotate` does: the keyring file of the config

    class Crash(Exception):
        pass

    def crash(_: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        rotate(lifecycle, now=NOW, batch=1, after_batch=crash)
    runner = CliRunner()
    listed = runner.invoke(main, ["keys", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    old = legacy_key_id(KEY)
    assert f"a rotation is unfinished: {old} still wraps 2" in listed.output
    assert "keys rotate --resume" in listed.output
    resumed = runner.invoke(main, ["keys", "rotate", "--resume", "--config", str(config)])
    assert resumed.exit_code == 0, resumed.output
    listed = runner.invoke(main, ["keys", "list", "--config", str(config)])
    assert listed.exit_code == 0 and "unfinished" not in listed.output
