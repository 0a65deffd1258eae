"""The one place errors become HTTP responses, and the one access-log line per request."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from deepaas_host.api.keys import SETTINGS
from deepaas_host.errors import AuthenticationError, HostError
from deepaas_host.logs import escape

__all__ = [
    "REQUEST_ID",
    "error_body",
    "error_middleware",
    "json_error",
    "request_log_middleware",
]

log = logging.getLogger("deepaas_host.access")
errlog = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = "request_id"
# What a caller's X-Request-ID may be: it is logged, echoed and put in error bodies.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def error_body(status: int, error: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "error",
        "code": status,
        "error": error,
        "message": message,
    }
    if details is not None:
        body["details"] = details
    return body


def json_error(exc: HostError, request_id: str | None = None) -> web.Response:
    body = exc.to_dict()
    if request_id:
        body["request_id"] = request_id
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = exc.challenge
    return web.json_response(body, status=exc.status, headers=headers, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


_HTTP_NAMES = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure with one JSON shape."""
    request_id = request.get(REQUEST_ID)
    try:
        return await handler(request)
    except HostError as exc:
        return json_error(exc, request_id)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.reason
        if exc.status == 404:
            message = f"No route for {request.method} {request.path}."
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}."
        elif exc.status == 413:
            message = exc.text or "The request body is too large."
        body = error_body(
            exc.status,
            _HTTP_NAMES.get(exc.status, exc.reason.replace(" ", "")),
            message,
        )
        if request_id:
            body["request_id"] = request_id
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return web.json_response(body, status=exc.status, headers=headers)
    except Exception:
        errlog.exception("unhandled error on %s %s", escape(request.method), escape(request.path))
        body = error_body(500, "InternalError", "The host failed to handle this request.")
        if request_id:
            body["request_id"] = request_id
        return web.json_response(body, status=500)


def _model_of(request: web.Request) -> str | None:
    """The model a request is about: routes of served models name it literally."""
    name = request.match_info.get("name")
    if name is not None:
        return name
    resource = request.match_info.route.resource
    prefix = request.app[SETTINGS].base_path + "/v2/models/"
    if resource is None or not resource.canonical.startswith(prefix):
        return None
    return resource.canonical[len(prefix) :].partition("/")[0] or None


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Honour or assign ``X-Request-ID`` and log one line per request."""
    given = request.headers.get("X-Request-ID", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-ID"] = request_id
        raise
    finally:
        if log.isEnabledFor(logging.INFO):
            route = request.match_info.route.resource
            log.info(
                "%s %s %d %.2fms",
                escape(request.method),
                escape(request.path),
                status,
                (time.perf_counter() - start) * 1000,
                extra={
                    "request_id": request_id,
                    "model": _model_of(request),
                    "route": route.canonical if route is not None else None,
                    "status": status,
                    "latency_ms": round((time.perf_counter() - start) * 1000, 3),
                },
            )
