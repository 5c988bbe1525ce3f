"""``oso-gateway serve``: the gateway's HTTPS endpoint (cheroot, mutual TLS) and outbox worker."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from oso_gateway.commands.db import config_option, fail, settings_or_exit
from oso_gateway.errors import ConfigError, GatewayError, SchemaNotCurrent


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Listen address (default: server.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: server.port).")
@click.option("--threads", type=int, default=8, show_default=True, help="Worker threads.")
@click.option(
    "--outbox/--no-outbox",
    default=True,
    show_default=True,
    help="Also deliver queued outgoing dossiers in this process.",
)
def serve_command(
    config_file: Path | None, host: str | None, port: int | None, threads: int, outbox: bool
) -> None:
    """Receive dossiers over mutual TLS (refuses to start on an old database schema)."""
    import dataclasses

    from oso_gateway.server import start_gateway_in_thread
    from oso_gateway.transfer.services import build_services

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = settings_or_exit(config_file)
    if host is not None:
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, host=host)
        )
    try:
        services = build_services(settings)
        running = start_gateway_in_thread(settings, services=services, port=port, threads=threads)
    except (ConfigError, SchemaNotCurrent) as exc:
        fail(exc, status=2)
        return
    except GatewayError as exc:
        fail(exc)
        return
    click.echo(f"oso-gateway serving on {running.url}/oso/v1/messages (mutual TLS)")
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker = None
    if outbox:
        worker = threading.Thread(
            target=services.outbox.run_forever, args=(stop,), name="outbox", daemon=True
        )
        worker.start()
    try:
        stop.wait()
    finally:
        running.stop()
        if worker is not None:
            worker.join(timeout=10)
        services.close()
        click.echo("stopped")


def register(group: click.Group) -> None:
    group.add_command(serve_command)
