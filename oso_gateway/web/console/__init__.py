"""The operator web console: its own Flask app (own port, under a path prefix).

``create_console_app(settings, store=...)`` builds it from what ``oso_gateway.runtime`` loaded;
``serve_console(settings, app=...)`` serves it with cheroot in a background thread (through
``oso_gateway.runtime.start_console_in_thread``, what ``serve`` and ``demo --keep-running`` use).
See ``docs/console.md``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from oso_gateway.errors import ConfigError
from oso_gateway.store import RateLimitCounters
from oso_gateway.store.operators import normalise_name
from oso_gateway.web import auth
from oso_gateway.web.console.views import MAX_SESSION_AGE, Clock, console_blueprint
from oso_gateway.web.ratelimit import address_key, database_limiter

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from cryptography import x509

    from oso_gateway.config import ConsoleSettings, Settings
    from oso_gateway.security.trust import TrustConfig
    from oso_gateway.server import RunningServer
    from oso_gateway.store import Store
    from oso_gateway.transfer.directory import Directory, DirectorySource

__all__ = [
    "console_blueprint",
    "create_console_app",
    "read_secret_key",
    "serve_console",
]

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'none'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MIN_SECRET_BYTES = 32


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, signed with HMAC-SHA-256 under the console's own salt."""

    salt = "oso-gateway-console-session"
    digest_method = staticmethod(hashlib.sha256)


def read_secret_key(settings: Settings) -> bytes:
    """The session-signing key: ``console.secret_key_file``, or a fresh one for this process
    (sessions then end when the process restarts)."""
    path = settings.console.secret_key_file
    if path is None:
        return secrets.token_bytes(MIN_SECRET_BYTES)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read console.secret_key_file {path} ({exc.strerror})") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"console.secret_key_file {path} must hold at least {MIN_SECRET_BYTES} bytes"
        )
    return key


def create_console_app(
    settings: Settings,
    *,
    store: Store,
    secret_key: bytes | None = None,
    clock: Clock | None = None,
    directory: Directory | None = None,
    trust: TrustConfig | None = None,
    identity_certificates: Iterable[x509.Certificate] = (),
    problems: Iterable[str] = (),
    directory_source: DirectorySource | None = None,
) -> Flask:
    """The console as its own WSGI app, under ``console.path_prefix``.

    ``oso_gateway.runtime.build_console_app`` opens ``store`` WITHOUT the at-rest key (the console
    shows metadata only and could not decrypt a dossier if it tried) and loads the rest.
    """
    prefix = settings.console.path_prefix
    auth.dummy_hash()  # before the first login: an unknown account's first one costs no more
    app = Flask("oso_gateway.web.console")
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SECRET_KEY=secret_key if secret_key is not None else read_secret_key(settings),
        SESSION_COOKIE_NAME="oso_console",
        SESSION_COOKIE_SECURE=settings.console.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH=prefix or "/",
        # The cookie (and its signature's max-age) lasts as long as a session can: the idle
        # timeout is kept on the server (``views._current_operator``), which then says "your
        # session has ended". A cookie that expired with the idle timeout left the browser first
        # and the user at the login page without a word (an administrator's walkthrough).
        PERMANENT_SESSION_LIFETIME=MAX_SESSION_AGE,
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        # Flask-WTF CSRF: the forms' field is ``csrf``; the views check it (after the login
        # check, so an anonymous POST is told 401); a token lives as long as the session (whose
        # timeouts are kept server-side); no Referer check on HTTPS, as the console sends
        # ``Referrer-Policy: no-referrer`` (the SameSite=Strict cookie guards cross-site posts).
        WTF_CSRF_FIELD_NAME="csrf",
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
    )
    CSRFProtect(app)  # also the templates' ``csrf_token()``
    app.register_blueprint(
        console_blueprint(
            settings,
            store,
            clock=clock,
            directory=directory,
            trust=trust,
            identity_certificates=identity_certificates,
            problems=problems,
            directory_source=directory_source,
        ),
        url_prefix=prefix or None,
    )
    _limit_logins(app, settings.console, RateLimitCounters(store.engine))

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if settings.console.cookie_secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if response.mimetype == "text/html" or response.status_code >= 300:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        code = exc.code or 500
        return render_template("console/error.html", code=code, name=exc.name), code

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception) -> tuple[str, int]:
        # The page says nothing about the cause; our log gets the type only (no values that
        # might hold personal data).
        log.error("console: unhandled %s", type(exc).__name__)
        return render_template("console/error.html", code=500, name="Internal error"), 500

    return app


def _account_key() -> str:
    return "account:" + normalise_name(request.form.get("name") or "")[:80]


def _limit_logins(app: Flask, console: ConsoleSettings, counters: RateLimitCounters) -> None:
    """Flask-Limiter on the login form (``console.login_limit_per_address`` and
    ``…_per_account``), counted in the database (``web/ratelimit.py``: every process and machine
    shares the counts): over a limit, 429 (the console's error page, with ``Retry-After``)
    before the password is looked at or anything else is written.

    Flask-Limiter's own headers are off: it set ``Retry-After`` on every login response to the
    later of the view's and the end of its window, so a page throttled by the database that
    said "try again in 2 s" went out with ``Retry-After: 36`` (an administrator's walkthrough).
    Its ``Retry-After`` is set here on its own 429 only; the database's throttle sets its own."""
    limiter = database_limiter(
        app,
        counters,
        headers=False,
        key_func=lambda: "login-address:" + address_key(get_remote_address()),
    )

    def _limited(exc: RateLimitExceeded) -> Response:
        page = render_template("console/error.html", code=429, name=exc.name)
        response = Response(page, status=429)
        limit = limiter.current_limit
        wait = 60 if limit is None else limit.reset_at - time.time()
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response

    app.register_error_handler(RateLimitExceeded, _limited)
    view: Any = app.view_functions["console.login"]
    view = limiter.limit(console.login_limit_per_address, methods=["POST"])(view)
    view = limiter.limit(console.login_limit_per_account, key_func=_account_key, methods=["POST"])(
        view
    )
    app.view_functions["console.login"] = view


def serve_console(
    settings: Settings,
    *,
    app: Flask,
    port: int | None = None,
    threads: int = 4,
) -> RunningServer:
    """Serve the console (cheroot) on ``console.host``/``console.port`` in a daemon thread.

    Plain HTTP unless ``console.tls_cert_file``/``tls_key_file`` are set (then HTTPS, no client
    certificate). ``port=0``: an ephemeral port. ``RunningServer.url`` is the console's URL.
    """
    from oso_gateway.server import serve_plain_or_tls, workers_for

    console = settings.console
    return serve_plain_or_tls(
        app,
        host=console.host,
        port=console.port if port is None else port,
        tls_cert_file=console.tls_cert_file,
        tls_key_file=console.tls_key_file,
        threads=workers_for(settings, threads),
        server_name="oso-gateway-console",
        path=f"{console.path_prefix}/",
        what="console",
        request_deadline=settings.limits.request_deadline,
        max_connections=settings.limits.max_connections,
        max_connections_per_address=settings.limits.max_connections_per_address,
    )
