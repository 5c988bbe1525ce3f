"""RFC 9457 problem details (``application/problem+json``) carrying our stable error code.

What a caller is told is the error class's ``public_message``, the code, and for validation the
rule codes with their locations. ``detail`` is for our log, except for the classes that mark it
``client_detail`` (the pull workflow's refusals of the caller's own steps, a message's status
that does not allow an action: a state, field names, the caller's own date), whose detail is
the problem's; and a ``detail`` the API passes in its own words. No pupil data.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Rule

from oso_gateway.errors import GatewayError
from oso_gateway.protocol import shown_id
from oso_gateway.web.api.context import API_PREFIX

PROBLEM_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    """A URI naming the error code (documented in docs/errors.md)."""
    return f"urn:oso-gateway:error:{code}"


def problem(
    error: GatewayError | type[GatewayError],
    *,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    detail: str | None = None,
) -> Response:
    """The problem of ``error``; ``detail``: what the caller got wrong, in the API's own words
    (never a value it sent), instead of the title."""
    cls = error if isinstance(error, type) else type(error)
    if detail is None:
        detail = cls.public_message
        if cls.client_detail and not isinstance(error, type):
            detail = error.detail[:500]  # what the caller got wrong, e.g. the state it is in
    body: dict[str, Any] = {
        "type": problem_type(cls.code),
        "title": cls.public_message,
        "status": cls.http_status,
        "detail": detail,
        "code": cls.code,
        # the route with its id, never what was typed where an id goes (it is echoed back)
        "instance": logged_path() if request else None,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    response = Response(
        json.dumps(body, ensure_ascii=False), status=cls.http_status, mimetype=PROBLEM_TYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def problem_response_spec(description: str) -> dict[str, Any]:
    """The OpenAPI response object of a problem answer."""
    return {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def logged_path() -> str:
    """The call's path for the process log: the route with its id when that is one, never what
    was typed where an id goes (a school system put a pupil's name and BSN there, and the log
    held it: a privacy walkthrough). No route: the prefix only."""
    rule, args = request.url_rule, request.view_args
    if rule is None:  # a method the route does not take (405): the route all the same
        rule, args = _route_of_other_method() or (None, None)
    if rule is None:
        return API_PREFIX + "/… (no such route)"
    path = rule.rule
    for name, value in (args or {}).items():
        path = path.replace(f"<{name}>", shown_id(str(value)))
    return path


def allowed_methods() -> list[str]:
    """The methods the route of a 405 takes (its ``Allow`` header, RFC 9110 §15.5.6)."""
    exc = request.routing_exception
    return sorted(exc.valid_methods or ()) if isinstance(exc, MethodNotAllowed) else []


def _route_of_other_method() -> tuple[Rule, dict[str, Any]] | None:
    """The rule and arguments the path matches with a method it takes, when the call's own
    method is not one (a 405); None otherwise. The instance said "(no such route)" of a route
    that exists (an integrator's walkthrough)."""
    methods = allowed_methods()
    if not methods:
        return None
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        rule, args = adapter.match(method=methods[0], return_rule=True)
    except HTTPException:
        return None
    return rule, dict(args)
