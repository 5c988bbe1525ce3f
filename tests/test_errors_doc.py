"""docs/errors.md: generated from the error classes, and kept in step with them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from package_modules import import_all_modules

from oso_gateway import errors
from oso_gateway.cli import main
from oso_gateway.commands import errors as errors_doc
from oso_gateway.errors import base as errors_base

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classes a test defines register in a copy of the registry, not in the real one."""
    monkeypatch.setattr(errors_base, "_REGISTRY", dict(errors_base._REGISTRY))


def test_committed_error_reference_matches_the_code() -> None:
    expected = errors_doc.render_markdown()
    actual = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert actual == expected, (
        f"docs/errors.md is out of date with the error classes; regenerate it with "
        f"`{errors_doc.REGENERATE_COMMAND}`"
    )


def test_every_error_class_of_the_package_is_in_the_reference() -> None:
    import_all_modules()
    text = errors_doc.render_markdown()
    package_classes = [
        cls for cls in errors.all_error_classes() if cls.__module__.startswith("oso_gateway.")
    ]
    assert package_classes
    for cls in package_classes:
        assert f"| `{cls.code}` | `" in text, cls


def test_discovery_imports_modules_of_every_subpackage() -> None:
    import sys

    import_all_modules()
    assert "oso_gateway.security.xmlparse" in sys.modules
    assert "oso_gateway.dossier.findings" in sys.modules


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_error_class_of_the_package_lives_in_the_errors_package() -> None:
    # The reference and describe() see exactly the classes the errors package registers; a class
    # defined elsewhere in oso_gateway would be known only once its module happened to be loaded.
    import_all_modules()
    stray = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _subclasses(errors.GatewayError)
        if cls.__module__.startswith("oso_gateway.") and cls.__module__ != "oso_gateway.errors"
    ]
    assert stray == []
    for cls in errors.all_error_classes():
        if cls.__module__ == "oso_gateway.errors":
            assert getattr(errors, cls.__name__) is cls, cls


def test_a_new_error_class_appears_with_its_mapping_and_docstring(scratch_registry: None) -> None:
    class CacheOffline(errors.LocalError):
        """The replay cache could not be reached."""

        __module__ = "oso_gateway.transfer.fakecache"
        code = "OSO-E598"
        http_status = 503
        transient = True
        public_message = "Try again later."

    row = next(r for r in errors_doc.error_rows() if r.code == "OSO-E598")
    assert row.class_name == "transfer.fakecache.CacheOffline"
    assert (row.side, row.http_status, row.soap_fault, row.transient) == (
        "local",
        503,
        "Server",
        True,
    )
    line = next(ln for ln in errors_doc.render_markdown().splitlines() if "`OSO-E598`" in ln)
    assert (
        "| local | 503 | Server | yes | Try again later. | The replay cache could not be reached. |"
        in line
    )


def test_a_class_without_its_own_docstring_shows_a_dash_not_its_parents(
    scratch_registry: None,
) -> None:
    class Undocumented(errors.RemoteError):
        __module__ = "oso_gateway.dossier.fakerules"
        code = "OSO-E197"
        public_message = "Rejected | for a reason."

    line = next(ln for ln in errors_doc.render_markdown().splitlines() if "`OSO-E197`" in ln)
    assert line.endswith("| remote | 400 | Client | no | Rejected \\| for a reason. | — |")
    assert errors.RemoteError.__doc__ is not None
    assert errors.RemoteError.__doc__.strip() not in line


def test_error_classes_defined_outside_the_package_are_left_out(scratch_registry: None) -> None:
    class TestOnly(errors.RemoteError):
        code = "OSO-E196"

    assert not TestOnly.__module__.startswith("oso_gateway")
    assert all(r.code != "OSO-E196" for r in errors_doc.error_rows())


def test_reference_explains_every_code_range_from_the_errors_module() -> None:
    ranges = errors_doc.code_ranges()
    assert [r for r, _ in ranges] == [
        "OSO-E1xx",
        "OSO-E2xx",
        "OSO-E3xx",
        "OSO-E4xx",
        "OSO-E5xx",
        "OSO-E6xx",
    ]
    text = errors_doc.render_markdown()
    for code_range, area in ranges:
        assert f"| `{code_range}` | {area} |" in text


def test_errors_command_prints_the_markdown_reference() -> None:
    result = CliRunner().invoke(main, ["errors", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.output == errors_doc.render_markdown()


def test_errors_command_lists_each_code_with_what_the_peer_is_told() -> None:
    result = CliRunner().invoke(main, ["errors"])
    assert result.exit_code == 0, result.output
    for row in errors_doc.error_rows():
        assert row.code in result.output
    assert f"peer: {errors.TrustError.public_message}" in result.output


@pytest.mark.parametrize("given", ["OSO-E105", "oso-e105", "E105", "105"])
def test_errors_command_explains_one_code(given: str) -> None:
    """`oso-gateway errors OSO-E105` was a usage error (an administrator's walkthrough)."""
    result = CliRunner().invoke(main, ["errors", given])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OSO-E105  errors.DossierOptOutError")
    assert errors.DossierOptOutError.public_message in result.output
    unknown = CliRunner().invoke(main, ["errors", "OSO-E999"])
    assert unknown.exit_code == 2 and "not one of this version's codes" in unknown.output
