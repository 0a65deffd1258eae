"""The OpenAPI document and a Swagger UI served from locally installed assets."""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from aiohttp import web

from deepaas_host.api.keys import SETTINGS
from deepaas_host.errors import HostError

__all__ = ["SPEC", "routes", "swagger_assets"]

SPEC = web.AppKey("openapi", dict)

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{static}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{static}/swagger-ui-bundle.js"></script>
  <script src="{static}/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
"""


def swagger_assets() -> Path:
    """Directory of the Swagger UI assets shipped by the ``swagger-ui-py`` package."""
    found = importlib.util.find_spec("swagger_ui")
    if found is None or not found.submodule_search_locations:
        raise HostError("The Swagger UI assets (package swagger-ui-py) are not installed.")
    return Path(next(iter(found.submodule_search_locations))) / "static"


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[SPEC])


async def ui(request: web.Request) -> web.Response:
    base = request.app[SETTINGS].base_path
    page = _PAGE.format(
        title=html.escape("deepaas-host API"),
        static=f"{base}/api/static",
        spec=f"{base}/v2/openapi.json",
    )
    return web.Response(text=page, content_type="text/html")


async def redirect_ui(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.app[SETTINGS].base_path + "/api")


def routes(prefix: str) -> list[web.AbstractRouteDef]:
    return [
        web.get(prefix + "/v2/openapi.json", openapi, name="openapi", allow_head=False),
        web.get(prefix + "/swagger.json", openapi, name="swagger", allow_head=False),
        web.get(prefix + "/api", ui, name="ui", allow_head=False),
        web.get(prefix + "/api/", ui, allow_head=False),
        web.get(prefix + "/ui", redirect_ui, allow_head=False),
        web.get(prefix + "/ui/", redirect_ui, allow_head=False),
        web.static(prefix + "/api/static", swagger_assets(), name="ui-static"),
    ]
