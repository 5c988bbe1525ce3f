"""The error tree: stable, unique, well-formed codes."""

from __future__ import annotations

import re

import pytest

from oso_gateway import errors


def test_every_error_code_is_well_formed_and_unique() -> None:
    classes = errors.all_error_classes()
    assert len(classes) >= 5
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    for cls in classes:
        assert re.fullmatch(r"OSO-E\d{3}", cls.code), cls
        assert issubclass(cls, errors.GatewayError)
        assert cls.soap_fault in {"Client", "Server"}
        assert 400 <= cls.http_status <= 599


def test_registering_a_second_class_with_a_taken_code_is_refused() -> None:
    with pytest.raises(TypeError, match="duplicate error code"):

        class Clash(errors.RemoteError):  # pragma: no cover - the class statement itself fails
            code = errors.DossierSchemaError.code


def test_local_and_remote_errors_map_to_server_and_client_faults() -> None:
    assert errors.ConfigError("x").soap_fault == "Server"
    assert errors.DossierRuleError("x").soap_fault == "Client"
    assert errors.error_class_for("OSO-E102") is errors.DossierSchemaError
    assert errors.error_class_for("OSO-E999") is None


def test_error_text_carries_code_and_detail() -> None:
    err = errors.DossierSchemaError("line 3: element x not expected")
    assert str(err) == "OSO-E102: line 3: element x not expected"
    assert errors.StoreUnavailable().transient is True


def test_describe_finds_codes_of_modules_nobody_imported_yet() -> None:
    # In a fresh interpreter dossier.minimise (OSO-E105) is not loaded; describe() must still know
    # the code, or the console and `log show` would call it unknown.
    import subprocess
    import sys

    script = (
        "import sys; from oso_gateway import errors; "
        "assert 'oso_gateway.dossier.minimise' not in sys.modules; "
        "d = errors.describe('OSO-E105'); print(d.name, d.side, d.transient)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["DossierOptOutError", "remote", "False"]
    assert errors.describe("OSO-E999") is None


def test_description_uses_the_class_own_docstring_and_public_message() -> None:
    d = errors.describe("OSO-E502")
    assert d is not None
    assert d.side == "local" and d.transient and d.http_status == 503
    assert d.explanation.startswith("The database cannot be reached")
    assert d.public_message == errors.StoreUnavailable.public_message
