"""``GET /metrics``: the Prometheus text format (0.0.4), written by prometheus-client.

``metrics_blueprint(settings)`` gives its app a ``CollectorRegistry`` of its own (no state shared
between apps, so tests stay apart) holding the gateway's collector (``transfer.metrics``: what
the store, the certificates and the CRLs say at scrape time) and the request histogram
``oso_gateway_http_request_duration_seconds``, which times every request of the app, and the
services' ``oso_gateway_database_errors_total`` (``transfer.outage``: counted without the
database).

Several processes (``serve --workers N``): the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before any of them imports prometheus-client; each process then writes its request histogram to
that directory and every scrape, whichever process answers it, adds up all of them
(prometheus-client's multi-process mode).

The endpoint sits behind the server's mutual TLS like everything else; its labels hold no pupil
data, but restrict it to your monitoring (e.g. a reverse proxy) if peers should not see it.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from oso_gateway.transfer.metrics import LATENCY_BUCKETS, GatewayCollector
from oso_gateway.transfer.outage import shared_counter

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.config import Settings

SERVICES_KEY = "oso_services"
REGISTRY_KEY = "oso_metrics_registry"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# No ``*_created`` series (the multi-process mode has none, and our page never had them).
disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    """The shared directory of prometheus-client's multi-process mode (None: single process).
    It must have been set before prometheus-client was imported: the library picks its value
    store at import."""
    path = os.environ.get(MULTIPROC_ENV)
    if path and values.ValueClass is values.MutexValue:
        raise RuntimeError(f"{MULTIPROC_ENV} was set after prometheus-client was imported")
    return path or None


def metrics_blueprint(settings: Settings) -> Blueprint:
    """The ``/metrics`` blueprint with its own registry and request histogram (one per app)."""
    del settings  # the services carry the settings; kept for a uniform blueprint signature
    bp = Blueprint("metrics", __name__)
    registry = CollectorRegistry()
    shared = multiprocess_dir()
    requests = Histogram(
        "oso_gateway_http_request_duration_seconds",
        "HTTP request handling time by endpoint, method and status (all serve processes).",
        ("endpoint", "method", "status"),
        buckets=LATENCY_BUCKETS,
        registry=None if shared else registry,  # multi-process: read back from the files
    )
    if shared:
        MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
        shared_counter()  # this process's file: each ``where`` shows from 0

    def _register(app: Any) -> None:
        services = app.extensions[SERVICES_KEY]
        registry.register(GatewayCollector(services))
        errors = getattr(services, "database_errors", None)
        if errors is not None and not shared:  # multi-process: the shared files have them
            registry.register(errors)
        app.extensions[REGISTRY_KEY] = registry

    bp.record_once(lambda state: _register(state.app))

    @bp.before_app_request
    def _start() -> None:
        g.oso_request_started = time.perf_counter()

    @bp.after_app_request
    def _finish(response: Response) -> Response:
        started = g.pop("oso_request_started", None)
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            labels = requests.labels(rule, request.method, str(response.status_code))
            labels.observe(time.perf_counter() - started)
        return response

    bp.add_url_rule("/metrics", "metrics", lambda: _exposition(registry))
    return bp


def handshake_failure_counter(app: Flask) -> Callable[[OSError], None]:
    """What counts the TLS handshakes the listener of ``app`` refused, in
    ``oso_gateway_tls_handshake_failures_total`` by OpenSSL's reason and, for a client
    certificate it did not accept, the verification's message ("certificate revoked", "CRL
    has expired"): they never reach the app, so a revoked peer or a stale CRL of ours showed in
    no metric (an operator's drill). Both labels are OpenSSL's fixed words, never a peer's."""
    registry = app.extensions[REGISTRY_KEY]
    shared = multiprocess_dir()
    failures = Counter(
        "oso_gateway_tls_handshake_failures_total",
        "TLS handshakes refused by the mutual-TLS listener, by OpenSSL's reason and the client "
        "certificate's verification message (all serve processes).",
        ("reason", "verify"),
        registry=None if shared else registry,
    )

    def count(exc: OSError) -> None:
        if isinstance(exc, ssl.SSLError):
            reason = str(getattr(exc, "reason", None) or "other")
            verify = str(getattr(exc, "verify_message", None) or "")
        else:
            reason, verify = ("timeout" if isinstance(exc, TimeoutError) else "connection"), ""
        failures.labels(_label(reason), _label(verify)).inc()

    return count


def _label(text: str) -> str:
    """OpenSSL's words as a label value: printable, at most 60 characters."""
    return "".join(c for c in text if c.isprintable())[:60]


def _exposition(registry: CollectorRegistry) -> Response:
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE)


def metrics_only_app(gateway_app: Flask) -> Flask:
    """A WSGI app answering only ``GET /metrics``, ``/healthz`` and ``/readyz``, with the
    numbers and readiness of ``gateway_app``: for the optional plain listener on 127.0.0.1
    (``server.metrics_port``), so a local scraper or probe needs no client certificate."""
    from oso_gateway.web.soap import READINESS_KEY, healthz, readyz

    registry = gateway_app.extensions[REGISTRY_KEY]
    app = Flask("oso_gateway_metrics")
    app.add_url_rule("/metrics", "metrics", lambda: _exposition(registry))
    # the probes too: over mutual TLS a stale CRL of ours fails every handshake, so /readyz
    # could never say why (an operator's drill); here it can, on this machine only
    readiness = gateway_app.extensions.get(READINESS_KEY)
    if readiness is not None:
        app.extensions[READINESS_KEY] = readiness
        app.add_url_rule("/healthz", "healthz", healthz)
        app.add_url_rule("/readyz", "readyz", readyz)
    return app
