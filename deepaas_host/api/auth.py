"""Access tokens on the HTTP side: the middleware and the cache of active tokens it reads.

The cache is refreshed from the store every ``REFRESH_INTERVAL`` seconds, so a
token created or revoked with ``deepaas-host token`` counts within seconds
without a database query per request.

When requests need a token: always, once a token was ever created in the store
(revoking the last one locks the host rather than opening it), and always on an
address other than loopback, where a host without an active token refuses to
start. ``insecure`` lifts both while no token is active.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from deepaas_host.api.crosssite import require_same_site
from deepaas_host.api.hostnames import require_own_host
from deepaas_host.api.keys import SETTINGS
from deepaas_host.auth.caller_code import CallerCodeOperation, caller_code_operation
from deepaas_host.auth.scopes import Scope, is_loopback, required_scope
from deepaas_host.errors import AuthenticationError, PermissionDenied
from deepaas_host.settings import SettingsError
from deepaas_host.store.tokens import TokenStore, hash_token

__all__ = [
    "AUTH",
    "LAST_USED_INTERVAL",
    "REFRESH_INTERVAL",
    "STANDALONE_HEADER",
    "TOKEN_SCOPE",
    "TokenGuard",
    "auth_context",
    "auth_middleware",
    "document_security",
    "route_of",
    "token_of",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REFRESH_INTERVAL = 2.0
# ``last_used_at`` is for people deciding what to revoke: a minute is precise
# enough, and a busy host writes once a minute per token, not once per request.
LAST_USED_INTERVAL = 60.0
STANDALONE_HEADER = "standAloneToken"
#: Request key: the scope of the token the middleware verified for this request.
TOKEN_SCOPE = "token_scope"


class TokenGuard:
    """The active tokens as of the last :meth:`refresh`, and whether they are required."""

    def __init__(
        self,
        store: TokenStore,
        *,
        loopback: bool,
        insecure: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._loopback = loopback
        self._insecure = insecure
        self._clock = clock
        self._tokens: dict[str, Scope] = {}
        self._ever_created = False
        self._loaded = False
        self._used: dict[str, float] = {}
        self._written: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        """Whether protected routes need a token now."""
        if self._tokens:
            return True
        return not (self._insecure or (self._loopback and not self._ever_created))

    @property
    def open_loopback(self) -> bool:
        """Listening on loopback, and no token was ever created: nobody is authenticated."""
        return self._loopback and not self._ever_created and not self._tokens

    @property
    def active_tokens(self) -> int:
        return len(self._tokens)

    def scope_of(self, token: str) -> Scope | None:
        """The scope of ``token``, or None if it is unknown or revoked."""
        digest = hash_token(token)
        scope = self._tokens.get(digest)
        if scope is not None:
            now = self._clock()
            if now - self._written.get(digest, -math.inf) >= LAST_USED_INTERVAL:
                self._used[digest] = now
        return scope

    async def refresh(self) -> None:
        """Write pending last-use times, then reload the active tokens."""
        was_enabled = self.enabled
        await self.flush()
        self._tokens = await self._store.active()
        if not self._ever_created:
            self._ever_created = bool(self._tokens) or await self._store.exists()
        self._written = {h: t for h, t in self._written.items() if h in self._tokens}
        if self._loaded and self.enabled != was_enabled:
            if self.enabled:
                log.info("access tokens are required now (%d active)", len(self._tokens))
            else:
                log.warning("no active access token left: requests need no token (--insecure)")
        self._loaded = True

    async def flush(self) -> None:
        """Record when tokens were last used (at most once per interval each)."""
        used, self._used = self._used, {}
        try:
            await self._store.mark_used(used)
        except BaseException:
            self._used = {**used, **self._used}
            raise
        self._written.update(used)

    async def run(self, interval: float = REFRESH_INTERVAL) -> None:
        """Refresh every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception as exc:
                # The database is busy or away: keep the tokens known so far.
                log.warning("cannot refresh the access tokens: %s", exc)


AUTH = web.AppKey("auth", TokenGuard)


def _security_schemes() -> dict[str, Any]:
    return {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from `deepaas-host token create`.",
        },
        STANDALONE_HEADER: {
            "type": "apiKey",
            "in": "header",
            "name": STANDALONE_HEADER,
            "description": "The same token in the header some clients send instead.",
        },
    }


