"""Shared fixtures.

Optional components (xmlsec1, PostgreSQL, the official example dossiers in ../shared) are skipped
with the reason printed when missing; CI sets OSO_TEST_REQUIRE_<NAME>=1 so that a missing one fails
instead of silently skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO.parent / "shared" / "oso-gegevensset-2019.1" / "examples"


def require(name: str, available: bool, reason: str) -> None:
    """Skip (or, when CI demands the component, fail) if an optional component is missing."""
    if available:
        return
    if os.environ.get(f"OSO_TEST_REQUIRE_{name.upper()}") == "1":
        pytest.fail(f"{name} is required in this run but missing: {reason}")
    pytest.skip(f"{name} not available: {reason}")


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The official OSO gegevensset 2019.1 examples (never committed; read from ../shared)."""
    require(
        "examples",
        EXAMPLES_DIR.is_dir() and any(EXAMPLES_DIR.glob("*.xml")),
        f"official examples not found at {EXAMPLES_DIR}",
    )
    return EXAMPLES_DIR


def official_examples() -> list[Path]:
    """For parametrize: the example files, or [] when ../shared is absent (the test then skips)."""
    return sorted(EXAMPLES_DIR.glob("*.xml")) if EXAMPLES_DIR.is_dir() else []


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    """Path to the xmlsec1 command-line tool (Debian package xmlsec1)."""
    path = shutil.which("xmlsec1")
    require("xmlsec1", path is not None, "install the Debian package xmlsec1")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a PostgreSQL test database (set by .ci/run via .ci/postgres.sh)."""
    url = os.environ.get("OSO_TEST_POSTGRES_URL", "")
    require("postgres", bool(url), "set OSO_TEST_POSTGRES_URL (see .ci/postgres.sh)")
    return url
