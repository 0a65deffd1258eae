"""Requests a browser sends for a page of another site may change nothing.

A page the user merely visits can make the browser send a ``POST`` here — a form, or
a ``fetch`` in ``no-cors`` mode with a ``multipart/form-data`` body — without any
CORS preflight. The browser does not let the page read the answer, but the request
itself is carried out; so every method but ``GET``, ``HEAD`` and ``OPTIONS`` is
refused, with or without access tokens, when the browser says the request is not the
page's own:

1. ``Sec-Fetch-Site`` present (every current browser sends it): anything but
   ``same-origin`` or ``none`` (the user typed the address) is refused. It decides
   alone: a page cannot forge it, and it stays right behind a reverse proxy that
   rewrites ``Host`` or terminates TLS.
2. Otherwise ``Origin`` present (older browsers): ``null`` or an origin whose scheme,
   host or port differ from the request's own is refused.
3. Neither header: not a browser (curl, requests, the Python client) — allowed.

The Swagger UI the host serves sends ``Sec-Fetch-Site: same-origin`` and its own
origin, so it keeps working. Refused requests get 403 ``CrossSiteRequest``.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from deepaas_host.api.hostnames import split_host
from deepaas_host.errors import CrossSiteRequest

__all__ = ["SAFE_METHODS", "cross_site_problem", "require_same_site"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_OWN = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _port_of(value: str, scheme: str) -> int | None:
    """The port of a ``Host`` value, or the scheme's default."""
    tail = value.rpartition("]")[2] if value.startswith("[") else value
    _, colon, port = tail.partition(":")
    if colon and port.isdigit():
        return int(port)
    return _DEFAULT_PORTS.get(scheme)


def _own_origin(request: web.Request) -> tuple[str, str | None, int | None]:
    scheme = request.scheme
    host = request.host  # the Host header, else the address the request came in on
    return scheme, split_host(host), _port_of(host, scheme)


def _origin_of(value: str) -> tuple[str, str | None, int | None] | None:
    try:
        url = URL(value)
    except ValueError:
        return None
    if not url.scheme or url.host is None:
        return None
    return url.scheme.lower(), split_host(url.raw_host or ""), url.port


def cross_site_problem(request: web.Request) -> str | None:
    """Why the browser that sent ``request`` sent it for another site; None if it did not."""
    if request.method in SAFE_METHODS:
        return None
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site.strip().lower() in _OWN:
            return None
        return f"Sec-Fetch-Site: {site}"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    if origin.strip() == "null":
        return "Origin: null"
    theirs = _origin_of(origin.strip())
    if theirs is None or theirs != _own_origin(request):
        return f"Origin: {origin}"
    return None


def require_same_site(request: web.Request) -> None:
    """Raise 403 ``CrossSiteRequest`` for an unsafe method a browser sent for another site."""
    problem = cross_site_problem(request)
    if problem is not None:
        raise CrossSiteRequest(
            f"A browser sent this {request.method} for a page that is not this host's "
            f"({problem}); pages of other sites may not change anything here. Call the "
            "API from a program (curl, the Python client) or from this host's Swagger UI.",
            details={
                "origin": request.headers.get("Origin"),
                "sec_fetch_site": request.headers.get("Sec-Fetch-Site"),
            },
        )
