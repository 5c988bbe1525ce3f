"""``oso-gateway demo [--keep-running] [--dossier FILE]``: two dev gateways hand a dossier over.

Runs ``oso_gateway.transfer.demo.run_demo_transfer`` in a fresh directory: the receiving gateway
over mutual TLS on loopback, a generated (fictional) POVO dossier (or the ``--dossier`` file)
queued and delivered by the sending gateway. Prints the verified receipt, the receiving school's
inbox line and both message logs; exits 1 when the dossier was not delivered with a verified
receipt.

``--keep-running`` then keeps both gateways up (SOAP endpoint + outbox worker + operator console)
and prints each console's URL with a demo ``admin`` and ``viewer`` account (random passwords, in
the demo's own databases), until Ctrl-C. Without it nothing is left running.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from oso_gateway.errors import GatewayError
from oso_gateway.protocol import SOAP_PATH

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.demo import DemoResult
    from oso_gateway.runtime import RunningGateway

DEMO_ACCOUNTS = (("demo-admin", "admin"), ("demo-viewer", "viewer"))


def print_result(result: DemoResult, *, keep: bool = True) -> None:
    if result.preview:
        click.echo("what will be shared (the parents' preview, without personal data):")
        click.echo(result.preview.rstrip())
        click.echo("")
    click.echo(f"message  {result.message_id}")
    click.echo(f"sender   {result.sender_url}")
    click.echo(f"receiver {result.receiver_url}")
    click.echo(f"status   {result.status}")
    receipt = result.receipt
    click.echo("")
    click.echo("receipt (signature verified):")
    if receipt is None:
        click.echo("  (none)")
    else:
        click.echo(f"  for message   {receipt.request_message_id}")
        click.echo(f"  status        {receipt.status}")
        click.echo(f"  received at   {receipt.received_at.isoformat()}")
        click.echo(f"  receiver      {receipt.receiver_brin}{receipt.receiver_vestiging}")
        click.echo(
            f"  payload       {receipt.payload_bytes} bytes, sha256 {receipt.payload_digest}"
        )
    click.echo("")
    click.echo("receiving school's inbox:")
    click.echo(f"  {result.inbox_line}")
    if result.config_files and keep:
        click.echo("")
        click.echo("gateway configurations (use after the demo: oso-gateway --config FILE ...):")
        for title, path in result.config_files:
            click.echo(f"  {title}")
            click.echo(f"    {path}")
        receiving, sending = result.config_files[1][1], result.config_files[0][1]
        click.echo(f"  e.g. oso-gateway --config {receiving} inbox list --json")
        click.echo(f"       oso-gateway --config {receiving} inbox export ID --out dossier.xml")
        click.echo(f"       oso-gateway --config {sending} outbox list --json")
    for title, lines in (
        ("sender's transfer log", result.sender_log),
        ("receiver's transfer log", result.receiver_log),
    ):
        click.echo("")
        click.echo(f"{title}:")
        for line in lines or ["(empty)"]:
            click.echo(f"  {line}")


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Directory for the demo gateways' state (default: a temporary one, removed after).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Keep both gateways and their operator consoles up until Ctrl-C.",
)
@click.option(
    "--flow",
    type=click.Choice(["push", "pull"]),
    default="push",
    show_default=True,
    help="push: the old school sends a prepared dossier; pull: the new school requests it, "
    "the old school accepts, records the parents' inzage and delivers.",
)
@click.option(
    "--dossier",
    "dossier_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Push this dossier file (sending school 00YY00, e.g. from `oso-gateway generate "
    "--overstap POVO`) instead of a generated one.",
)
def demo_command(
    workdir: Path | None, keep_running: bool, flow: str, dossier_file: Path | None
) -> None:
    """Hand a dossier from one development gateway to another (loopback, dev PKI)."""
    from oso_gateway.demo import run_demo_transfer
    from oso_gateway.store import models as m

    temporary = workdir is None
    # absolute: the configs it writes name their paths, which a config resolves against its
    # own folder (a relative --workdir named reldemo/gateway-…/reldemo/directory.toml)
    base = Path(tempfile.mkdtemp(prefix="oso-demo-")) if workdir is None else workdir.resolve()
    earlier = sorted(base.glob("gateway-*/config.toml"))
    if earlier:
        # the demo writes each gateway's configuration anew, with a new storage key: over an
        # earlier demo's gateways, their stored data could no longer be opened (OSO-E501: an
        # operator's walkthrough ran both flows into one directory)
        raise click.UsageError(
            f"{base} holds an earlier demo's gateways ({earlier[0].parent.name}, …), whose data "
            "is encrypted under their configuration's keys: give a new --workdir"
        )
    try:
        if flow == "pull":
            run_pull(base, keep=not temporary)
            if keep_running:
                keep_gateways_running(base)
            return
        try:
            dossier = dossier_file.read_bytes() if dossier_file is not None else None
            result = run_demo_transfer(base, dossier=dossier)
        except GatewayError as exc:
            click.echo(f"error: {exc.code}: {exc.detail}", err=True)
            raise SystemExit(1) from None
        print_result(result, keep=not temporary)
        ok = result.status == m.DELIVERED and result.receipt is not None
        if not ok:
            click.echo("\nthe demo transfer did not succeed", err=True)
            raise SystemExit(1)
        if keep_running:
            keep_gateways_running(base)
    finally:
        if temporary:
            shutil.rmtree(base, ignore_errors=True)


def run_pull(base: Path, *, keep: bool = True) -> None:
    """``--flow pull``: print each step; exit 1 unless the dossier was imported for its request."""
    from oso_gateway.demo_pull import run_demo_pull

    click.echo("pull workflow: the new school 01AB00 requests a dossier from the old school 00YY00")
    click.echo("")
    try:
        result = run_demo_pull(base, echo=click.echo)
    except GatewayError as exc:
        click.echo(f"error: {exc.code}: {exc.detail}", err=True)
        raise SystemExit(1) from None
    if result.preview:
        click.echo("")
        click.echo("what the parents were shown (categories, counts; no personal data):")
        categories = result.preview.get("categories")
        for category in categories if isinstance(categories, list) else []:
            items = sum(category["items"].values())
            click.echo(f"  {category['label_en']:<40} {category['action']:<10} {items} item(s)")
    click.echo("")
    click.echo("signed receipts:")
    for line in result.receipts:
        click.echo(f"  {line}")
    click.echo("")
    click.echo(f"old school  {result.sender_url}")
    click.echo(f"new school  {result.receiver_url}")
    if keep:
        from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN

        new_config = base / f"gateway-{SECONDARY_OIN}" / "config.toml"
        old_config = base / f"gateway-{PRIMARY_OIN}" / "config.toml"
        click.echo("")
        click.echo("gateway configurations (use after the demo: oso-gateway --config FILE ...):")
        click.echo(f"  new school (receiving)  {new_config}")
        click.echo(f"  old school (sending)    {old_config}")
        click.echo(f"  e.g. oso-gateway --config {new_config} inbox list --json")
        click.echo(f"       oso-gateway --config {new_config} request list --json")
        click.echo(f"       oso-gateway --config {old_config} request show {result.request_id}")
    if not result.ok:
        click.echo("\nthe pull workflow did not complete", err=True)
        raise SystemExit(1)


def keep_gateways_running(workdir: Path, *, stop: threading.Event | None = None) -> None:
    """Serve both demo gateways (SOAP + outbox + console) until SIGINT/SIGTERM or ``stop``."""
    from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN

    stop = stop or _stop_on_signals()
    names = {PRIMARY_OIN: "sending gateway", SECONDARY_OIN: "receiving gateway"}
    running: list[RunningGateway] = []
    try:
        for oin, title in names.items():
            gateway, accounts = _start_demo_gateway(workdir, oin, stop)
            running.append(gateway)
            assert gateway.console is not None
            click.echo("")
            click.echo(f"{title} (OIN {oin})")
            click.echo(f"  SOAP endpoint  {gateway.soap.url}{SOAP_PATH} (mutual TLS)")
            click.echo(f"  console        {gateway.console.url}")
            if gateway.api is not None:
                url = gateway.api.url
                click.echo(f"  school API     {url} (docs: {url}swagger)")
            for account, role, password in accounts:
                click.echo(f"  {role:<6} login  {account} / {password}")
        click.echo("")
        click.echo(f"state in {workdir}")
        click.echo("running; press Ctrl-C to stop", nl=True)
        stop.wait()
    finally:
        stop.set()
        for gateway in reversed(running):
            gateway.stop()
        for gateway in running:
            gateway.services.close()
        click.echo("stopped")


def _start_demo_gateway(
    workdir: Path, oin: str, stop: threading.Event
) -> tuple[RunningGateway, list[tuple[str, str, str]]]:
    """One demo gateway with its console (plain HTTP on an ephemeral port) and fresh demo
    accounts; returns it and the accounts (name, role, password)."""
    from oso_gateway.config import ConsoleSettings, load_settings
    from oso_gateway.runtime import build_console_app, build_services, start_gateway
    from oso_gateway.store.operators import OperatorStore
    from oso_gateway.web.api import start_api_in_thread
    from oso_gateway.web.auth import generate_password, hash_password

    settings = load_settings(workdir / f"gateway-{oin}" / "config.toml", {})
    settings = dataclasses.replace(
        settings, console=ConsoleSettings(enabled=True, port=0, cookie_secure=False)
    )
    services = build_services(settings)
    operators = OperatorStore(services.store.engine)
    accounts = []
    now = datetime.now(UTC)
    for account, role in DEMO_ACCOUNTS:
        password = generate_password()
        operators.remove(account)
        operators.add(account, role=role, password_hash=hash_password(password), now=now)
        accounts.append((account, role, password))
    try:
        gateway = start_gateway(
            settings,
            services,
            threads=4,
            anchor=False,
            console=build_console_app(settings, store=services.store),
            console_port=0,
            stop_event=stop,
        )
    except BaseException:
        services.close()
        raise
    try:
        gateway.api = start_api_in_thread(settings, services=services, port=0)
    except BaseException:
        gateway.stop()
        services.close()
        raise
    return gateway, accounts


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    return stop


def register(group: click.Group) -> None:
    group.add_command(demo_command)
