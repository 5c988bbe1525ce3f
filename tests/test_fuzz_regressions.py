"""Every input the fuzzers found (``tests/vectors/fuzz/<target>-<what>.xml``) stays a typed
refusal: run through its target, it raises the ``GatewayError`` with the code recorded in
``OUTCOME``. The targets are the ones ``python -m fuzz`` runs (``fuzz/targets.py``); atheris
itself is not needed here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from oso_gateway.errors import GatewayError

REPO = Path(__file__).resolve().parent.parent
FOUND = sorted((REPO / "tests" / "vectors" / "fuzz").glob("*.xml"))
sys.path.insert(0, str(REPO))
from fuzz import targets  # noqa: E402

#: each found input's outcome: the code it is refused with (``None``: accepted). A new found input
#: needs its entry here, so that a change of outcome is a decision, not an accident.
OUTCOME: dict[str, str | None] = {
    "open-certificate-subject-unparsable": "OSO-E221",  # the signer's subject does not parse
    # the token's certificate has version 18: cryptography's InvalidVersion is no ValueError
    "open-certificate-version-invalid": "OSO-E224",
    "sealed-relative-namespace-uri": "OSO-E240",  # exclusive C14N refuses a relative URI
}


@pytest.mark.parametrize("path", FOUND, ids=[p.stem for p in FOUND])
def test_a_found_input_is_refused_with_its_code(path: Path) -> None:
    assert path.stem in OUTCOME, f"add the outcome of {path.name} to OUTCOME"
    target = targets.TARGETS[path.stem.split("-", 1)[0]]
    try:
        target(path.read_bytes())
    except GatewayError as exc:
        assert exc.code == OUTCOME[path.stem]
    else:
        assert OUTCOME[path.stem] is None, f"{path.name} was accepted"


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_every_target_accepts_its_own_seeds(name: str) -> None:
    found = {path.read_bytes() for path in FOUND}
    made = [seed for seed in targets.seeds(name) if seed not in found]  # found: the test above
    assert made
    refused: dict[int, str] = {}
    for index, seed in enumerate(made):
        try:
            targets.TARGETS[name](seed)
        except GatewayError as exc:
            refused[index] = exc.code
    # the receipt target's first seed is a built receipt; the payload vectors after it are none
    expected = {i: "OSO-E450" for i in range(1, len(made))} if name == "receipt" else {}
    assert refused == expected


def test_there_are_found_inputs() -> None:
    assert {p.stem.split("-", 1)[0] for p in FOUND} >= {"open", "sealed"}
