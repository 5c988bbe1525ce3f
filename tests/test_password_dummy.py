"""The dummy hash that makes an unknown account's login cost what a known one's does: made when
the console is built, not when any command imports the module (it cost every CLI command ~0.1 s)."""

from __future__ import annotations

import subprocess
import sys

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


def test_an_unknown_account_is_checked_against_the_dummy_hash() -> None:
    first = auth.dummy_hash()
    assert first.startswith("$argon2id$") and auth.dummy_hash() is first  # made once
    assert auth.verify_password(None, "anything-at-all-x") is False
    known = auth.hash_password("correct-horse-battery")
    assert auth.verify_password(known, "correct-horse-battery") is True
    assert auth.verify_password(known, "wrong-horse-battery") is False
