"""The one place that turns ``Settings`` (plain data) into the gateway's running parts.

Reading key, certificate, CRL and directory files, opening the store, wiring the services and
starting the listeners and background threads all happen here, and ``serve``, ``demo``, the other
commands and the tests use these functions instead of assembling the parts their own way:

* ``load_identities`` / ``load_trust`` / ``load_identity_certificates``: security objects from the
  configured files (``oso_gateway.security`` itself does no file I/O);
* ``build_services``: store, directory, receive service, outbox and transport of one gateway;
* ``build_console_app``: the operator console over the store opened WITHOUT the at-rest key;
* ``start_gateway_in_thread`` / ``start_console_in_thread``: one listener in a daemon thread;
* ``start_gateway``: everything ``serve`` runs in one process (SOAP listener, outbox worker,
  transfer-log anchoring, optionally the console), stopped again by ``RunningGateway.stop``.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from cryptography import x509
from flask import Flask

from oso_gateway.config import IdentitySettings, Settings
from oso_gateway.errors import (
    CertificateMalformed,
    ConfigError,
    GatewayError,
    KeyMaterialError,
)
from oso_gateway.security.keys import (
    load_certificate,
    load_certificates,
    load_crls,
    load_private_key,
    spki,
)
from oso_gateway.security.trust import TrustConfig, oin_of
from oso_gateway.security.wss import Identity
from oso_gateway.server import (
    RunningServer,
    server_ssl_context,
    start_in_thread,
    start_plain_in_thread,
)
from oso_gateway.store import Store, check_schema_current, open_store
from oso_gateway.store.lifecycle import Lifecycle
from oso_gateway.store.repository import AfterInsert
from oso_gateway.transfer.auditlog import BaseSigner, anchor_periodically
from oso_gateway.transfer.crlfetch import CrlFetcher, cached_crl_files
from oso_gateway.transfer.directory import FileDirectorySource, LiveDirectory
from oso_gateway.transfer.handlers import default_handlers
from oso_gateway.transfer.lifecycle import purge_periodically
from oso_gateway.transfer.mailbox import InboxService, OutboxService
from oso_gateway.transfer.outage import DatabaseErrors
from oso_gateway.transfer.outbox import Outbox
from oso_gateway.transfer.pull.service import PullService
from oso_gateway.transfer.receive import ReceiverConfig, ReceiveService
from oso_gateway.transfer.reload import TrustReloader
from oso_gateway.transfer.schools import DirectoryLike
from oso_gateway.transfer.send import RequestsTransport, SenderConfig, Transport, prepare_dossier
from oso_gateway.transfer.services import (
    GatewayServices,
    StoreInbound,
    config_for_school,
    read_receipt,
    served_schools,
)
from oso_gateway.web import create_app
from oso_gateway.web.console import create_console_app, serve_console

log = logging.getLogger(__name__)

# --- security objects from the configured files ---------------------------------------------


def _read(path: Path, *, what: str, where: str | None = None) -> bytes:
    """The file's bytes; ``ConfigError`` naming ``what`` (and ``where``, the configuration
    file and table that name the file) when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        place = f"{where}: " if where else ""
        raise ConfigError(f"{place}cannot read {what} {path} ({exc.strerror})") from None


def load_identities(settings: Settings) -> tuple[Identity, ...]:
    """Our gateway identities (key, certificate, chain), checked to belong together."""
    result = []
    source = str(settings.config_file) if settings.config_file else "the configuration"
    for i, ident in enumerate(settings.identities):
        # each problem names the configuration file and the setting, as a misspelt key does
        where = f"{source}: identity[{i}] (OIN {ident.oin})"
        password = None
        if ident.key_password_file is not None:
            password = _read(ident.key_password_file, what="key_password_file", where=where)
            password = password.strip()
        key = load_private_key(
            _read(ident.key_file, what="key_file", where=where), password=password
        )
        cert = load_certificate(_read(ident.cert_file, what="cert_file", where=where))
        if spki(cert.public_key()) != spki(key.public_key()):
            raise ConfigError(
                f"{where}: cert_file {ident.cert_file} does not match key_file {ident.key_file}"
            )
        if oin_of(cert) != ident.oin:
            raise ConfigError(f"{where}: cert_file {ident.cert_file} carries another OIN")
        chain = tuple(
            c
            for p in ident.chain_files
            for c in load_certificates(_read(p, what="chain_files entry", where=where))
        )
        result.append(Identity(oin=ident.oin, private_key=key, certificate=cert, chain=chain))
    return tuple(result)


