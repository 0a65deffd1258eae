"""Token scopes and the rule that maps a route to the scope it needs.

The rule looks at the route *template* (``/v2/models/demo/train/{job_id}``), never
at the requested path, so a path parameter cannot change the verdict; the same
function marks the operations of the OpenAPI document.

- open, no token: ``GET`` of ``/``, ``/v2/``, ``/v2/health``, the OpenAPI document
  and the Swagger UI with its assets;
- ``predict``: every other ``GET``, a ``POST`` to a route ending in
  ``/predict/``, ``/learn/`` or ``/label/``, and the events of an online model
  (``/v2/online/{name}/predict|learn|label|bulk``);
- ``manage`` (which includes ``predict``): everything else — starting and
  cancelling training, uploading, deleting, loading and unloading versions,
  creating and deleting online models.
"""

from __future__ import annotations

import enum
import ipaddress

__all__ = ["OPEN_ROUTES", "Scope", "is_loopback", "required_scope"]


class Scope(enum.StrEnum):
    """What a token may do; ``manage`` includes ``predict``."""

    PREDICT = "predict"
    MANAGE = "manage"

    def __str__(self) -> str:
        return self.value

    def grants(self, needed: Scope) -> bool:
        return self is Scope.MANAGE or needed is Scope.PREDICT


OPEN_ROUTES = frozenset(
    {
        "/",
        "/v2/",
        "/v2/health",
        "/v2/openapi.json",
        "/swagger.json",
        "/api",
        "/api/",
        "/api/static",
        "/ui",
        "/ui/",
    }
)

_READ_METHODS = frozenset({"GET", "HEAD"})
_PREDICT_ACTIONS = frozenset({"predict", "learn", "label"})
_ONLINE_ACTIONS = frozenset({"predict", "learn", "label", "bulk"})
_MODELS = "/v2/models/"
_ONLINE = "/v2/online/"
# Answers only 404/405 for names that are not served (see api/app.py).
_CATCH_ALL = "/v2/models/{name}/{rest}"


def required_scope(method: str, route: str | None) -> Scope | None:
    """The scope ``method`` on the route template ``route`` needs; None if it is open.

    ``route`` is relative to the base path; None means no route matched (the
    request is answered 404 or 405), which needs a token of any scope so that
    nobody without one can probe the API.
    """
    method = method.upper()
    if route is None or route == _CATCH_ALL:
        return Scope.PREDICT
    if method in _READ_METHODS:
        return None if route in OPEN_ROUTES else Scope.PREDICT
    if method == "POST" and route.startswith(_MODELS):
        # /v2/models/<name>/…/<action>/: the action is never the model's own segment.
        model_and_path, _, action = route[len(_MODELS) :].rstrip("/").rpartition("/")
        if model_and_path and action in _PREDICT_ACTIONS:
            return Scope.PREDICT
    if method == "POST" and route.startswith(_ONLINE):
        # /v2/online/{name}/<action>[/]: events; creating and uploading need manage.
        name, _, action = route[len(_ONLINE) :].rstrip("/").partition("/")
        if name and action in _ONLINE_ACTIONS:
            return Scope.PREDICT
    return Scope.MANAGE


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``.

    Anything else, including a host name and the wildcard addresses, counts as
    reachable from other machines.
    """
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
