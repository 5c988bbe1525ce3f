"""The dummy hash that makes an unknown account's login cost what a known one's does: made when
the console is built, not when any command imports the module (it cost every CLI command ~0.1 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from console_support import console_app
from gateway_pair import sqlite_store

from oso_gateway.web import auth


def test_importing_the_cli_makes_no_password_hash() -> None:
    probe = (
        "import oso_gateway.cli, oso_gateway.web.console\n"
        "from oso_gateway.web import auth\n"
        "print(auth.dummy_hash.cache_info().currsize)\n"
    )
    made = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert made == "0"


def test_an_unknown_account_is_checked_against_the_dummy_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown account costs a verification, as a known one does (a review: asserting only
    False would pass if the verification were skipped)."""
    checked: list[str] = []
    real = auth._HASHER

    class Counting:
        def verify(self, password_hash: str, password: str) -> bool:
            checked.append(password_hash)
            return real.verify(password_hash, password)

    first = auth.dummy_hash()
    assert first.startswith("$argon2id$") and auth.dummy_hash() is first  # made once
    monkeypatch.setattr(auth, "_HASHER", Counting())
    assert auth.verify_password(None, "anything-at-all-x") is False
    assert checked == [first]
    known = real.hash("correct-horse-battery")
    assert auth.verify_password(known, "correct-horse-battery") is True
    assert auth.verify_password(known, "wrong-horse-battery") is False
    assert checked == [first, known, known]


def test_building_the_console_makes_the_dummy_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made before the first login, so that an unknown account's first costs no more than the
    next (235 ms against 112 ms without: a review)."""
    made: list[int] = []
    monkeypatch.setattr(auth, "dummy_hash", lambda: made.append(1) or "x")
    store = sqlite_store(tmp_path / "gw.sqlite")
    try:
        console_app(tmp_path, store)
    finally:
        store.engine.dispose()
    assert made == [1]
