"""Version and model metadata: ``/``, ``/v2/``, ``/v2/models/``, ``/v2/models/{name}/``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from deepaas_host import __version__
from deepaas_host.api.keys import MODELS, SETTINGS
from deepaas_host.api.links import href
from deepaas_host.errors import ModelNotFound
from deepaas_host.model.wrapper import ModelWrapper

__all__ = ["model_document", "routes"]


def _v2_links(request: web.Request) -> list[dict[str, str]]:
    links = [
        {"rel": "self", "href": href(request, "/v2/")},
        {"rel": "models", "href": href(request, "/v2/models/")},
        {"rel": "health", "href": href(request, "/v2/health")},
    ]
    if request.app[SETTINGS].docs:
        links.append({"rel": "describedby", "href": href(request, "/v2/openapi.json")})
        links.append({"rel": "help", "href": href(request, "/api")})
    return links


def model_document(request: web.Request, model: ModelWrapper) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    base = f"/v2/models/{model.name}/"
    links = [{"rel": "self", "href": href(request, base)}]
    if settings.predict:
        links.append({"rel": "predict", "href": href(request, base + "predict/")})
    if settings.train and model.can_train:
        links.append({"rel": "train", "href": href(request, base + "train/")})
    return {**model.metadata, "links": links}


async def root(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "versions": [
                {
                    "id": "v2",
                    "version": "v2",
                    "status": "stable",
                    "host_version": __version__,
                    "links": [{"rel": "self", "href": href(request, "/v2/")}],
                }
            ]
        }
    )


async def v2_root(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "id": "v2",
            "version": "v2",
            "host_version": __version__,
            "links": _v2_links(request),
        }
    )


async def list_models(request: web.Request) -> web.Response:
    models = request.app[MODELS]
    return web.json_response({"models": [model_document(request, m) for m in models.values()]})


async def get_model(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    model = request.app[MODELS].get(name)
    if model is None:
        raise ModelNotFound(name)
    return web.json_response(model_document(request, model))


def routes(prefix: str) -> list[web.RouteDef]:
    return [
        web.get(prefix + "/", root, name="root", allow_head=False),
        web.get(prefix + "/v2/", v2_root, name="v2", allow_head=False),
        web.get(prefix + "/v2/models/", list_models, name="models", allow_head=False),
        web.get(prefix + "/v2/models/{name}/", get_model, name="model", allow_head=False),
    ]
