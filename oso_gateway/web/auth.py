"""Console authentication: argon2id password hashes, login throttling.

* Passwords are hashed with argon2id (memory-hard; ``argon2-cffi``). A login for an unknown
  account verifies against a dummy hash, so it costs the same time as a wrong password.
* Failed logins are counted per account and per client address in the database
  (``OperatorStore.begin_attempt`` counts each attempt before the password is checked, so
  parallel guesses are counted too; a success takes it back). Past a few free failures each key
  is blocked for a delay that doubles with every further failure. During a block even the right
  password is refused. This is the second line: before it, Flask-Limiter bounds the rate of
  login attempts per address and per account (``oso_gateway.web.console``).

Form CSRF tokens are Flask-WTF's ``CSRFProtect`` (``oso_gateway.web.console``).
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from oso_gateway.store.operators import OperatorRecord, OperatorStore, ThrottlePolicy

#: argon2id, 64 MiB, 3 passes, 4 lanes (RFC 9106's second recommended option, lighter memory)
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4, type=Type.ID)


@functools.cache
def dummy_hash() -> str:
    """The hash an unknown account's password is checked against, so that it costs what a
    known one's does. Made once per process, when the console is built (``create_console_app``
    calls this), not on import: every CLI command imported this module and paid ~0.1 s."""
    return _HASHER.hash(secrets.token_urlsafe(16))


MIN_PASSWORD_LENGTH = 12
ACCOUNT_POLICY = ThrottlePolicy(free_failures=3)
#: one address may try more accounts (an office behind one NAT), but not without end
ADDRESS_POLICY = ThrottlePolicy(free_failures=10)


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string with salt and parameters)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords must have at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; ``None`` (unknown account) costs a dummy verification."""
    try:
        return _HASHER.verify(password_hash or dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A random password for demo accounts (about 128 bits)."""
    return secrets.token_urlsafe(16)


def throttle_keys(account: str, address: str) -> tuple[str, str]:
    return (f"account:{account[:80]}", f"ip:{address[:80]}")


@dataclass(frozen=True, kw_only=True)
class LoginResult:
    """``operator`` set: logged in. ``retry_after`` set: refused without checking the password."""

    operator: OperatorRecord | None = None
    retry_after: timedelta | None = None

    @property
    def throttled(self) -> bool:
        return self.retry_after is not None


def attempt_login(
    operators: OperatorStore, *, name: str, password: str, address: str, now: datetime
) -> LoginResult:
    """Check a login, applying and updating the throttle; no audit here (the caller logs)."""
    keys = throttle_keys(name, address)
    policies = (ACCOUNT_POLICY, ADDRESS_POLICY)
    blocked = operators.begin_attempt(keys, now=now, policies=policies)
    if blocked > timedelta(0):
        return LoginResult(retry_after=blocked)
    account = operators.get(name)
    if verify_password(account.password_hash if account else None, password) and account:
        operators.forgive(keys, policies=policies)
        operators.record_login(account.name, now=now)
        if needs_rehash(account.password_hash):
            operators.set_password_hash(account.name, _HASHER.hash(password))
        return LoginResult(operator=account)
    return LoginResult()
