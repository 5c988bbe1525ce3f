"""``GET /metrics``: Prometheus text format (``oso_gateway.transfer.metrics``).

``metrics_blueprint(settings)`` also times every request of the app it is registered on (the
``oso_gateway_http_request_duration_seconds`` histogram). The gateway's services are taken from
``app.extensions["oso_services"]`` (set by ``create_app``).

The endpoint sits behind the server's mutual TLS like everything else; its labels hold no pupil
data, but restrict it to your monitoring (e.g. a reverse proxy) if peers should not see it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, g, request

from oso_gateway.transfer import metrics

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.config import Settings

SERVICES_KEY = "oso_services"
TIMER_KEY = "oso_request_timer"


def metrics_blueprint(settings: Settings) -> Blueprint:
    """The ``/metrics`` blueprint with its own request timer (one per app)."""
    del settings  # the services carry the settings; kept for a uniform blueprint signature
    bp = Blueprint("metrics", __name__)
    timer = metrics.RequestTimer()
    bp.record_once(lambda state: state.app.extensions.__setitem__(TIMER_KEY, timer))

    @bp.before_app_request
    def _start() -> None:
        g.oso_request_started = time.perf_counter()

    @bp.after_app_request
    def _finish(response: Response) -> Response:
        started = g.pop("oso_request_started", None)
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            timer.observe(rule, request.method, response.status_code, time.perf_counter() - started)
        return response

    @bp.get("/metrics")
    def _metrics() -> Response:
        return _exposition(current_app.extensions[SERVICES_KEY], timer)

    return bp


def _exposition(services: Any, timer: metrics.RequestTimer) -> Response:
    clock = getattr(services, "clock", None)
    now = clock() if clock is not None else datetime.now(UTC)
    body = metrics.render(metrics.gather(services, now=now, timer=timer))
    return Response(body, mimetype=None, content_type=metrics.CONTENT_TYPE)


def metrics_only_app(gateway_app: Flask) -> Flask:
    """A WSGI app answering only ``GET /metrics``, with the numbers of ``gateway_app`` (its
    services and its request timer): for the optional plain listener on 127.0.0.1
    (``server.metrics_port``), so a local scraper needs no client certificate."""
    services = gateway_app.extensions[SERVICES_KEY]
    timer = gateway_app.extensions[TIMER_KEY]
    app = Flask("oso_gateway_metrics")
    app.add_url_rule("/metrics", "metrics", lambda: _exposition(services, timer))
    return app
