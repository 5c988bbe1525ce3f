"""Every input the fuzzers found (``tests/vectors/fuzz/<target>-<what>.xml``) stays a typed
refusal: run through its target, it may raise only a ``GatewayError``. The targets are the ones
``python -m fuzz`` runs (``fuzz/targets.py``); atheris itself is not needed here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from oso_gateway.errors import GatewayError

REPO = Path(__file__).resolve().parent.parent
FOUND = sorted((REPO / "tests" / "vectors" / "fuzz").glob("*.xml"))
sys.path.insert(0, str(REPO))
from fuzz import targets  # noqa: E402


@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_a_found_input_is_refused_with_a_typed_error_or_accepted(path: Path) -> None:
    target = targets.TARGETS[path.stem.split("-", 1)[0]]
    try:
        target(path.read_bytes())
    except GatewayError:
        pass


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_every_target_accepts_its_own_seeds(name: str) -> None:
    for seed in targets.seeds(name):
        try:
            targets.TARGETS[name](seed)
        except GatewayError:
            pass


def test_there_are_found_inputs() -> None:
    assert {p.stem.split("-", 1)[0] for p in FOUND} >= {"open", "sealed"}