def _require_stored_keys(store: Store) -> None:
    """Refuse (``ConfigError``) a database whose stored items name storage keys that the
    configuration does not provide (``transfer.lifecycle.require_stored_keys``), before any
    command that builds its services writes under another key: ``serve`` and ``outbox run``
    were refused, ``send`` and ``request send`` wrote on (a security review)."""
    from oso_gateway.store.lifecycle import Lifecycle
    from oso_gateway.transfer import lifecycle

    if store.has_cipher:
        try:
            lifecycle.require_stored_keys(Lifecycle(store.engine, store.cipher))
        except BaseException:
            store.engine.dispose()
            raise


def first_identity(settings: Settings) -> Identity:
    """The identity that signs what is not tied to one school (receipts' default, anchors)."""
    identities = load_identities(settings)
    if not identities:
        raise ConfigError("no gateway identity configured: add an [[identity]] table")
    return identities[0]


def load_identity_certificates(settings: Settings) -> list[x509.Certificate]:
    """Our identities' certificates (what anchors are verified with; no private key is read)."""
    return [
        load_certificate(_read(ident.cert_file, what="certificate file"))
        for ident in settings.identities
    ]


def load_earlier_certificates(settings: Settings) -> list[x509.Certificate]:
    """The certificates of identities this gateway held before (``log.earlier_cert_files``):
    ``log verify`` accepts an anchor one of them signed within its validity."""
    return [
        load_certificate(_read(path, what="log.earlier_cert_files file"))
        for path in settings.log.earlier_cert_files
    ]


def load_trust(settings: Settings, *, extra_crls: Sequence[Path] = ()) -> TrustConfig:
    """The trust configuration (anchors, intermediates, CRLs) read from the configured files;
    ``extra_crls``: CRL files besides ``trust.crl_files``."""
    t = settings.trust
    if not t.anchor_files:
        raise ConfigError("no trust anchors configured: set trust.anchor_files")
    anchors = [_parsed(p, "trust anchor file", load_certificates) for p in t.anchor_files]
    intermediates = [
        _parsed(p, "intermediate certificate file", load_certificates) for p in t.intermediate_files
    ]
    crls = [_parsed(p, "CRL file", load_crls) for p in (*t.crl_files, *extra_crls)]
    return TrustConfig.from_pem(
        anchors=anchors, intermediates=intermediates, crls=crls, require_crl=t.require_crl
    )


def _parsed(path: Path, what: str, parse: Callable[[bytes], object]) -> bytes:
    """The file's bytes, once ``parse`` accepts them: a file that does not parse is named in
    the error (the operator has several CRL and certificate files)."""
    data = _read(path, what=what)
    try:
        parse(data)
    except (KeyMaterialError, CertificateMalformed) as exc:
        raise type(exc)(f"{what} {path}: {exc.detail}") from None
    return data


def tls_bundle(settings: Settings) -> Path:
    """One PEM file with the trust anchors and intermediates (for ``requests``' ``verify``)."""
    files = [*settings.trust.anchor_files, *settings.trust.intermediate_files]
    if not files:
        raise ConfigError("no trust anchors configured: set trust.anchor_files")
    if len(files) == 1:
        return files[0]
    bundle = settings.data_dir / "tls-trust-bundle.pem"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    content = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in files)
    if not bundle.exists() or bundle.read_bytes() != content:
        bundle.write_bytes(content)
    return bundle


# --- one gateway's services -------------------------------------------------------------------


