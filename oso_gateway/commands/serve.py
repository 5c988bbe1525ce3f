"""``oso-gateway serve``: the gateway's HTTPS endpoint (cheroot, mutual TLS) and outbox worker.

``--workers N`` runs N server processes listening on the same port (SO_REUSEPORT): Python runs one
thread at a time per process, so several processes are how one machine uses several cores. The
first process also runs the outbox worker (unless ``--no-outbox``).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from oso_gateway.commands.db import config_option, fail, settings_or_exit
from oso_gateway.commands.supervise import (
    Supervisor,
    name_this_process,
    outbox_worker_process,
    shared_metrics_dir,
    stop_on_signals,
    stop_with_parent,
)
from oso_gateway.config import Settings
from oso_gateway.errors import ConfigError, GatewayError, KeyMaterialError, SchemaNotCurrent
from oso_gateway.errors.logs import configure_logging
from oso_gateway.protocol import SOAP_PATH

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.runtime import RunningGateway
    from oso_gateway.transfer.services import GatewayServices


def _worker_process(
    config_file: Path | None, host: str | None, port: int, threads: int
) -> None:  # pragma: no cover - runs in a child process
    """One extra server process (no outbox, no anchoring): until SIGTERM."""
    from oso_gateway.runtime import build_services, hold_presence, start_gateway

    name_this_process()
    configure_logging()
    settings = _settings(config_file, host)
    services = build_services(settings)
    hold_presence(services, what="serve receiver")
    running = start_gateway(
        settings,
        services,
        port=port,
        threads=threads,
        reuse_port=True,
        outbox=False,
        anchor=False,
        stop_event=stop_on_signals(),
    )
    stop_with_parent(running.stop_event)
    _watch_trust(running)
    try:
        running.stop_event.wait()
    finally:
        running.stop()
        services.close()


def _watch_trust(running: RunningGateway) -> threading.Event:
    """Reload the trust material when its files change, and at once on SIGHUP."""
    from oso_gateway.runtime import start_trust_reloader

    thread, wake = start_trust_reloader(running.services, running.stop_event, soap=running.soap)
    running.threads.append(thread)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: wake.set())
    return wake


def _settings(config_file: Path | None, host: str | None) -> Settings:
    settings = settings_or_exit(config_file)
    if host is not None:
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, host=host)
        )
    return settings


def _served_path_problems(services: GatewayServices) -> list[str]:
    from oso_gateway.web.soap import endpoint_path_problems

    return endpoint_path_problems(
        (s.school.code, s.endpoint) for s in services.receiver.config.served
    )


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Listen address (default: server.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: server.port).")
@click.option("--threads", type=int, default=8, show_default=True, help="Threads per process.")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Processes."
)
@click.option(
    "--outbox-workers",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="Outbox worker processes (0: a thread of the first process delivers).",
)
@click.option(
    "--outbox/--no-outbox",
    default=True,
    show_default=True,
    help="Also deliver queued outgoing dossiers in this process.",
)
def serve_command(
    config_file: Path | None,
    host: str | None,
    port: int | None,
    threads: int,
    workers: int,
    outbox_workers: int,
    outbox: bool,
) -> None:
    """Receive dossiers over mutual TLS (refuses to start on an old database schema)."""
    configure_logging()
    settings = _settings(config_file, host)
    port = settings.server.port if port is None else port
    if workers > 1 and port == 0:
        fail(ConfigError("--workers needs a fixed port"), status=2)
    with shared_metrics_dir():  # before prometheus-client is imported
        _serve(settings, config_file, host, port, threads, workers, outbox_workers, outbox)


def _serve(
    settings: Settings,
    config_file: Path | None,
    host: str | None,
    port: int,
    threads: int,
    workers: int,
    outbox_workers: int,
    outbox: bool,
) -> None:
    """Start the first process's listeners and the worker processes; wait for a stop."""
    running = _start(
        settings, port=port, threads=threads, workers=workers, outbox=outbox and not outbox_workers
    )
    supervisor = Supervisor()
    for i in range(1, workers):
        supervisor.add(
            f"oso-gateway-receiver-{i}", _worker_process, config_file, host, port, threads
        )
    for i in range(1, outbox_workers + 1):
        supervisor.add(f"oso-gateway-outbox-{i}", outbox_worker_process, config_file)
    supervisor.start()
    _watch_trust(running)
    _forward_sighup(supervisor)
    from oso_gateway.runtime import start_crl_fetcher

    fetching = start_crl_fetcher(running.services, running.stop_event)  # this process only
    if fetching is not None:
        running.threads.append(fetching)
    running.threads.append(_start_supervising(supervisor, running.stop_event))
    click.echo(
        f"oso-gateway serving on {running.soap.url}{SOAP_PATH} (mutual TLS, "
        f"{workers} process(es) x {threads} threads"
        + (f", {outbox_workers} outbox worker process(es)" if outbox_workers else "")
        + ")"
    )
    if running.console is not None:
        click.echo(f"operator console on {running.console.url}")
    if running.metrics is not None:
        click.echo(f"metrics (plain HTTP, this machine only) on {running.metrics.url}/metrics")
    if running.api is not None:
        click.echo(f"school API on {running.api.url} (OpenAPI: {running.api.url}openapi.json)")
    try:
        running.stop_event.wait()
    finally:
        supervisor.signal_all(signal.SIGTERM)  # drain: each finishes what it is doing
        running.stop()
        supervisor.drain(timeout=30)
        running.services.close()
        click.echo("stopped")


