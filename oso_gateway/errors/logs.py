"""Logging that keeps pupil data out of the log, also when something unexpected fails.

Our own messages and ``GatewayError`` texts carry no pupil data by design. An unexpected
exception is another matter: its text is whatever a library made of its input (``time data
'2014-05-06' does not match format``, a ``KeyError`` with a name, a ``UnicodeDecodeError``
quoting bytes), and a catch-all's ``log.exception`` wrote it into the log. ``SafeFormatter``
writes such a traceback with every frame but without the exception texts: the type, where it
was raised and how it was reached, which is what an operator needs, stay.
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType

from oso_gateway.errors.base import GatewayError

#: the log line format of every long-running command
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
#: said in place of an exception's text that may hold data
WITHHELD = "(text withheld: it may hold pupil data)"
#: at most this many chained exceptions are written (a cycle or a long chain ends there)
_MAX_CHAIN = 16


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, oldest first."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < _MAX_CHAIN:
        seen.add(id(current))
        chain.append(current)
        cause = current.__cause__
        context = None if current.__suppress_context__ else current.__context__
        current = cause if cause is not None else context
    return chain[::-1]


def exception_text(exc: BaseException) -> str:
    """One exception's last traceback line: a ``GatewayError``'s text (code and detail, written
    without pupil data), an ``OSError``'s number and reason; any other only its type."""
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if isinstance(exc, GatewayError):
        return f"{name}: {exc}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{name}: [Errno {exc.errno}] {exc.strerror}"
    return f"{name}: {WITHHELD}"


def format_exception_safely(exc: BaseException) -> str:
    """The traceback of ``exc`` (and of the exceptions it chains) with the texts withheld."""
    parts: list[str] = []
    for number, item in enumerate(_chain(exc)):
        if number:
            parts.append("\nthen, while handling it or raised from it:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        parts.append(exception_text(item) + "\n")
    return "".join(parts).rstrip("\n")


class SafeFormatter(logging.Formatter):
    """A formatter whose tracebacks leave exception texts out (``format_exception_safely``)."""

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        exc = ei[1]
        return "" if exc is None else format_exception_safely(exc)


def configure_logging(level: int = logging.INFO) -> None:
    """Log to standard error with ``SafeFormatter`` (as ``logging.basicConfig``: nothing is
    changed when the root logger has a handler already)."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    migration = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, _AlembicPreamble) for f in migration.filters):
        migration.addFilter(_AlembicPreamble())


class _AlembicPreamble(logging.Filter):
    """Drops the two lines Alembic logs at INFO on every start of a migration context ("Context
    impl SQLiteImpl.", "Will assume non-transactional DDL."): noise for an operator. Its other
    lines (an upgrade it runs, warnings, errors) still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("Context impl ") or message.startswith("Will assume "))