def build_services(
    settings: Settings,
    *,
    directory: DirectoryLike | None = None,
    transport: Transport | None = None,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    after_insert: AfterInsert | None = None,
    check_schema: bool = True,
) -> GatewayServices:
    """Everything one gateway needs, read once from ``settings`` (tests pass their own parts)."""
    clock = clock or (lambda: datetime.now(UTC))
    identities = load_identities(settings)
    if not identities:
        raise ConfigError("no gateway identity configured: add an [[identity]] table")
    trust = load_trust(settings, extra_crls=cached_crl_files(settings.crl_cache_dir))
    if directory is None:  # read through the one live interface (reloadable), the file first
        directory = LiveDirectory(FileDirectorySource(settings.require_directory_file()))
    if store is None:
        store = open_store(settings, check_schema=check_schema)
        if check_schema:  # every command that can write builds its services here
            _require_stored_keys(store)
    dup = settings.duplicates
    inbound = StoreInbound(
        store,
        after_insert=after_insert,
        duplicate_window=timedelta(hours=dup.inbound_window_hours) if dup.inbound_record else None,
    )
    # one OIN may hold two identities (a rollover: the old and the new key side by side): it
    # sends with the first of them, as it signs its receipts and anchors (the last had won)
    configs: dict[str, SenderConfig] = {}
    for identity in identities:
        configs.setdefault(identity.oin, SenderConfig(identity=identity, trust=trust))
    sender_config = configs[identities[0].oin]
    outbox, transport = _outbox(settings, store, directory, configs, transport, clock)
    pull = PullService(
        store=store,
        directory=directory,
        outbox=outbox,
        sender_config=sender_config,
        settings=settings.pull,
        clock=clock,
    )
    outbox.gate = pull.check_push
    outbox.gate_again = pull.recheck_push
    receiver = ReceiveService(
        config=ReceiverConfig(
            identities=identities, trust=trust, served=served_schools(directory, identities)
        ),
        directory=directory,
        store=inbound,
        clock=clock,
        handlers=default_handlers(pull=pull),
    )
    receiver.database_errors = outbox.database_errors = database_errors = DatabaseErrors()
    return GatewayServices(
        pull=pull,
        settings=settings,
        store=store,
        directory=directory,
        identities=identities,
        trust=trust,
        receiver=receiver,
        inbound=inbound,
        sender_config=sender_config,
        outbox=outbox,
        transport=transport,
        clock=clock,
        inbox=InboxService(store, clock=clock),
        outbox_view=_outbox_view(settings, store, directory, outbox, configs, clock),
        database_errors=database_errors,
    )


def _outbox(
    settings: Settings,
    store: Store,
    directory: DirectoryLike,
    configs: dict[str, SenderConfig],
    transport: Transport | None,
    clock: Callable[[], datetime],
) -> tuple[Outbox, Transport]:
    """The outbox and the transport it sends with (given, or mutual TLS per identity: each
    identity connects with its own TLS client certificate)."""
    transports: dict[str, Transport] = {}
    if transport is None:
        for ident in settings.identities:  # the first of an OIN's identities, as ``configs``
            if ident.oin not in transports:
                transports[ident.oin] = _requests_transport(settings, ident)
        transport = transports[settings.identities[0].oin]
    outbox = Outbox(
        store=store,
        directory=directory,
        config=configs[settings.identities[0].oin],
        transport=transport,
        retry=settings.retry,
        clock=clock,
        lease=timedelta(seconds=settings.retry.lease_seconds),
        configs=configs,
        transports=transports,
    )
    return outbox, transport


def _outbox_view(
    settings: Settings,
    store: Store,
    directory: DirectoryLike,
    outbox: Outbox,
    configs: dict[str, SenderConfig],
    clock: Callable[[], datetime],
) -> OutboxService:
    """The schools' view of their outgoing dossiers (submit, list, receipts)."""
    default = configs[settings.identities[0].oin]
    prepare = partial(
        prepare_dossier,
        directory=directory,
        config=default,
        choose_config=partial(config_for_school, directory, configs, default),
        objections=outbox.objections,  # withheld as `send` withholds them (else E542)
    )
    return OutboxService(
        store,
        clock=clock,
        prepare=prepare,
        outbox=outbox,
        duplicate_window=timedelta(hours=settings.duplicates.outbound_window_hours),
        receipt_reader=partial(read_receipt, outbox),
    )


def _requests_transport(settings: Settings, identity: IdentitySettings) -> RequestsTransport:
    """Mutual TLS to peers with this identity's certificate and key."""
    return RequestsTransport(
        cert_file=str(identity.cert_file),
        key_file=str(identity.key_file),
        ca_bundle=str(tls_bundle(settings)),
        timeout=settings.limits.request_timeout,
    )


# --- the operator console ---------------------------------------------------------------------


def build_console_app(settings: Settings, *, store: Store | None = None, **options: Any) -> Flask:
    """The console app over ``store`` (default: the configured database opened WITHOUT the
    at-rest key, so the console could not decrypt a dossier if it tried), with the directory,
    trust and our certificates loaded here; what cannot be loaded is shown as a problem."""
    if store is None:
        store = open_store(settings, require_key=False)
    problems: list[str] = []
    directory = options.pop("directory", None)
    directory_file = settings.directory_file
    if directory is None and directory_file is not None:
        # read again when the file changes, as ``serve`` does (its schools scope operators)
        source = FileDirectorySource(directory_file)
        options.setdefault("directory_source", source)
        directory = _or_problem(problems, "directory", source.load)
    trust = options.pop("trust", None)
    if trust is None and settings.trust.anchor_files:
        trust = _or_problem(problems, "trust", lambda: load_trust(settings))
    return create_console_app(
        settings,
        store=store,
        directory=directory,
        trust=trust,
        identity_certificates=_readable_certificates(settings),
        problems=problems,
        **options,
    )


