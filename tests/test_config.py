"""Settings: TOML file + OSO_GATEWAY_* environment, typed, with errors naming key and file."""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import pytest

from oso_gateway.config import Settings, generate_storage_key, load_settings
from oso_gateway.errors import ConfigError

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()
SECRET_LOOKING = base64.b64encode(b"S" * 31).decode()  # wrong length: must not be echoed


def _write(tmp_path: Path, text: str, name: str = "gateway.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FULL = f"""
data_dir = "var"
database_url = "postgresql+psycopg://gw@db.internal/oso"

[storage]
key = "{KEY_B64}"

[[identity]]
oin = "00000001000000000001"
key_file = "keys/gw1.key"
cert_file = "keys/gw1.pem"
chain_files = ["keys/issuing-ca.pem"]

[[identity]]
oin = "00000001000000000009"
key_file = "/etc/oso/rollover.key"
cert_file = "/etc/oso/rollover.pem"

[trust]
anchor_files = ["trust/root.pem"]
intermediate_files = ["trust/issuing.pem"]
crl_files = ["trust/issuing.crl", "trust/root.crl"]
require_crl = false

[directory]
file = "directory.toml"

[server]
host = "0.0.0.0"
port = 9443
tls_cert_file = "tls/server.pem"
tls_key_file = "tls/server.key"
tls_client_ca_file = "trust/root.pem"

[limits]
max_request_bytes = 2_000_000
request_timeout = 12.5

[retry]
max_attempts = 5
base_delay = 10
max_delay = 600
jitter = 0.1

[console]
enabled = true
"""


def test_a_full_file_is_read_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, FULL), {})
    assert s.data_dir == tmp_path / "var"
    assert s.database_url == "postgresql+psycopg://gw@db.internal/oso"
    assert s.storage_key == KEY
    assert [i.oin for i in s.identities] == ["00000001000000000001", "00000001000000000009"]
    assert s.identities[0].key_file == tmp_path / "keys/gw1.key"
    assert s.identities[0].chain_files == (tmp_path / "keys/issuing-ca.pem",)
    assert s.identities[1].cert_file == Path("/etc/oso/rollover.pem")
    assert s.trust.crl_files == (tmp_path / "trust/issuing.crl", tmp_path / "trust/root.crl")
    assert s.trust.require_crl is False
    assert s.directory_file == tmp_path / "directory.toml"
    assert (s.server.host, s.server.port) == ("0.0.0.0", 9443)  # noqa: S104
    assert s.server.tls_client_ca_file == tmp_path / "trust/root.pem"
    assert (s.limits.max_request_bytes, s.limits.request_timeout) == (2_000_000, 12.5)
    assert (s.retry.max_attempts, s.retry.base_delay, s.retry.max_delay) == (5, 10.0, 600.0)
    assert s.retry.jitter == 0.1 and s.console.enabled is True
    assert s.config_file == tmp_path / "gateway.toml"


def test_defaults_put_a_sqlite_database_in_the_data_directory(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, ""), {})
    assert s.data_dir == tmp_path / "data"
    assert s.database_url == f"sqlite:///{(tmp_path / 'data' / 'gateway.sqlite').as_posix()}"
    assert s.storage_key is None and s.identities == () and s.trust.require_crl is True
    assert s.server.port == 8443 and s.retry.max_attempts >= 1


def test_a_relative_sqlite_path_is_relative_to_the_file_like_other_paths(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, 'database_url = "sqlite:///db/gw.sqlite"\n'), {})
    assert s.database_url == f"sqlite:///{tmp_path}/db/gw.sqlite"
    absolute = load_settings(_write(tmp_path, 'database_url = "sqlite:////srv/gw.sqlite"\n'), {})
    assert absolute.database_url == "sqlite:////srv/gw.sqlite"
    memory = load_settings(_write(tmp_path, 'database_url = "sqlite://"\n'), {})
    assert memory.database_url == "sqlite://"


def test_settings_are_frozen_and_never_show_the_key(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, FULL), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.data_dir = tmp_path  # type: ignore[misc]
    assert KEY_B64 not in repr(s) and repr(KEY) not in repr(s)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    other = base64.b64encode(bytes(32)).decode()
    env = {
        "OSO_GATEWAY_DATABASE_URL": "sqlite:////srv/gw.sqlite",
        "OSO_GATEWAY_STORAGE_KEY": other,
        "OSO_GATEWAY_SERVER_PORT": "10443",
        "OSO_GATEWAY_TRUST_REQUIRE_CRL": "true",
        "OSO_GATEWAY_RETRY_JITTER": "0",
        "OSO_GATEWAY_DIRECTORY_FILE": "/srv/dir.toml",
        "OSO_GATEWAY_CONFIG": "/ignored/here",
        "PATH": "/usr/bin",
    }
    s = load_settings(_write(tmp_path, FULL), env)
    assert s.database_url == "sqlite:////srv/gw.sqlite"
    assert s.storage_key == bytes(32)
    assert s.server.port == 10443 and s.trust.require_crl is True and s.retry.jitter == 0.0
    assert s.directory_file == Path("/srv/dir.toml")


def test_the_environment_alone_is_enough_without_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "storage.key"
    key_file.write_text(generate_storage_key() + "\n")
    s = load_settings(
        None, {"OSO_GATEWAY_DATA_DIR": str(tmp_path), "OSO_GATEWAY_STORAGE_KEY_FILE": str(key_file)}
    )
    assert s.data_dir == tmp_path and s.config_file is None
    assert s.storage_key is not None and len(s.storage_key) == 32
    assert s.database_url.endswith(f"{tmp_path.as_posix()}/gateway.sqlite")


def test_a_key_file_may_hold_raw_bytes_or_base64(tmp_path: Path) -> None:
    (tmp_path / "raw.key").write_bytes(KEY)
    (tmp_path / "b64.key").write_text(KEY_B64)
    for name in ("raw.key", "b64.key"):
        s = load_settings(_write(tmp_path, f'[storage]\nkey_file = "{name}"\n'), {})
        assert s.storage_key == KEY


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("data_dri = 'x'\n", "data_dri: unknown key"),
        ("[server]\nprot = 1\nhots = 'x'\n", "unknown keys: server.hots, server.prot"),
        ("[server]\nport = 70000\n", "server.port: must be between 1 and 65535"),
        ("[server]\nport = '8443'\n", "server.port: must be an integer"),
        ("[trust]\nrequire_crl = 1\n", "trust.require_crl: must be true or false"),
        ("[limits]\nmax_request_bytes = true\n", "limits.max_request_bytes: must be an integer"),
        ("[retry]\nbase_delay = 60\nmax_delay = 5\n", "retry.max_delay: must be at least"),
        ("[retry]\njitter = 1.5\n", "retry.jitter: must be between"),
        ("[[identity]]\noin = '00000001000000000001'\n", "identity[0].key_file: is required"),
        (
            "[[identity]]\noin = '123'\nkey_file = 'k'\ncert_file = 'c'\n",
            "identity[0].oin: must be exactly 20 digits",
        ),
        ("[trust]\nanchor_files = 'root.pem'\n", "trust.anchor_files: must be a list"),
        ("[storage]\nkey = 'AA=='\nkey_file = 'k'\n", "set either storage.key or"),
        ("server = 3\n", "server: must be a table"),
        (
            "[console]\nlogin_limit_per_address = 'lots'\n",
            "console.login_limit_per_address: must read like 5/minute",
        ),
        ("[server\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_a_config_error_naming_the_key_and_the_file(
    tmp_path: Path, text: str, names: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(str(path))) as info:
        load_settings(path, {})
    assert names in str(info.value)
    assert info.value.code == "OSO-E501"


def test_a_bad_storage_key_is_reported_without_echoing_it(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[storage]\nkey = "{SECRET_LOOKING}"\n')
    with pytest.raises(ConfigError, match="32 bytes") as info:
        load_settings(path, {})
    assert SECRET_LOOKING not in str(info.value)
    with pytest.raises(ConfigError, match="not valid base64") as info:
        load_settings(None, {"OSO_GATEWAY_STORAGE_KEY": "not base64 at all!"})
    assert "at all" not in str(info.value)


def test_a_missing_file_or_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read configuration file .*nope\.toml"):
        load_settings(tmp_path / "nope.toml", {})
    path = _write(tmp_path, '[storage]\nkey_file = "missing.key"\n')
    # A key file not made yet is named when the key is needed, with how to make it (first run:
    # `db upgrade` and `directory check` do not need it).
    settings = load_settings(path, {})
    with pytest.raises(
        ConfigError, match=r"storage\.key_file .*missing\.key does not exist: .*db keygen --out"
    ):
        settings.require_storage_key()
    (tmp_path / "unreadable.key").mkdir()
    path = _write(tmp_path, '[storage]\nkey_file = "unreadable.key"\n')
    with pytest.raises(
        ConfigError, match=r"storage\.key_file: cannot read key file .*unreadable\.key"
    ):
        load_settings(path, {})


def test_unknown_or_malformed_environment_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OSO_GATEWAY_SERVR_PORT: unknown setting"):
        load_settings(None, {"OSO_GATEWAY_SERVR_PORT": "1"})
    with pytest.raises(ConfigError, match="OSO_GATEWAY_SERVER_PORT: must be an integer"):
        load_settings(None, {"OSO_GATEWAY_SERVER_PORT": "high"})
    with pytest.raises(ConfigError, match="OSO_GATEWAY_CONSOLE_ENABLED: must be true or false"):
        load_settings(None, {"OSO_GATEWAY_CONSOLE_ENABLED": "maybe"})
    # a value out of range is the variable's, not the file's (it was blamed on the file)
    config = _write(tmp_path, "[server]\nport = 8441\n")
    with pytest.raises(ConfigError) as out_of_range:
        load_settings(config, {"OSO_GATEWAY_SERVER_PORT": "99999"})
    assert out_of_range.value.detail.startswith(
        "environment: OSO_GATEWAY_SERVER_PORT (server.port)"
    )
    assert str(config) not in out_of_range.value.detail
    # so is a storage key that is not one (found by an operator's walkthrough; the file's key
    # was fine)
    keyed = _write(tmp_path, f'[storage]\nkey = "{KEY_B64}"\n')
    with pytest.raises(ConfigError) as bad_key:
        load_settings(keyed, {"OSO_GATEWAY_STORAGE_KEY": "notbase64secretvalue"})
    assert bad_key.value.detail.startswith("environment: OSO_GATEWAY_STORAGE_KEY (storage.key)")
    assert str(keyed) not in bad_key.value.detail and "notbase64" not in bad_key.value.detail


def test_commands_that_need_a_key_or_directory_say_which_setting_is_missing(
    tmp_path: Path,
) -> None:
    s: Settings = load_settings(_write(tmp_path, ""), {})
    with pytest.raises(ConfigError, match=r"storage\.key_file .*OSO_GATEWAY_STORAGE_KEY"):
        s.require_storage_key()
    with pytest.raises(ConfigError, match=r"directory\.file"):
        s.require_directory_file()


def test_a_school_may_require_the_inzage_to_name_the_version_previewed(tmp_path: Path) -> None:
    text = (
        "[pull]\ninzage_requires_version = true\n"
        '[pull.schools."01AB00"]\ninzage_requires_version = false\n'
    )
    s = load_settings(_write(tmp_path, text), {})
    assert s.pull.policy_for("00YY00").inzage_requires_version is True
    assert s.pull.policy_for("01AB00").inzage_requires_version is False
    assert (
        load_settings(_write(tmp_path, ""), {}).pull.policy_for("00YY00").inzage_requires_version
        is False
    )
