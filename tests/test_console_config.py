"""The `[console]` settings and the session secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from oso_gateway.config import ConsoleSettings, Settings, load_settings
from oso_gateway.errors import ConfigError
from oso_gateway.web.console import read_secret_key


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return load_settings(path, env or {})


def test_console_defaults_are_loopback_secure_cookies_and_fifteen_minutes(tmp_path: Path) -> None:
    console = _load(tmp_path, "").console
    assert console == ConsoleSettings()
    assert (console.host, console.port, console.path_prefix) == ("127.0.0.1", 8444, "/console")
    assert console.cookie_secure and console.session_timeout == 900


def test_console_keys_from_the_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"s" * 40)
    settings = _load(
        tmp_path,
        '[console]\nenabled = true\nport = 9000\npath_prefix = "/ops/console/"\n'
        'secret_key_file = "secret"\nsession_timeout = 600\n',
        {"OSO_GATEWAY_CONSOLE_COOKIE_SECURE": "false", "OSO_GATEWAY_CONSOLE_PORT": "9001"},
    )
    console = settings.console
    assert console.enabled and console.port == 9001 and not console.cookie_secure
    assert console.path_prefix == "/ops/console" and console.session_timeout == 600
    assert console.secret_key_file == tmp_path / "secret"
    assert read_secret_key(settings) == b"s" * 40
    assert _load(tmp_path, '[console]\npath_prefix = "/"\n').console.path_prefix == ""


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[console]\npath_prefix = "console"\n', "console.path_prefix"),
        ('[console]\npath_prefix = "/a b"\n', "console.path_prefix"),
        ("[console]\nsession_timeout = 5\n", "console.session_timeout"),
        ('[console]\ntls_cert_file = "c.pem"\n', "console.tls_cert_file"),
        ("[console]\ncookie_secure = 1\n", "console.cookie_secure"),
        ("[console]\nsecret = 1\n", "console.secret"),
    ],
)
def test_bad_console_settings_are_refused_by_name(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key) as info:
        _load(tmp_path, text)
    assert info.value.code == "OSO-E501"


def test_a_short_or_missing_secret_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "short").write_bytes(b"x" * 8)
    short = _load(tmp_path, '[console]\nsecret_key_file = "short"\n')
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        read_secret_key(short)
    missing = _load(tmp_path, '[console]\nsecret_key_file = "nope"\n')
    with pytest.raises(ConfigError, match="cannot read"):
        read_secret_key(missing)
    # Without a file: a fresh random key per process.
    default = _load(tmp_path, "")
    assert read_secret_key(default) != read_secret_key(default)
