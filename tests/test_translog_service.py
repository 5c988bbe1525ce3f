"""The transfer-log service: periodic anchoring, the [log] settings, time parsing, filters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oso_gateway.config import Settings, load_settings
from oso_gateway.errors import ConfigError
from oso_gateway.runtime import first_identity, load_identity_certificates
from oso_gateway.store import Store, create_store_engine, upgrade
from oso_gateway.store.logchain import Anchor, make_event
from oso_gateway.transfer import auditlog

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "certs" / "dev"
OIN = "00000001000000000001"
T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'data_dir = "data"\n\n[[identity]]\noin = "{OIN}"\n'
        f'key_file = "{(DEV / f"gateway-{OIN}.key.pem").as_posix()}"\n'
        f'cert_file = "{(DEV / f"gateway-{OIN}.crt.pem").as_posix()}"\n{extra}',
        encoding="utf-8",
    )
    return path


def _store(settings_path: Path) -> Store:
    settings = load_settings(settings_path, {})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_store_engine(settings.database_url)
    upgrade(engine)
    return Store(engine)


def _append(store: Store, count: int) -> None:
    for _ in range(count):
        store.append_log([make_event(at=T0, kind="message", status="queued")], now=T0)


def _maybe_anchor(store: Store, settings: Settings, now: datetime) -> Anchor | None:
    """``maybe_anchor`` signing with the configured identity (what ``serve`` passes)."""
    return auditlog.maybe_anchor(store, settings, now, identity=first_identity(settings))


def test_log_settings_default_to_an_anchor_file_in_the_data_directory(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), {})
    assert settings.anchor_file == tmp_path / "data" / "transfer-log.anchors"
    assert (settings.log.anchor_every_events, settings.log.anchor_every_minutes) == (1000, 60.0)


def test_log_settings_are_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    extra = '\n[log]\nanchor_file = "elsewhere/a.anchors"\nanchor_every_events = 5\n'
    extra += "anchor_every_minutes = 2.5\n"
    settings = load_settings(_config(tmp_path, extra), {})
    assert settings.anchor_file == tmp_path / "elsewhere" / "a.anchors"
    assert (settings.log.anchor_every_events, settings.log.anchor_every_minutes) == (5, 2.5)
    env = {"OSO_GATEWAY_LOG_ANCHOR_FILE": str(tmp_path / "env.anchors")}
    assert load_settings(_config(tmp_path), env).anchor_file == tmp_path / "env.anchors"


def test_unknown_or_out_of_range_log_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"log\.anchor_every: unknown key"):
        load_settings(_config(tmp_path, "\n[log]\nanchor_every = 5\n"), {})
    with pytest.raises(ConfigError, match=r"log\.anchor_every_events: must be"):
        load_settings(_config(tmp_path, "\n[log]\nanchor_every_events = 0\n"), {})


def test_maybe_anchor_anchors_after_the_configured_number_of_events(tmp_path: Path) -> None:
    path = _config(tmp_path, "\n[log]\nanchor_every_events = 3\nanchor_every_minutes = 600\n")
    settings = load_settings(path, {})
    store = _store(path)
    assert _maybe_anchor(store, settings, T0) is None  # empty log: nothing to anchor
    _append(store, 1)
    first = _maybe_anchor(store, settings, T0)  # the first event is anchored at once
    assert first is not None and first.seq == 1
    _append(store, 2)
    assert _maybe_anchor(store, settings, T0) is None  # 2 < 3 events since
    _append(store, 1)
    again = _maybe_anchor(store, settings, T0)
    assert again is not None and again.seq == 4
    assert [a.seq for a in auditlog.read_anchors(settings.anchor_file)] == [1, 4]


def test_maybe_anchor_anchors_after_the_configured_time_if_anything_was_appended(
    tmp_path: Path,
) -> None:
    path = _config(tmp_path, "\n[log]\nanchor_every_events = 1000\nanchor_every_minutes = 10\n")
    settings = load_settings(path, {})
    store = _store(path)
    _append(store, 1)
    assert _maybe_anchor(store, settings, T0) is not None
    later = T0 + timedelta(minutes=11)
    assert _maybe_anchor(store, settings, later) is None  # nothing new
    _append(store, 1)
    assert _maybe_anchor(store, settings, T0 + timedelta(minutes=5)) is None
    anchor = _maybe_anchor(store, settings, later)
    assert anchor is not None and anchor.seq == 2


def test_anchor_worker_anchors_and_anchors_once_more_when_stopped(tmp_path: Path) -> None:
    path = _config(tmp_path, "\n[log]\nanchor_every_events = 1\n")
    settings = load_settings(path, {})
    store = _store(path)
    _append(store, 2)
    stop = threading.Event()
    stop.set()
    identity = first_identity(settings)
    auditlog.anchor_periodically(stop, store, settings, identity=identity, clock=lambda: T0)
    anchors = auditlog.read_anchors(settings.anchor_file)
    assert [a.seq for a in anchors] == [2]  # the final pass had nothing new to anchor
    report = auditlog.verify_store_log(store, settings, load_identity_certificates(settings))
    assert report.ok and report.anchors == 1 and report.unanchored == 0


def test_parse_when_takes_iso_times_and_spans_back_from_now() -> None:
    now = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)
    assert auditlog.parse_when("24h", now=now) == now - timedelta(hours=24)
    assert auditlog.parse_when("90m", now=now) == now - timedelta(minutes=90)
    assert auditlog.parse_when("2w", now=now) == now - timedelta(weeks=2)
    assert auditlog.parse_when("2026-09-01", now=now) == datetime(2026, 9, 1, tzinfo=UTC)
    assert auditlog.parse_when("2026-09-01T10:00+02:00", now=now) == datetime(
        2026, 9, 1, 8, tzinfo=UTC
    )
    for bad in ("yesterday", "24 h", "-3d", ""):
        with pytest.raises(ValueError):
            auditlog.parse_when(bad, now=now)


def test_school_filter_matches_a_brin_or_a_brin_with_vestiging() -> None:
    event = make_event(
        at=T0, kind="message", status="queued", counterpart_brin="01AB", counterpart_vestiging="02"
    )
    assert auditlog.LogFilter(school=auditlog.normalise_school("01ab")).matches(event)
    assert auditlog.LogFilter(school="01AB02").matches(event)
    assert not auditlog.LogFilter(school="01AB00").matches(event)
    with pytest.raises(ValueError):
        auditlog.normalise_school("01AB0")
