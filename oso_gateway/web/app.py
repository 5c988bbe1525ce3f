"""``create_app(settings)``: the Flask application of one gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from oso_gateway.web import soap

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.config import Settings
    from oso_gateway.transfer.services import GatewayServices


def create_app(settings: Settings, *, services: GatewayServices) -> Flask:
    """The gateway's WSGI app: SOAP endpoint, ``/healthz``, ``/readyz``, ``/metrics``, over
    ``services`` (the wired receive service, store, directory …: ``runtime.build_services``)."""
    # Imported here, not at the top: prometheus-client picks its single- or multi-process value
    # store when first imported, which must come after ``serve`` set PROMETHEUS_MULTIPROC_DIR.
    from oso_gateway.web.metrics import metrics_blueprint

    app = Flask("oso_gateway")
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_request_bytes
    app.extensions[soap.RECEIVER_KEY] = services.receiver
    app.extensions[soap.READINESS_KEY] = services.readiness_problems
    app.extensions["oso_services"] = services
    app.register_blueprint(soap.bp)
    app.register_blueprint(metrics_blueprint(settings))  # GET /metrics (Prometheus)

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception) -> ResponseReturnValue:
        if isinstance(exc, HTTPException):
            return exc
        return soap.internal_error(exc)

    return app
