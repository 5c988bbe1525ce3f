"""Shared fixtures.

Optional components (xmlsec1, openssl, Apache Santuario, Chromium, PostgreSQL, the official
example dossiers in ../shared) are skipped with the reason printed when missing; CI sets
OSO_TEST_REQUIRE_<NAME>=1 so that a missing one fails instead of silently skipping. The published
XSD for the differential schema test is never in the tree: point OSO_OFFICIAL_XSD at a copy.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from gateway_pair import GatewayPair

    from oso_gateway.transfer.demo import DevGateway
    from oso_gateway.transfer.services import GatewayServices

REPO = Path(__file__).resolve().parent.parent


def _main_checkout(repo: Path) -> Path:
    """The main checkout: in a git worktree ``.git`` is a file naming <main>/.git/worktrees/<x>,
    and ../shared lies next to the main checkout, not next to the worktree."""
    git = repo / ".git"
    if git.is_file():
        text = git.read_text(encoding="utf-8").strip()
        gitdir = Path(text.removeprefix("gitdir:").strip())
        if text.startswith("gitdir:") and gitdir.parent.name == "worktrees":
            return gitdir.parent.parent.parent
    return repo


EXAMPLES_DIR = _main_checkout(REPO).parent / "shared" / "oso-gegevensset-2019.1" / "examples"


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


def official_example_files() -> list[Path]:
    """The example files, or [] when ../shared is absent (for code that loops over them)."""
    return sorted(EXAMPLES_DIR.glob("*.xml")) if EXAMPLES_DIR.is_dir() else []


def official_examples() -> list[Path]:
    """For parametrize: the example files. Without ../shared: one skipped case with the reason
    (or, when CI requires the examples, a collection error), never a silently empty list."""
    found = official_example_files()
    if found:
        return found
    reason = f"official examples not found at {EXAMPLES_DIR}"
    if os.environ.get("OSO_TEST_REQUIRE_EXAMPLES") == "1":
        pytest.fail(f"examples is required in this run but missing: {reason}", pytrace=False)
    skipped = pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-examples")
    return [skipped]  # type: ignore[list-item]


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


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[GatewayPair]:
    """A sender and a receiver gateway wired together in memory (tests/gateway_pair.py)."""
    from gateway_pair import make_pair

    gateways = make_pair(tmp_path)
    yield gateways
    gateways.close()


@pytest.fixture
def gateways(tmp_path: Path) -> dict[str, DevGateway]:
    """The two dev gateways' configuration files and settings (``setup_dev_gateways``)."""
    from oso_gateway.transfer.demo import setup_dev_gateways

    return setup_dev_gateways(tmp_path)


@pytest.fixture
def services(gateways: dict[str, DevGateway]) -> Iterator[GatewayServices]:
    """The receiving dev gateway's services, built from its configuration (closed after)."""
    from oso_gateway.runtime import build_services
    from oso_gateway.transfer.demo import SECONDARY_OIN

    built = build_services(gateways[SECONDARY_OIN].settings)
    yield built
    built.close()


@contextmanager
def postgres_schema_engine(url: str, prefix: str = "t") -> Iterator[Engine]:
    """A store engine on a throw-away PostgreSQL schema (isolated per test), dropped afterwards."""
    from sqlalchemy import create_engine, text

    from oso_gateway.store import create_store_engine

    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_store_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store engine on SQLite or on PostgreSQL (own schema per test); test files
    that need another shape (unmigrated, one database only) define their own ``engine``."""
    from oso_gateway.store import create_store_engine, upgrade

    if request.param == "sqlite":
        eng = create_store_engine(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    with postgres_schema_engine(request.getfixturevalue("postgres_url"), "e") as eng:
        upgrade(eng)
        yield eng