_SPEC_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document_security(document: dict[str, Any], base_path: str) -> dict[str, Any]:
    """Mark each operation of an OpenAPI document with the token it needs.

    The scope comes from :func:`required_scope`, the rule the middleware
    applies, so the document and the host cannot disagree.
    """
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    schemes = _security_schemes()
    document.setdefault("components", {})["securitySchemes"] = schemes
    for path, item in document.get("paths", {}).items():
        route = path[len(base_path) :] if base_path and path.startswith(base_path) else path
        for method in _SPEC_METHODS:
            operation = item.get(method)
            needed = required_scope(method, route)
            if operation is None or needed is None:
                continue
            operation["security"] = [{name: []} for name in schemes]
            operation["x-required-scope"] = needed.value
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "401",
                {
                    "description": "Missing, unknown or revoked access token",
                    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    **error,
                },
            )
            if needed is Scope.MANAGE:
                responses.setdefault(
                    "403", {"description": "The token lacks the `manage` scope", **error}
                )
            runs = caller_code_operation(method, route)
            if runs is not None:
                _mark_caller_code(operation, runs, error)
    info = document.setdefault("info", {})
    info["description"] = (
        info.get("description", "")
        + " Operations with a security requirement need an access token once the host "
        "has one, and always beyond loopback unless it runs with --insecure; "
        "`x-required-scope` names the scope (`manage` includes `predict`)."
    ).strip()
    return document


def _mark_caller_code(
    operation: dict[str, Any], runs: CallerCodeOperation, error: dict[str, Any]
) -> None:
    operation["x-runs-caller-code"] = True
    note = (
        f"**Runs code the caller sent**: this request {runs.runs}, which executes "
        "whatever the file holds. It needs a `manage` token; without tokens it is "
        "accepted only by a host listening on loopback, from programs on that machine "
        "(never from a browser page of another site), and `--insecure` does not open it."
    )
    description = operation.get("description", "").strip()
    operation["description"] = f"{description}\n\n{note}".strip()
    operation.setdefault("responses", {})["403"] = {
        "description": "The token lacks the `manage` scope, no `manage` token was sent "
        "(`CodeExecutionDenied`), or a browser sent it for another site "
        "(`CrossSiteRequest`)",
        **error,
    }


def token_of(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>`` or ``standAloneToken: <token>``."""
    scheme, _, credentials = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get(STANDALONE_HEADER, "").strip() or None


def route_of(request: web.Request) -> str | None:
    """Template of the matched route without the base path; None if none matched."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    route = resource.canonical
    base = request.app[SETTINGS].base_path
    return route[len(base) :] if base and route.startswith(base) else route


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Let a request through if it names this host, no browser sent it for another
    site, and its route is open or its token's scope covers it.

    The first two checks come before tokens are even looked at: a DNS-rebinding page
    gets 421 ``HostNotAllowed`` and a cross-site form post 403 ``CrossSiteRequest``,
    tokens or not. They live in this one middleware because each layer of middleware
    costs every request.
    """
    require_own_host(request)
    require_same_site(request)
    guard = request.app[AUTH]
    if not guard.enabled:
        return await handler(request)
    needed = required_scope(request.method, route_of(request))
    if needed is None:
        return await handler(request)
    token = token_of(request.headers)
    if token is None:
        raise AuthenticationError(
            "This route needs an access token: send 'Authorization: Bearer <token>'.",
            details={"required_scope": needed.value},
        )
    scope = guard.scope_of(token)
    if scope is None:
        raise AuthenticationError(
            "The access token is unknown or revoked.",
            challenge='Bearer error="invalid_token"',
        )
    if not scope.grants(needed):
        raise PermissionDenied(
            f"This route needs a token with the {needed.value!r} scope; "
            f"this token has {scope.value!r}.",
            details={"required_scope": needed.value, "token_scope": scope.value},
        )
    request[TOKEN_SCOPE] = scope
    return await handler(request)


async def auth_context(app: web.Application) -> AsyncIterator[None]:
    """Open the token store, refuse an unprotected public address, keep the cache fresh."""
    settings = app[SETTINGS]
    loopback = is_loopback(settings.listen_ip)
    store = await TokenStore.open(settings.db_url)
    guard = TokenGuard(store, loopback=loopback, insecure=settings.insecure)
    refresher: asyncio.Task[None] | None = None
    try:
        await guard.refresh()
        if guard.active_tokens:
            log.info("access tokens required (%d active)", guard.active_tokens)
        elif not loopback and not settings.insecure:
            raise SettingsError(
                f"refusing to listen on {settings.listen_ip} without access tokens: "
                "anyone who can reach it could predict, train and replace models. "
                "Create one first (deepaas-host token create --scope manage, with "
                "the same --data-dir or --config), or pass --insecure to serve "
                "without authentication."
            )
        elif guard.enabled:
            log.warning(
                "every access token is revoked: protected routes answer 401 until one "
                "is created (deepaas-host token create)"
            )
        elif not loopback:
            log.warning(
                "serving on %s without authentication (--insecure): anyone who can "
                "reach it may predict, train and replace models",
                settings.listen_ip,
            )
        else:
            log.info("no access tokens: serving on loopback without authentication")
        app[AUTH] = guard
        refresher = asyncio.create_task(guard.run(REFRESH_INTERVAL))
        yield
    finally:
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            try:
                await guard.flush()
            except Exception as exc:
                log.warning("cannot record when access tokens were last used: %s", exc)
        await store.close()
