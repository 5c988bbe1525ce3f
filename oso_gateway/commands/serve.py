"""``oso-gateway serve``: the gateway's HTTPS endpoint (cheroot, mutual TLS) and outbox worker.

``--workers N`` runs N server processes listening on the same port (SO_REUSEPORT): Python runs one
thread at a time per process, so several processes are how one machine uses several cores. The
first process also runs the outbox worker (unless ``--no-outbox``).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from oso_gateway.commands.db import config_option, fail, settings_or_exit
from oso_gateway.config import Settings
from oso_gateway.errors import ConfigError, GatewayError, SchemaNotCurrent

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.transfer.services import GatewayServices


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def _worker_process(
    config_file: Path | None, host: str | None, port: int, threads: int
) -> None:  # pragma: no cover - runs in a child process
    """One extra server process (no outbox): until SIGTERM."""
    from oso_gateway.server import start_gateway_in_thread
    from oso_gateway.transfer.services import build_services

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings(config_file, host)
    services = build_services(settings)
    running = start_gateway_in_thread(
        settings, services=services, port=port, threads=threads, reuse_port=True
    )
    try:
        _stop_on_signals().wait()
    finally:
        running.stop()
        services.close()


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
    outbox: bool,
) -> None:
    """Receive dossiers over mutual TLS (refuses to start on an old database schema)."""
    from oso_gateway.server import start_gateway_in_thread
    from oso_gateway.transfer.services import build_services

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings(config_file, host)
    port = settings.server.port if port is None else port
    if workers > 1 and port == 0:
        fail(ConfigError("--workers needs a fixed port"), status=2)
    try:
        services = build_services(settings)
        running = start_gateway_in_thread(
            settings, services=services, port=port, threads=threads, reuse_port=workers > 1
        )
    except (ConfigError, SchemaNotCurrent) as exc:
        fail(exc, status=2)
        return
    except GatewayError as exc:
        fail(exc)
        return
    for path_problem in _served_path_problems(services):
        click.echo(f"warning: {path_problem}", err=True)
    metrics_listener = None
    if settings.server.metrics_port is not None:
        from oso_gateway.server import start_plain_in_thread
        from oso_gateway.web.metrics import metrics_only_app

        try:
            metrics_listener = start_plain_in_thread(
                metrics_only_app(running.server.wsgi_app), port=settings.server.metrics_port
            )
        except ConfigError as exc:
            running.stop()
            services.close()
            fail(exc, status=2)
            return
    console = None
    if settings.console.enabled:  # its own listener, in this (first) process only
        from oso_gateway.web.console import start_console_in_thread

        try:
            console = start_console_in_thread(settings)  # opens the store without the key
        except (GatewayError, OSError) as exc:
            running.stop()
            services.close()
            problem = exc if isinstance(exc, GatewayError) else ConfigError(f"console: {exc}")
            fail(problem, status=2 if isinstance(problem, ConfigError) else 1)
            return
    api = None
    if settings.api.enabled:  # the school API: its own listener, in this process only
        from oso_gateway.web.api import start_api_in_thread

        try:
            api = start_api_in_thread(settings, services=services)
        except (GatewayError, OSError) as exc:
            if console is not None:
                console.stop()
            running.stop()
            services.close()
            problem = exc if isinstance(exc, GatewayError) else ConfigError(f"school API: {exc}")
            fail(problem, status=2 if isinstance(problem, ConfigError) else 1)
            return
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(
            target=_worker_process,
            args=(config_file, host, port, threads),
            name=f"oso-gateway-worker-{i}",
            daemon=True,
        )
        for i in range(1, workers)
    ]
    for child in children:
        child.start()
    click.echo(
        f"oso-gateway serving on {running.url}/oso/v1/messages (mutual TLS, "
        f"{workers} process(es) x {threads} threads)"
    )
    if console is not None:
        click.echo(f"operator console on {console.url}")
    if metrics_listener is not None:
        click.echo(f"metrics (plain HTTP, this machine only) on {metrics_listener.url}/metrics")
    if api is not None:
        click.echo(f"school API on {api.url} (OpenAPI: {api.url}openapi.json)")
    stop = _stop_on_signals()
    worker = None
    if outbox:
        worker = threading.Thread(
            target=services.outbox.run_forever, args=(stop,), name="outbox", daemon=True
        )
        worker.start()
    from oso_gateway.transfer.auditlog import anchor_periodically

    # Sign the transfer-log head now and then (log.anchor_every_events / _minutes).
    anchorer = threading.Thread(
        target=anchor_periodically,
        args=(stop, services.store, settings),
        kwargs={"identity": services.identities[0], "clock": services.clock},
        name="transfer-log-anchor",
        daemon=True,
    )
    anchorer.start()
    try:
        stop.wait()
    finally:
        for child in children:
            child.terminate()
        if console is not None:
            console.stop()
        if metrics_listener is not None:
            metrics_listener.stop()
        if api is not None:
            api.stop()
        running.stop()
        if worker is not None:
            worker.join(timeout=10)
        anchorer.join(timeout=10)
        for child in children:
            child.join(timeout=10)
        services.close()
        click.echo("stopped")


def register(group: click.Group) -> None:
    group.add_command(serve_command)
