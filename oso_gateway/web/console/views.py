"""The console blueprint: login, dashboard, transfers, timeline, quarantine, directory, operators.

Server-rendered pages, no JavaScript. Access: every page but the login page needs a logged-in
operator (anonymous requests are redirected to the login page); retry and the operators page need
the ``admin`` role (403 otherwise); every POST needs the session's CSRF token (Flask-WTF's
``CSRFProtect``; 400 otherwise).
The role is read from the database on every request, so removing an account ends its sessions.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from cryptography import x509
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from oso_gateway.errors import GatewayError
from oso_gateway.protocol import ACTION_ANSWER, ACTION_REQUEST, SCHOOL_PATTERN
from oso_gateway.store import models as m
from oso_gateway.store import transfer_listing as listing
from oso_gateway.store.logchain import make_event
from oso_gateway.store.operators import (
    ADMIN,
    NAME_RE,
    OperatorRecord,
    OperatorStore,
    normalise_name,
)
from oso_gateway.transfer import wire
from oso_gateway.transfer.auditlog import LogFilter, select_events
from oso_gateway.transfer.unserved import served_codes
from oso_gateway.web import auth
from oso_gateway.web.console import queries as q

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.config import Settings
    from oso_gateway.security.trust import TrustConfig
    from oso_gateway.store import Store
    from oso_gateway.transfer.directory import Directory, DirectorySource

log = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., ResponseReturnValue])

#: a session ends after this long even when in use
MAX_SESSION_AGE = timedelta(hours=12)
PAGE_SIZE = 25
#: ``app.extensions[EXTENSION_KEY]`` is the registered console's ``ConsoleContext``
EXTENSION_KEY = "oso_console"

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConsoleContext:
    """What the views need: the store (metadata only: no at-rest key is used), the operator
    accounts, the directory and trust (public material), a clock."""

    settings: Settings
    store: Store
    operators: OperatorStore
    clock: Clock = _utcnow
    directory: Directory | None = None
    trust: TrustConfig | None = None
    #: problems met while loading the directory / trust (shown on the pages)
    problems: list[str] = field(default_factory=list)
    identity_certificates: list[x509.Certificate] = field(default_factory=list)
    #: where ``directory`` is read again when it changed (None: the directory given stays)
    directory_source: DirectorySource | None = None
    directory_version: object = None
    #: our identities' OINs: a school whose gateway in the directory is one of them is served
    our_oins: frozenset[str] = frozenset()

    def refresh_directory(self) -> None:
        """Read the directory again when its source changed (as ``serve`` reloads it); one
        that does not load is refused, logged, and the current one stays."""
        source = self.directory_source
        if source is None:
            return
        version = source.version()
        if version == self.directory_version:
            return
        self.directory_version = version
        try:
            directory = source.load()
        except GatewayError as exc:
            log.warning("console: directory reload refused, keeping the current one: %s", exc.code)
            return
        self.directory = directory
        self.problems = [p for p in self.problems if not p.startswith("directory:")]

    def served(self) -> frozenset[str]:
        """The schools (BRIN + vestiging) this gateway serves now, by the current directory;
        none without one (a scoped operator then acts for none: fail closed)."""
        self.refresh_directory()
        if self.directory is None:
            return frozenset()
        return served_codes(self.directory, self.our_oins)

    def audit(self, *, operation: str, status: str, operator: str | None, **extra: Any) -> None:
        """An ``operator`` event in the transfer log (no personal data: names are account
        names of the ``[a-z0-9._-]`` form, which the log enforces)."""
        now = self.clock()
        if operator is not None and not NAME_RE.fullmatch(operator):
            operator = None
        event = make_event(
            at=now,
            kind="operator",
            status=status,
            operator=operator,
            operation=operation,
            **extra,
        )
        self.store.append_log([event], now=now)


def console_blueprint(
    settings: Settings,
    store: Store,
    *,
    clock: Clock | None = None,
    directory: Directory | None = None,
    trust: TrustConfig | None = None,
    identity_certificates: Iterable[x509.Certificate] = (),
    problems: Iterable[str] = (),
    directory_source: DirectorySource | None = None,
) -> Blueprint:
    """The console's pages as a blueprint (register it with ``url_prefix``; see
    ``create_console_app`` for the session and cookie settings it needs). The directory, trust
    and certificates are what ``oso_gateway.runtime`` loaded; ``problems`` what it could not.
    ``directory_source``: where the directory is read again when it changes (its version now
    is the loaded directory's)."""
    ctx = ConsoleContext(
        settings=settings,
        store=store,
        operators=OperatorStore(store.engine),
        clock=clock or _utcnow,
        directory=directory,
        trust=trust,
        problems=list(problems),
        identity_certificates=list(identity_certificates),
        directory_source=directory_source,
        directory_version=directory_source.version() if directory_source else None,
        our_oins=frozenset(identity.oin for identity in settings.identities),
    )
    bp = Blueprint(
        "console",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    bp.record_once(lambda state: state.app.extensions.__setitem__(EXTENSION_KEY, ctx))
    bp.before_request(_gate)
    bp.app_context_processor(_template_globals)
    for rule, view, methods in _ROUTES:
        bp.add_url_rule(rule, view_func=view, methods=methods)
    return bp


def _ctx() -> ConsoleContext:
    """The context of the console serving this request."""
    context: ConsoleContext = current_app.extensions[EXTENSION_KEY]
    return context


# --- sessions, access and the templates' helpers ------------------------------------------------


def _current_operator(ctx: ConsoleContext) -> OperatorRecord | None:
    """The operator of this request's server-side session, or None. The cookie holds only a
    random session token: a session ended by logout, an admin, a timeout (idle longer than
    ``console.session_timeout``, older than ``MAX_SESSION_AGE``) or removing the operator is
    refused whatever cookie the browser still sends."""
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    now = ctx.clock()
    idle = timedelta(seconds=ctx.settings.console.session_timeout)
    live = ctx.operators.touch_session(token, now=now, idle=idle, max_age=MAX_SESSION_AGE)
    if live is None:
        session.clear()
        flash("Your session has ended; please log in again.", "info")
        return None
    account = ctx.operators.get(live.operator)
    if account is None:
        ctx.operators.end_session(token, now=now, reason="operator-removed")
        session.clear()
        return None
    return account


def _gate() -> ResponseReturnValue | None:
    if request.endpoint in ("console.login", "console.static"):
        return None
    operator = _current_operator(_ctx())
    if operator is None:
        if request.method == "POST":
            abort(401)
        here = _here()
        back = None if here == url_for("console.dashboard") else here  # the default anyway
        return redirect(url_for("console.login", next=back))
    g.operator = operator
    refused = _scope_refused(_ctx(), operator)
    if refused is not None:
        return refused
    if request.method == "POST":
        _check_csrf()
    return None


def _here() -> str:
    """This request's page as a relative URL (path and query), for the login's ``next``."""
    query = request.query_string.decode("latin-1")
    return request.script_root + request.path + (f"?{query}" if query else "")


#: what a ``next`` may hold: a path and query of printable ASCII, no backslash (some browsers
#: read ``/\\host`` as ``//host``)
_NEXT_CHARS = re.compile(r"[!#-\[\]-~]+")


def safe_next(value: object) -> str | None:
    """``value`` when it is a page of this console to return to after login: a relative path
    under the console's prefix (never another site: ``https://…``, ``//host``, ``/\\host``),
    else None (then the dashboard)."""
    if not isinstance(value, str) or len(value) > 2000 or not _NEXT_CHARS.fullmatch(value):
        return None
    root = url_for("console.dashboard")  # the prefix with its trailing slash, e.g. /console/
    if not value.startswith(root) or value.startswith("//"):
        return None
    path = value.split("?", 1)[0]
    if path in (url_for("console.login"), url_for("console.logout")):
        return None
    # no dot-segment, plain or percent-encoded: "/console/../x" is resolved by the browser to
    # "/x", outside the console (a review)
    segments = unquote(path).split("/")
    if "." in segments or ".." in segments or "%" in unquote(path):
        return None
    return value


def _acting_for(ctx: ConsoleContext, operator: OperatorRecord) -> tuple[str, ...] | None:
    """The schools a scoped operator acts for: those of its schools this gateway serves now
    (None: an operator of every school)."""
    if operator.schools is None:
        return None
    served = ctx.served()
    return tuple(s for s in operator.schools if s in served)


def _unserved_message(operator: OperatorRecord) -> str:
    schools = ", ".join(operator.schools or ())
    return (
        f"OSO-E619: account {operator.name} is scoped to school(s) {schools}, which this "
        "gateway no longer serves: ask an administrator to remove the account or give it "
        "another school."
    )


def _scope_refused(ctx: ConsoleContext, operator: OperatorRecord) -> ResponseReturnValue | None:
    """None when the operator may act (``g.operator_schools`` set); an operator scoped only to
    schools this gateway no longer serves is logged out, said so, and logged (OSO-E619)."""
    acting = _acting_for(ctx, operator)
    if acting is None or acting:
        g.operator_schools = acting
        return None
    log.warning("console: operator %s refused: OSO-E619 (schools %s not served)",
                operator.name, ", ".join(operator.schools or ()))  # fmt: skip
    ctx.operators.end_session(str(session.get("sid")), now=ctx.clock(), reason="not-served")
    ctx.audit(operation="access", status="refused", operator=operator.name)
    session.clear()
    g.operator = None
    if request.method == "POST":
        abort(403)
    flash(_unserved_message(operator), "error")
    return redirect(url_for("console.login"))


def _check_csrf() -> None:
    """Flask-WTF's check of the form's ``csrf`` token against this session's (400 otherwise);
    called after the login check, so an anonymous POST is still told 401."""
    current_app.extensions["csrf"].protect()


def _template_globals() -> dict[str, Any]:
    return {
        "operator": g.get("operator"),
        "is_admin": getattr(g.get("operator"), "role", None) == ADMIN,
        "explain": q.explain,
        "fmt_time": _fmt_time,
        "fmt_size": _fmt_size,
        "erased_by": erased_by,
        "kind_of": kind_of,
    }


#: what a message is, by its wsa:Action (``protocol``, ``transfer.wire``): the lists' word,
#: and the words a sentence uses
_KINDS = {
    wire.ACTION_DELIVER: ("dossier", "dossier delivery"),
    ACTION_REQUEST: ("request", "dossier request"),
    ACTION_ANSWER: ("answer", "answer to a dossier request"),
    wire.ACTION_RECEIPT: ("receipt", "receipt"),
}


def kind_of(action: str | None) -> str:
    """A transfer's kind for the lists: a dossier, or a pull request or answer (the dashboard
    counted answers as imported dossiers, and nothing told them apart: an administrator's
    walkthrough)."""
    return _KINDS.get(action or "", ("other", ""))[0]


def erased_by(reason: str | None) -> str:
    """What erased a transfer's or a request's content, in words (``purge_reason``; None: the
    store did not keep it, for a row purged before it did)."""
    if reason == m.PURGED_BY_ERASURE:
        return "content erased by a subject erasure (oso-gateway subject erase)"
    if reason == m.PURGED_BY_RETENTION:
        return "content erased by the retention purge"
    return "content erased (retention or a subject erasure)"


def admin_only(view: _F) -> _F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        operator: OperatorRecord = g.operator
        if operator.role != ADMIN:
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --- login / logout ---------------------------------------------------------------------------


def login() -> ResponseReturnValue:
    """The login form; after a login, back to ``next`` (a page of this console: ``safe_next``)
    or the dashboard."""
    if request.method == "GET":
        return render_template("console/login.html", next=safe_next(request.args.get("next")))
    _check_csrf()
    back = safe_next(request.form.get("next"))
    ctx = _ctx()
    # names compared without case: "Anja" is account anja (docs/console.md)
    name = normalise_name(request.form.get("name") or "")
    password = request.form.get("password") or ""
    address = request.remote_addr or "unknown"
    now = ctx.clock()
    result = auth.attempt_login(
        ctx.operators, name=name, password=password, address=address, now=now
    )
    if result.retry_after is not None:
        seconds = max(1, int(result.retry_after.total_seconds() + 0.999))
        known = ctx.operators.get(name) is not None
        ctx.audit(operation="login", status="throttled", operator=name if known else None)
        flash(f"Too many failed attempts: try again in {seconds} s.", "error")
        page = render_template("console/login.html", name=name, next=back)
        response = Response(page, status=429)
        response.headers["Retry-After"] = str(seconds)
        return response
    if result.operator is None:
        known = ctx.operators.get(name) is not None
        ctx.audit(operation="login", status="failed", operator=name if known else None)
        flash("Unknown account or wrong password.", "error")
        return render_template("console/login.html", name=name, next=back), 401
    if _acting_for(ctx, result.operator) == ():
        log.warning("console: login of %s refused: OSO-E619", result.operator.name)
        ctx.audit(operation="login", status="refused", operator=result.operator.name)
        flash(_unserved_message(result.operator), "error")
        return render_template("console/login.html", name=name, next=back), 403
    ctx.audit(operation="login", status="ok", operator=result.operator.name)
    session.clear()  # a fresh session id (and CSRF token) at every login
    token = secrets.token_urlsafe(32)
    ctx.operators.start_session(token, operator=result.operator.name, now=now)
    session.permanent = True
    session["sid"] = token
    generate_csrf()  # this session's own token
    return redirect(back or url_for("console.dashboard"))


def logout() -> ResponseReturnValue:
    ctx = _ctx()
    ctx.audit(operation="logout", status="ok", operator=g.operator.name)
    ctx.operators.end_session(str(session.get("sid")), now=ctx.clock(), reason="logout")
    session.clear()
    flash("Logged out.", "info")
    return redirect(url_for("console.login"))


# --- pages ------------------------------------------------------------------------------------


def dashboard() -> ResponseReturnValue:
    ctx = _ctx()
    now = ctx.clock()
    windows = [
        (
            title,
            key,
            listing.status_counts(
                ctx.store.engine, since=now - q.SINCE_CHOICES[key], schools=_schools()
            ),
        )
        for title, key in (("Last 24 hours", "24h"), ("Last 7 days", "7d"))
    ]
    failures = listing.quarantine(ctx.store.engine, limit=10, schools=_schools()).rows
    return render_template(
        "console/dashboard.html",
        windows=windows,
        failures=failures,
        expiring=_expiring(ctx, now),
        problems=ctx.problems,
        now=now,
    )


def transfers() -> ResponseReturnValue:
    ctx = _ctx()
    args = {k: v for k, v in request.args.items() if isinstance(v, str)}
    flt, kept, ignored = q.parse_filter(args, now=ctx.clock())
    before = _int_arg("before")
    page = listing.list_transfers(
        ctx.store.engine, flt, limit=PAGE_SIZE, before=before, schools=_schools()
    )
    return render_template(
        "console/transfers.html",
        page=page,
        kept=kept,
        ignored=ignored,
        statuses=listing.ALL_STATUSES,
        since_choices=list(q.SINCE_CHOICES),
        first_page=before is None,
    )


def transfer(pk: int) -> ResponseReturnValue:
    ctx = _ctx()
    row = listing.get_transfer(ctx.store.engine, pk, schools=_schools())
    if row is None:
        abort(404)
    events = ctx.store.events(pk)
    codes = _unique([row.last_error_code, *(e.error_code for e in events)])
    if _schools() is None:
        log = select_events(ctx.store, LogFilter(message_id=row.message_id), limit=200)
    else:
        # A peer chooses its MessageIDs: another school's message may carry this one's. An
        # operator scoped to schools sees the events of this school's message only (chosen
        # before the page's 200, so that the other's cannot push these out).
        found = select_events(ctx.store, LogFilter(message_id=row.message_id))
        log = [entry for entry in found if _event_of(entry.event, row)][-200:]
    return render_template(
        "console/transfer.html",
        row=row,
        events=events,
        log=log,
        explanations=[
            x for x in (q.explain(c, direction=row.direction) for c in codes) if x is not None
        ],
        can_retry=row.direction == m.OUT and row.status == m.FAILED,
        has_report=_is_outgoing_delivery(row),
    )


@admin_only
def retry(pk: int) -> ResponseReturnValue:
    ctx = _ctx()
    operator: OperatorRecord = g.operator
    row = listing.get_transfer(ctx.store.engine, pk, schools=_schools())
    if row is None:
        abort(404)
    try:
        ctx.store.requeue_outbound(pk, now=ctx.clock())
        status, note = (
            "ok",
            (
                "Queued again. A running outbox worker (oso-gateway serve, or oso-gateway outbox "
                "run) sends it to the address the directory gives now.",
                "info",
            ),
        )
    except LookupError:  # only a failed outbound message (so direction "out" when it is ok)
        status, note = "refused", ("Only a failed outgoing transfer can be retried.", "error")
    ctx.audit(
        operation="retry",
        status=status,
        operator=operator.name,
        direction=row.direction,
        message_id=row.message_id,
    )
    flash(*note)
    return redirect(url_for("console.transfer", pk=pk)), 303


def quarantine() -> ResponseReturnValue:
    page = listing.quarantine(
        _ctx().store.engine, limit=PAGE_SIZE, before=_int_arg("before"), schools=_schools()
    )
    return render_template("console/quarantine.html", page=page)


def requests_page() -> ResponseReturnValue:
    """The pull workflow's requests of the operator's schools (no pupil data)."""
    from oso_gateway.store.pull import PullStore, effective_status

    ctx = _ctx()
    now = ctx.clock()
    # a school on either side (BRIN or BRIN + vestiging), as the transfers' filter: with
    # hundreds of schools one school's requests were pages apart (a vendor's walkthrough)
    typed = request.args.get("school", "").strip().upper()
    school = typed if re.fullmatch(SCHOOL_PATTERN, typed) else None
    records = PullStore(ctx.store).list_requests(
        schools=_schools(),
        newest_first=True,
        before_pk=_int_arg("before"),
        limit=PAGE_SIZE + 1,
        either_school=school,
    )
    page = records[:PAGE_SIZE]
    rows = [(record, effective_status(record, now)) for record in page]
    next_before = page[-1].pk if len(records) > PAGE_SIZE else None  # then page is full
    return render_template(
        "console/requests.html",
        rows=rows,
        now=now,
        fmt=_fmt_time,
        next_before=next_before,
        kept={"school": school} if school else {},
        ignored=["school"] if typed and school is None else [],
    )


def directory_page() -> ResponseReturnValue:
    ctx = _ctx()
    return render_template(
        "console/directory.html",
        gateways=_directory_gateways(ctx.directory, ctx.clock()),
        schools=ctx.directory.schools() if ctx.directory is not None else [],
        source=ctx.directory.source if ctx.directory is not None else None,
        problems=ctx.problems,
    )


def _directory_gateways(directory: Directory | None, now: datetime) -> list[dict[str, Any]]:
    """The directory's gateways with their encryption certificate's fingerprint and expiry."""
    if directory is None:
        return []
    from oso_gateway.security.trust import fingerprint

    gateways = []
    for oin, gw in sorted(directory.gateways.items()):
        cert = gw.encryption_certificate
        gateways.append(
            {
                "oin": oin,
                "name": gw.name,
                "endpoint": gw.endpoint,
                "fingerprint": fingerprint(cert),
                "not_after": cert.not_valid_after_utc,
                "days_left": (cert.not_valid_after_utc - now).days,
            }
        )
    return gateways


@admin_only
def operators_page() -> ResponseReturnValue:
    operators = _ctx().operators
    accounts = operators.all()
    live = {a.name: operators.live_sessions(a.name) for a in accounts}
    return render_template("console/operators.html", accounts=accounts, live=live)


@admin_only
def end_sessions(name: str) -> ResponseReturnValue:
    """An admin ends every session of an operator (their own included)."""
    ctx = _ctx()
    if not NAME_RE.fullmatch(name) or ctx.operators.get(name) is None:
        abort(404)
    ended = ctx.operators.end_sessions(name, now=ctx.clock(), reason="ended-by-admin")
    ctx.audit(operation="sessions.end", status="ok", operator=name)  # whose sessions
    flash(f"Ended {ended} session(s) of {name}.", "info")
    return redirect(url_for("console.operators_page"))


def disclosure_report(pk: int) -> ResponseReturnValue:
    """The parents' report of an outgoing transfer (what was shared), HTML or PDF."""
    from oso_gateway.store.disclosures import PrivacyRecords
    from oso_gateway.transfer.report import build_report, render_html, render_pdf

    ctx = _ctx()
    row = listing.get_transfer(ctx.store.engine, pk, schools=_schools())
    if row is None:
        abort(404)
    if not _is_outgoing_delivery(row):
        kind = (
            "an incoming message"
            if row.direction == m.IN
            else "an outgoing " + _KINDS.get(row.action, ("", "message"))[1]
        )
        return _not_found(
            f"Transfer {pk} is {kind}: a parents' report is made of a dossier this gateway "
            "delivered (an outgoing dossier delivery) only.",
            pk=pk,
        )
    found = PrivacyRecords(ctx.store.engine, None).disclosures(message_id=row.message_id)
    if not found:
        return _not_found(
            f"No disclosure record is held for transfer {pk} (what was shared is recorded when "
            "a dossier is prepared for sending).",
            pk=pk,
        )
    lang = "en" if request.args.get("lang") == "en" else "nl"
    names = ctx.directory.school_names() if ctx.directory else {}
    report = build_report(found, language=lang, now=ctx.clock(), school_names=names)
    if request.args.get("format") == "pdf":
        return Response(
            render_pdf(report),
            mimetype="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="disclosure-{pk}.pdf"'},
        )
    # the styles from a URL of ours: the CSP's style-src 'self' refuses a report's inline ones
    page = render_html(report, stylesheet=url_for("console.disclosure_stylesheet"))
    return Response(page, mimetype="text/html")


def disclosure_stylesheet() -> ResponseReturnValue:
    """The parents' report's stylesheet (``transfer.report.REPORT_CSS``)."""
    from oso_gateway.transfer.report import REPORT_CSS

    return Response(REPORT_CSS, mimetype="text/css")


def _is_outgoing_delivery(row: listing.TransferRow) -> bool:
    """Whether ``row`` is a dossier this gateway sent (the only kind with a parents' report):
    not a request, an answer (accepted, declined) or a receipt."""
    return row.direction == m.OUT and row.action == wire.ACTION_DELIVER


def _not_found(detail: str, *, pk: int | None = None) -> ResponseReturnValue:
    """A 404 that says why (no personal data: ``detail`` names ids and kinds only)."""
    page = render_template(
        "console/error.html", code=404, name="Not Found", detail=detail, transfer_pk=pk
    )
    return page, 404


#: a row id in a URL: up to the largest BIGINT, so that a longer number is a 404 like any unknown
#: one (a bare ``int`` took any length, and the database driver raised OverflowError: a 500)
MAX_PK = 2**63 - 1
_PK = f"int(max={MAX_PK})"

#: (rule, view, methods); the view's name is its endpoint ("console.<name>").
_ROUTES: tuple[tuple[str, Callable[..., ResponseReturnValue], list[str]], ...] = (
    ("/login", login, ["GET", "POST"]),
    ("/logout", logout, ["POST"]),
    ("/", dashboard, ["GET"]),
    ("/transfers", transfers, ["GET"]),
    (f"/transfers/<{_PK}:pk>", transfer, ["GET"]),
    (f"/transfers/<{_PK}:pk>/retry", retry, ["POST"]),
    (f"/transfers/<{_PK}:pk>/disclosure", disclosure_report, ["GET"]),
    ("/disclosure.css", disclosure_stylesheet, ["GET"]),
    ("/quarantine", quarantine, ["GET"]),
    ("/requests", requests_page, ["GET"]),
    ("/directory", directory_page, ["GET"]),
    ("/operators", operators_page, ["GET"]),
    ("/operators/<name>/end-sessions", end_sessions, ["POST"]),
)


def _expiring(ctx: ConsoleContext, now: datetime) -> list[q.ExpiryItem]:
    certs: list[tuple[str, x509.Certificate]] = [
        ("our certificate", c) for c in ctx.identity_certificates
    ]
    if ctx.directory is not None:
        certs += [
            (f"directory: {gw.name}", gw.encryption_certificate)
            for gw in ctx.directory.gateways.values()
        ]
    crls: Iterable[x509.CertificateRevocationList] = ()
    if ctx.trust is not None:
        certs += [("trust anchor", c) for c in ctx.trust.anchors]
        certs += [("intermediate CA", c) for c in ctx.trust.intermediates]
        crls = ctx.trust.crls
    return q.expiring(certificates=certs, crls=crls, now=now)


def _event_of(event: Mapping[str, str], row: listing.TransferRow) -> bool:
    """Whether a log event with ``row``'s MessageID is about ``row``: same direction and the
    same school of ours (an event that names no school, such as a school-API call, is not
    shown: it cannot be told apart from one about another school's message)."""
    school = event.get("school_brin", "") + event.get("school_vestiging", "")
    return event.get("direction") == row.direction and bool(school) and school == row.our_school


def _schools() -> tuple[str, ...] | None:
    """The schools the signed-in operator acts for: of those it is scoped to, the ones this
    gateway serves now (None: every school)."""
    operator: OperatorRecord | None = g.get("operator")
    if operator is None or operator.schools is None:
        return None
    acting: tuple[str, ...] = g.operator_schools
    return acting


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    if not (value.isascii() and value.isdigit() and len(value) < 20):
        return None
    number = int(value)
    return number if number <= MAX_PK else None


def _unique(items: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


def _fmt_time(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_size(value: int | None) -> str:
    if value is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return str(value)  # pragma: no cover
