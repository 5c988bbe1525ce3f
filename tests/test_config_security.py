"""From settings to the security objects: our identities (key + certificate) and the trust."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from oso_gateway.config import load_settings
from oso_gateway.errors import ConfigError, KeyMaterialError
from oso_gateway.runtime import load_identities, load_trust

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "certs" / "dev"
EXAMPLE = REPO / "examples" / "config" / "gateway-vendor.toml"
ONE, TWO = "00000001000000000001", "00000001000000000002"


def _config(tmp_path: Path, *, oin: str, key_of: str, cert_of: str, anchors: str = "") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[[identity]]\noin = "{oin}"\n'
        f'key_file = "{DEV / f"gateway-{key_of}.key.pem"}"\n'
        f'cert_file = "{DEV / f"gateway-{cert_of}.crt.pem"}"\n'
        f'chain_files = ["{DEV / "issuing-ca.crt.pem"}"]\n'
        f"[trust]\nanchor_files = [{anchors}]\n"
    )
    return path


def test_the_example_configuration_loads_its_identity_and_trust() -> None:
    settings = load_settings(EXAMPLE, {})
    (identity,) = load_identities(settings)
    assert identity.oin == "00000001000000000003"
    assert identity.private_key.key_size >= 3072
    assert [c.subject.rfc4514_string() for c in identity.chain] == [
        c.subject.rfc4514_string() for c in load_trust(settings).intermediates
    ]
    trust = load_trust(settings)
    assert len(trust.anchors) == 1 and len(trust.crls) == 2 and trust.require_crl


def test_a_certificate_that_does_not_match_the_key_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path, oin=ONE, key_of=ONE, cert_of=TWO)
    settings = load_settings(path, {})
    with pytest.raises(
        ConfigError, match=r"identity\[0\] .*cert_file .* does not match key_file"
    ) as exc:
        load_identities(settings)
    assert str(path) in str(exc.value)  # the file and the setting, as a misspelt key is named


def test_an_identity_whose_certificate_carries_another_oin_is_refused(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, oin=TWO, key_of=ONE, cert_of=ONE), {})
    with pytest.raises(ConfigError, match="carries another OIN"):
        load_identities(settings)


def test_unreadable_or_invalid_key_material_is_named_not_shown(tmp_path: Path) -> None:
    path = _config(tmp_path, oin=ONE, key_of=ONE, cert_of=ONE)
    text = path.read_text().replace(str(DEV / f"gateway-{ONE}.key.pem"), str(tmp_path / "no.key"))
    path.write_text(text)
    with pytest.raises(
        ConfigError, match=r"identity\[0\] .*: cannot read key_file .*no\.key"
    ) as exc:
        load_identities(load_settings(path, {}))
    assert str(exc.value).startswith(f"OSO-E501: {path}: ")
    shutil.copy(DEV / f"gateway-{ONE}.crt.pem", tmp_path / "no.key")  # a certificate, not a key
    with pytest.raises(KeyMaterialError) as info:
        load_identities(load_settings(path, {}))
    assert "BEGIN" not in str(info.value)


def test_trust_without_anchors_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, oin=ONE, key_of=ONE, cert_of=ONE), {})
    with pytest.raises(ConfigError, match=r"trust\.anchor_files"):
        load_trust(settings)