def _readable_certificates(settings: Settings) -> list[x509.Certificate]:
    """Our identities' certificates and chains for display: a file that cannot be read or parsed
    is left out (the console shows what it can)."""
    found = []
    for path in (p for i in settings.identities for p in (i.cert_file, *i.chain_files)):
        try:
            found.extend(load_certificates(path.read_bytes()))
        except (OSError, GatewayError, ValueError):
            continue
    return found


def _or_problem(problems: list[str], what: str, load: Callable[[], Any]) -> Any:
    try:
        return load()
    except GatewayError as exc:
        problems.append(f"{what}: {exc.code}: {exc.public_message}")
        return None


# --- listeners --------------------------------------------------------------------------------


def reload_tls(soap: RunningServer, settings: Settings) -> None:
    """New connections use a TLS context read anew (CA and CRL files changed: a live reload)."""
    context, _cert, _key = tls_context_from_settings(settings)
    soap.server.ssl_adapter.context = context


def trust_reloader(services: GatewayServices, soap: RunningServer | None = None) -> TrustReloader:
    """The live reload of ``services``' trust material (and of ``soap``'s TLS context)."""
    hooks = [] if soap is None else [lambda: reload_tls(soap, services.settings)]
    cache = services.settings.crl_cache_dir
    return TrustReloader(
        services,
        load_trust=load_trust,
        on_reload=hooks,
        extra_crl_files=lambda: cached_crl_files(cache),
    )


def hold_presence(services: GatewayServices, *, what: str) -> None:
    """Mark this long-running process as running on its database for as long as ``services``
    are open (``store.presence``: ``db upgrade`` then refuses, OSO-E563), waiting for an
    upgrade that is running; the schema is checked again after that wait (OSO-E503)."""
    from oso_gateway.store.presence import Presence

    presence = Presence(services.store.engine, what=what)
    try:
        check_schema_current(services.store.engine)  # an upgrade may have ended while we waited
    except BaseException:
        presence.close()
        raise
    services.presence = presence
    presence.keep()


def crl_fetcher(services: GatewayServices) -> CrlFetcher:
    """Fetches the CRLs of the distribution points of every certificate we rely on: anchors,
    intermediates, our identities and the directory's gateways (the reload applies them)."""

    def certificates() -> list[x509.Certificate]:
        trust = services.trust
        ours = [identity.certificate for identity in services.identities]
        gateways = getattr(services.directory, "gateways", {}).values()
        return [*trust.anchors, *trust.intermediates, *ours,
                *(gw.encryption_certificate for gw in gateways)]  # fmt: skip

    return CrlFetcher(
        cache_dir=services.settings.crl_cache_dir,
        trust=lambda: services.trust,
        certificates=certificates,
        timeout=services.settings.limits.request_timeout,
    )


def start_crl_fetcher(services: GatewayServices, stop: threading.Event) -> threading.Thread | None:
    """Every ``trust.crl_fetch_minutes`` (None: 0, never)."""
    minutes = services.settings.trust.crl_fetch_minutes
    if minutes <= 0:
        return None
    fetcher = crl_fetcher(services)
    return _start_thread(fetcher.run, (stop,), "crl-fetch", interval=minutes * 60.0)


def start_trust_reloader(
    services: GatewayServices, stop: threading.Event, *, soap: RunningServer | None = None
) -> tuple[threading.Thread, threading.Event]:
    """Reload when the files change, and at once when the returned event is set (SIGHUP)."""
    wake = threading.Event()
    reloader = trust_reloader(services, soap)
    thread = _start_thread(reloader.run, (stop,), "trust-reload", wake=wake)
    return thread, wake


def tls_context_from_settings(settings: Settings) -> tuple[ssl.SSLContext, Path, Path]:
    """The server TLS context and its certificate/key files, from ``[server]`` and ``[trust]``."""
    server = settings.server
    if server.tls_cert_file is None or server.tls_key_file is None:
        raise ConfigError("serving needs server.tls_cert_file and server.tls_key_file")
    client_ca = server.tls_client_ca_file or tls_bundle(settings)
    # the configured CRLs and those fetched from the distribution points, as the WS-Security
    # check has them: a peer revoked by a fetched CRL passed the handshake (a review); of two
    # CRLs of one issuer OpenSSL takes the newest
    crls = (
        (*settings.trust.crl_files, *cached_crl_files(settings.crl_cache_dir))
        if settings.trust.require_crl
        else ()
    )
    context = server_ssl_context(
        cert_file=server.tls_cert_file,
        key_file=server.tls_key_file,
        client_ca_files=(client_ca,),
        crl_files=crls,
    )
    return context, server.tls_cert_file, server.tls_key_file