def _start_supervising(supervisor: Supervisor, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=supervisor.run, args=(stop,), name="supervisor", daemon=True)
    thread.start()
    return thread


def _forward_sighup(supervisor: Supervisor) -> None:
    """SIGHUP to the first process also reloads every worker process."""
    previous = signal.getsignal(signal.SIGHUP)

    def _hup(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        supervisor.signal_all(signal.SIGHUP)

    signal.signal(signal.SIGHUP, _hup)


def _start(
    settings: Settings, *, port: int, threads: int, workers: int, outbox: bool
) -> RunningGateway:
    """The first process: SOAP listener, outbox worker, log anchoring and (when enabled) the
    console on its own listener. A problem ends the command with its code."""
    from oso_gateway.runtime import (
        build_services,
        start_console_in_thread,
        start_gateway,
        start_metrics_in_thread,
    )
    from oso_gateway.web.api import start_api_in_thread

    try:
        services = build_services(settings)
        _hold_presence(services, "serve")
        running = start_gateway(
            settings,
            services,
            port=port,
            threads=threads,
            reuse_port=workers > 1,
            outbox=outbox,
            stop_event=stop_on_signals(),
        )
    except (ConfigError, SchemaNotCurrent, KeyMaterialError) as exc:
        fail(exc, status=2)  # the configuration: settings, schema, our own key or CRL files
    except GatewayError as exc:
        fail(exc)
    for path_problem in _served_path_problems(services):
        click.echo(f"warning: {path_problem}", err=True)
    if settings.server.metrics_port is not None:
        try:
            running.metrics = start_metrics_in_thread(
                running.soap, port=settings.server.metrics_port
            )
        except ConfigError as exc:
            running.stop()
            services.close()
            fail(exc, status=2)
    if settings.console.enabled:  # its own listener, in this (first) process only
        try:
            running.console = start_console_in_thread(settings)  # the store without the key
        except (GatewayError, OSError) as exc:
            running.stop()
            services.close()
            problem = exc if isinstance(exc, GatewayError) else ConfigError(f"console: {exc}")
            fail(problem, status=2 if isinstance(problem, ConfigError) else 1)
    if settings.api.enabled:  # the school API: its own listener, in this process only
        try:
            running.api = start_api_in_thread(settings, services=services)
        except (GatewayError, OSError) as exc:
            running.stop()
            services.close()
            problem = exc if isinstance(exc, GatewayError) else ConfigError(f"school API: {exc}")
            fail(problem, status=2 if isinstance(problem, ConfigError) else 1)
    return running


def _hold_presence(services: GatewayServices, what: str) -> None:
    """``runtime.hold_presence``; the services are closed when it fails."""
    from oso_gateway.runtime import hold_presence

    try:
        hold_presence(services, what=what)
    except BaseException:
        services.close()
        raise


def register(group: click.Group) -> None:
    group.add_command(serve_command)
