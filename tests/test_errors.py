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
