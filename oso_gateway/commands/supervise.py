"""Worker processes of ``oso-gateway serve``, supervised: a crashed one is started again, a stop
drains them (SIGTERM: a receiver finishes its requests, an outbox worker its current attempt),
SIGHUP is passed on (trust reload).

Two kinds: extra **receivers** (``--workers N``: N-1 processes beside the first, on the same port
with SO_REUSEPORT) and **outbox workers** (``--outbox-workers M``). The transfer log stays one
chain whatever their number (appends are serialised by the store), and only the first process
anchors it.

Metrics: ``shared_metrics_dir`` sets ``PROMETHEUS_MULTIPROC_DIR`` for the first process and (by
inheritance) every child, so prometheus-client adds up the request counts of all of them; the
files of a child that ended are marked dead (``mark_process_dead``) before it is started again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from oso_gateway.errors.logs import configure_logging

log = logging.getLogger(__name__)

#: a child that dies sooner than this after its start counts towards the back-off
_QUICK_DEATH = 5.0
_MAX_BACKOFF = 30.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics_dir() -> Iterator[Path | None]:
    """prometheus-client's multi-process directory for this ``serve`` and its children: the
    operator's ``PROMETHEUS_MULTIPROC_DIR`` emptied of an earlier run's files, or a fresh
    temporary one (set in the environment, which the children inherit; unset and removed at
    the end). It must come before prometheus-client is imported (the library picks its value
    store at import): where that already happened (``serve`` called inside a test process),
    None and nothing changes (each process counts its own requests)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    if "prometheus_client" in sys.modules:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="oso-gateway-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _metrics_process_dead(pid: int | None) -> None:
    """Tell prometheus-client's multi-process mode that ``pid`` ended (its live gauges go; its
    counters and histograms stay in the sums)."""
    if pid is not None and os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


@dataclass
class _Slot:
    name: str
    target: Callable[..., None]
    args: tuple[object, ...]
    process: BaseProcess | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    not_before: float = 0.0


@dataclass
class Supervisor:
    """Keeps its child processes running until ``stop``."""

    slots: list[_Slot] = field(default_factory=list)
    _spawn: multiprocessing.context.SpawnContext = field(
        default_factory=lambda: multiprocessing.get_context("spawn")
    )

    def add(self, name: str, target: Callable[..., None], *args: object) -> None:
        self.slots.append(_Slot(name=name, target=target, args=args))

    def start(self) -> None:
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot: _Slot) -> None:
        process = self._spawn.Process(target=slot.target, args=slot.args, name=slot.name)
        process.daemon = True
        process.start()
        slot.process, slot.started_at = process, time.monotonic()

    def pids(self) -> dict[str, int | None]:
        return {s.name: (s.process.pid if s.process else None) for s in self.slots}

    def check(self) -> int:
        """Start again every child that ended (with a back-off for one that keeps dying)."""
        restarted = 0
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None or slot.process.is_alive() or now < slot.not_before:
                continue
            code = slot.process.exitcode
            _metrics_process_dead(slot.process.pid)
            quick = now - slot.started_at < _QUICK_DEATH
            slot.backoff = min(max(slot.backoff * 2, 1.0), _MAX_BACKOFF) if quick else 0.0
            if slot.backoff and slot.not_before <= slot.started_at:
                slot.not_before = now + slot.backoff
                log.error("%s ended (exit %s) right after its start; again in %.0fs",
                          slot.name, code, slot.backoff)  # fmt: skip
                continue
            log.error("%s ended (exit %s); starting it again", slot.name, code)
            slot.restarts += 1
            self._start(slot)
            restarted += 1
        return restarted

    def run(self, stop: threading.Event, *, interval: float = 0.5) -> None:
        while not stop.wait(interval):
            self.check()

    def signal_all(self, signum: int) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.pid and slot.process.is_alive():
                os.kill(slot.process.pid, signum)

    def drain(self, *, timeout: float = 30.0) -> None:
        """SIGTERM to every child, wait for them to finish (then SIGKILL what is left)."""
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            if slot.process is not None:
                slot.process.join(max(deadline - time.monotonic(), 0.1))
                if slot.process.is_alive():
                    log.error("%s did not stop in time: killed", slot.name)
                    slot.process.kill()
                    slot.process.join(5)


def stop_on_signals() -> threading.Event:
    """An event set on SIGTERM or SIGINT."""
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def stop_with_parent(stop: threading.Event) -> threading.Thread | None:
    """In a child: set ``stop`` when the supervising process ends, however it ends (a thread
    that waits on the parent's sentinel). A first process killed with SIGKILL left its workers
    running on the port, unsupervised, beside the restarted gateway, with no drain on a stop and
    the old code after an upgrade (an operator's drill). They now drain and end at once. None
    outside a child process."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return None

    def wait() -> None:
        assert parent is not None
        parent.join()
        if not stop.is_set():
            log.error("the supervising serve process (pid %s) ended: stopping", parent.pid)
            stop.set()

    thread = threading.Thread(target=wait, name="parent-watch", daemon=True)
    thread.start()
    return thread


def name_this_process() -> str:
    """Give this worker process a title that says what it is (``ps``, ``top``, ``pgrep -f``):
    ``oso-gateway-receiver-1 (serve 1234)``, from its slot's name and its supervisor's pid,
    instead of the interpreter's ``python3 -B -c from multiprocessing.spawn import …``."""
    from setproctitle import setproctitle

    title = f"{multiprocessing.current_process().name} (serve {os.getppid()})"
    setproctitle(title)
    return title


def outbox_worker_process(config_file: Path | None) -> None:  # pragma: no cover - a child
    """One outbox worker process: deliver due messages until SIGTERM (the current attempt is
    finished first)."""
    from oso_gateway.commands.db import settings_or_exit
    from oso_gateway.runtime import build_services, hold_presence, start_trust_reloader

    name_this_process()
    configure_logging()
    services = build_services(settings_or_exit(config_file))
    hold_presence(services, what="serve outbox worker")
    stop = stop_on_signals()
    stop_with_parent(stop)
    _thread, wake = start_trust_reloader(services, stop)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: wake.set())
    try:
        services.outbox.run_forever(stop)
    finally:
        services.close()
