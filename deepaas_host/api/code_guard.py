"""The one guard of the routes that run code the caller sent.

Which routes those are is declared in :mod:`deepaas_host.auth.caller_code`. Such a
request is allowed when

- the auth middleware verified a ``manage`` token for it, or
- the host is open on loopback (it listens on loopback and no token was ever
  created) and the request comes from a program on this machine: the TCP peer is
  loopback, the ``Host`` header, if any, is a loopback name, and it is no browser
  request for another site (see :mod:`deepaas_host.api.crosssite`).

Anything else — ``--insecure`` included, which opens the other routes only — is 403
``CodeExecutionDenied`` with how to create a token.
"""

from __future__ import annotations

from aiohttp import web

from deepaas_host.api.auth import AUTH, TOKEN_SCOPE, route_of
from deepaas_host.api.crosssite import cross_site_problem
from deepaas_host.api.hostnames import is_loopback_name, split_host
from deepaas_host.api.keys import SETTINGS
from deepaas_host.auth.caller_code import caller_code_operation
from deepaas_host.auth.scopes import Scope, is_loopback
from deepaas_host.errors import CodeExecutionDenied

__all__ = ["require_code_execution"]

_HOW = (
    "It needs an access token with the manage scope: create one with "
    "'deepaas-host token create --scope manage' (with the host's --data-dir or --config) "
    "and send it as 'Authorization: Bearer <token>'."
)


def _refusal(request: web.Request) -> str | None:
    """Why an unauthenticated ``request`` may not run caller code; None if it may."""
    guard = request.app[AUTH]
    settings = request.app[SETTINGS]
    if not guard.open_loopback:
        if settings.insecure and not is_loopback(settings.listen_ip):
            return f"--insecure does not open this route on {settings.listen_ip}."
        return "Access tokens are in use on this host."
    if not is_loopback(request.remote or ""):
        return "Without tokens it is accepted from this machine only."
    host = request.headers.get("Host")
    if host is not None:
        name = split_host(host)
        if name is None or not is_loopback_name(name):
            return (
                f"Without tokens it is accepted only under a loopback name "
                f"(localhost, 127.0.0.1, [::1]), not {host!r}."
            )
    problem = cross_site_problem(request)
    if problem is not None:
        return f"A browser sent it for a page of another site ({problem})."
    return None


def require_code_execution(request: web.Request) -> None:
    """Raise :class:`CodeExecutionDenied` unless ``request`` may run the code it carries.

    Call it before the upload is loaded, from a route declared in
    ``CALLER_CODE_OPERATIONS``; any other caller is a programming error.
    """
    route = route_of(request)
    operation = caller_code_operation(request.method, route)
    if operation is None:
        raise RuntimeError(
            f"{request.method} {route} runs caller code but is not declared in "
            "deepaas_host.auth.caller_code.CALLER_CODE_OPERATIONS"
        )
    scope = request.get(TOKEN_SCOPE)
    if isinstance(scope, Scope) and scope.grants(Scope.MANAGE):
        return
    refusal = _refusal(request)
    if refusal is not None:
        raise CodeExecutionDenied(
            f"This request {operation.runs}, which runs code it carries on this host. "
            f"{refusal} {_HOW}",
            details={"required_scope": Scope.MANAGE.value},
        )
