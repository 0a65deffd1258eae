"""Absolute links and paths under the configured base path."""

from __future__ import annotations

from aiohttp import web

from deepaas_host.api.keys import SETTINGS

__all__ = ["href", "path"]


def path(request: web.Request, suffix: str) -> str:
    return request.app[SETTINGS].base_path + suffix


def href(request: web.Request, suffix: str) -> str:
    return str(request.url.with_path(path(request, suffix)).with_query(None))