def start_gateway_in_thread(
    settings: Settings,
    *,
    services: GatewayServices | None = None,
    port: int | None = None,
    threads: int = 8,
    reuse_port: bool = False,
) -> RunningServer:
    """Serve one gateway's app (SOAP endpoint, health, metrics) over mutual TLS in a daemon
    thread. ``port`` defaults to ``settings.server.port``; pass 0 for an ephemeral port."""
    from oso_gateway.web.metrics import handshake_failure_counter

    context, cert, key = tls_context_from_settings(settings)
    if services is None:
        services = build_services(settings)
    app = create_app(settings, services=services)
    running = start_in_thread(
        app,
        context=context,
        cert_file=cert,
        key_file=key,
        host=settings.server.host,
        port=settings.server.port if port is None else port,
        threads=threads,
        timeout=settings.limits.request_timeout,
        reuse_port=reuse_port,
        request_deadline=settings.limits.request_deadline,
        max_connections=settings.limits.max_connections,
        max_connections_per_address=settings.limits.max_connections_per_address,
    )
    running.server.on_handshake_failure = handshake_failure_counter(app)  # type: ignore[attr-defined]
    return running


def start_console_in_thread(
    settings: Settings, *, app: Flask | None = None, port: int | None = None, threads: int = 4
) -> RunningServer:
    """Serve the console on ``console.host``/``console.port`` (``port=0``: ephemeral)."""
    return serve_console(
        settings, app=app or build_console_app(settings), port=port, threads=threads
    )


def start_metrics_in_thread(soap: RunningServer, *, port: int) -> RunningServer:
    """Serve the gateway app's ``/metrics`` over plain HTTP on this machine only."""
    from oso_gateway.web.metrics import metrics_only_app  # prometheus-client: see web/app.py

    return start_plain_in_thread(metrics_only_app(soap.server.wsgi_app), port=port)


@dataclass
class RunningGateway:
    """What ``start_gateway`` started; ``stop`` ends it in reverse order."""

    services: GatewayServices
    soap: RunningServer
    console: RunningServer | None = None
    #: the plain-HTTP /metrics listener on this machine (``server.metrics_port``)
    metrics: RunningServer | None = None
    #: the school API (``[api]``)
    api: RunningServer | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        self.stop_event.set()
        for listener in (self.console, self.metrics, self.api):
            if listener is not None:
                listener.stop()
        self.soap.stop()
        for thread in self.threads:
            thread.join(timeout=10)


def start_gateway(
    settings: Settings,
    services: GatewayServices,
    *,
    port: int | None = None,
    threads: int = 8,
    reuse_port: bool = False,
    outbox: bool = True,
    anchor: bool = True,
    console: Flask | bool = False,
    console_port: int | None = None,
    stop_event: threading.Event | None = None,
) -> RunningGateway:
    """The SOAP listener, and in background threads the outbox worker (``outbox``) and the
    periodic transfer-log anchoring (``anchor``); ``console``: also serve the operator console
    (True: built from the settings; or the app to serve). The caller closes ``services``."""
    running = RunningGateway(
        services=services,
        soap=start_gateway_in_thread(
            settings, services=services, port=port, threads=threads, reuse_port=reuse_port
        ),
        stop_event=stop_event or threading.Event(),
    )
    try:
        if console is not False:
            app = None if console is True else console
            running.console = start_console_in_thread(settings, app=app, port=console_port)
    except BaseException:
        running.stop()
        raise
    stop = running.stop_event
    if outbox:
        running.threads.append(_start_thread(services.outbox.run_forever, (stop,), "outbox"))
    if anchor:
        running.threads.append(
            _start_thread(
                anchor_periodically,
                (stop, services.store, settings),
                "transfer-log-anchor",
                identity=services.identities[0],
                clock=services.clock,
            )
        )
        # the retention purge on its schedule (retention.purge_every_minutes; 0: never)
        running.threads.append(
            _start_thread(
                purge_periodically,
                (Lifecycle(services.store.engine, services.store.cipher), settings.retention, stop),
                "retention-purge",
                clock=services.clock,
                log_archive=settings.log.archive_dir,
                keeper=BaseSigner(settings.anchor_file, lambda: services.identities[0]),
            )
        )
    return running


def _start_thread(
    target: Callable[..., Any], args: tuple[Any, ...], name: str, **kw: Any
) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, kwargs=kw, name=name, daemon=True)
    thread.start()
    return thread
