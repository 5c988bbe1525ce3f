"""An unexpected exception's text stays out of the log (``errors/logs.py``).

A library's exception text is made of its input: a birth date that does not parse, a name that
is no key, bytes that do not decode. A catch-all's ``log.exception`` wrote that into the log of
``serve``, the outbox worker and the supervisor; they now log the traceback without the texts
(the frames and the types stay), except for our own errors, which carry no pupil data.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from oso_gateway.errors import DossierPurged
from oso_gateway.errors.logs import WITHHELD, SafeFormatter, format_exception_safely

PUPIL = "Jantje de Vries 2014-05-06"


def _raise_chain() -> BaseException:
    """A ValueError with pupil data, raised from a KeyError with pupil data; returned caught."""

    def parse_birth_date() -> None:
        try:
            {}[PUPIL]
        except KeyError as exc:
            raise ValueError(f"time data {PUPIL!r} does not match format '%Y-%m-%d'") from exc

    try:
        parse_birth_date()
    except ValueError as exc:
        return exc
    raise AssertionError("not raised")


def test_a_traceback_keeps_its_frames_and_types_but_not_the_texts() -> None:
    text = format_exception_safely(_raise_chain())
    assert "Jantje" not in text and "2014-05-06" not in text
    assert text.count("Traceback (most recent call last):") == 2  # the chain, both parts
    assert "builtins.KeyError: " + WITHHELD in text
    assert "builtins.ValueError: " + WITHHELD in text
    assert "parse_birth_date" in text and "test_log_safety.py" in text


def test_our_own_errors_and_os_errors_keep_what_an_operator_needs() -> None:
    ours = format_exception_safely(DossierPurged("the dossier of urn:uuid:1 was purged"))
    assert "OSO-E530: the dossier of urn:uuid:1 was purged" in ours
    busy = format_exception_safely(OSError(98, "Address already in use", f"/tmp/{PUPIL}"))
    assert "[Errno 98] Address already in use" in busy and "Jantje" not in busy


def test_a_logged_exception_goes_through_the_formatter_without_its_text() -> None:
    record = logging.LogRecord(
        "oso_gateway.transfer.outbox",
        logging.ERROR,
        __file__,
        1,
        "sealing %s raised %s",
        ("urn:uuid:1", "ValueError"),
        (ValueError, _raise_chain(), _raise_chain().__traceback__),
    )
    line = SafeFormatter("%(levelname)s %(message)s").format(record)
    assert line.startswith("ERROR sealing urn:uuid:1 raised ValueError\nTraceback")
    assert "Jantje" not in line and WITHHELD in line


def test_configure_logging_writes_a_traceback_without_its_text() -> None:
    # in a fresh interpreter, as a long-running command starts
    script = textwrap.dedent(
        f"""
        import logging
        from oso_gateway.errors.logs import configure_logging
        configure_logging()
        try:
            int({PUPIL!r})
        except ValueError:
            logging.getLogger("oso_gateway.transfer.receive").exception("unexpected ValueError")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert "unexpected ValueError" in done.stderr and "Traceback" in done.stderr
    assert "Jantje" not in done.stderr and WITHHELD in done.stderr
    plain = subprocess.run(  # the same without it: the text was in the log
        [sys.executable, "-c", script.replace("configure_logging()", "logging.basicConfig()")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "Jantje" in plain.stderr


@pytest.mark.parametrize("command", [["serve"], ["outbox", "run", "--once"]])
def test_the_long_running_commands_set_up_the_safe_formatter(command: list[str]) -> None:
    # each sets up its logging first; a missing configuration file then ends it (exit 2)
    script = textwrap.dedent(
        f"""
        import logging
        from click.testing import CliRunner
        from oso_gateway.cli import main
        from oso_gateway.errors.logs import SafeFormatter
        result = CliRunner().invoke(main, {command!r} + ["--config", "/nonexistent/gw.toml"])
        assert result.exit_code == 2, (result.exit_code, result.output)
        (handler,) = logging.getLogger().handlers
        assert isinstance(handler.formatter, SafeFormatter), handler.formatter
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_alembics_start_of_context_lines_are_dropped_and_its_upgrades_still_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`serve` printed "Context impl SQLiteImpl." and "Will assume non-transactional DDL." at
    every start (found by a helper's walkthrough); an upgrade it runs must still show."""
    from oso_gateway.errors.logs import configure_logging

    configure_logging()
    configure_logging()  # twice: one filter
    migration = logging.getLogger("alembic.runtime.migration")
    with caplog.at_level(logging.INFO, logger="alembic.runtime.migration"):
        migration.info("Context impl %s.", "SQLiteImpl")
        migration.info("Will assume %s DDL.", "non-transactional")
        migration.info("Running upgrade %s -> %s, %s", "a", "b", "add a table")
    assert [r.getMessage() for r in caplog.records] == ["Running upgrade a -> b, add a table"]
    assert len(migration.filters) == 1
