"""``POST /v2/models/{name}/predict/``: parse, negotiate, run in a worker, send.

A call whose client hangs up while it waits for a worker is dropped unrun.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from deepaas_host.api.keys import LEARN_POOL, PREDICT_POOL, REGISTRY, SETTINGS, UPLOAD_DIR
from deepaas_host.api.negotiation import choose_media_type, prefer_header
from deepaas_host.api.parsing import parse_arguments
from deepaas_host.api.presence import client_gone
from deepaas_host.errors import HostError, NotAcceptable
from deepaas_host.jobs.pool import WorkerPool
from deepaas_host.model.outputs import Outcome
from deepaas_host.model.wrapper import ModelWrapper

__all__ = ["learn_handler", "outcome_response", "pool_for", "predict_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def outcome_response(outcome: Outcome | None) -> web.StreamResponse:
    """The HTTP response for a rendered model output."""
    if outcome is None:
        raise HostError("The worker sent no result.")
    if outcome.kind == "json":
        return web.Response(body=outcome.body, content_type="application/json")
    disposition = f'attachment; filename="{_quote(outcome.filename or "prediction")}"'
    headers = {"Content-Type": outcome.media_type, "Content-Disposition": disposition}
    if outcome.kind == "path" and outcome.path:
        return web.FileResponse(outcome.path, headers=headers)
    return web.Response(body=outcome.body, headers=headers)


def _quote(name: str) -> str:
    return "".join(c if c.isprintable() and c not in '"\\' else "_" for c in name)


def predict_handler(model: ModelWrapper) -> Handler:
    spec = model.predict_args

    def negotiate(request: web.Request) -> Callable[[frozenset[str]], dict[str, Any]]:
        def defaults(explicit: frozenset[str]) -> dict[str, Any]:
            if not spec.accept or "accept" in explicit:
                return {}
            header = request.headers.get("Accept")
            chosen = choose_media_type(header, spec.accept, spec.accept_default)
            if chosen is None:
                raise NotAcceptable(
                    f"Model {model.name!r} cannot answer with any of: {header}.",
                    details={"available": spec.accept},
                )
            return {"accept": chosen}

        return defaults

    # ``version`` selects a model version unless the plugin has an argument of that name.
    reserved = frozenset() if "version" in spec.fields else frozenset({"version"})

    async def handler(request: web.Request) -> web.StreamResponse:
        app = request.app
        parsed = await parse_arguments(
            request,
            spec,
            upload_dir=app[UPLOAD_DIR],
            limit=app[SETTINGS].max_body_size,
            defaults=negotiate(request),
            reserved=reserved,
        )
        try:
            accept = None
            if spec.accept:
                accept = parsed.values.get("accept")
                if "accept" in parsed.explicit and isinstance(accept, str):
                    accept = prefer_header(accept, request.headers.get("Accept"), spec.accept)
                    parsed.values["accept"] = accept
            version = None
            if REGISTRY in app and (model.supports_versions or "version" in parsed.reserved):
                version = await app[REGISTRY].for_predict(
                    model.name, parsed.reserved.get("version")
                )
            reply = await pool_for(app, model).call(
                model.name,
                "predict",
                parsed.values,
                accept=accept,
                version=version,
                large=parsed.large,
                gone=client_gone(request),
            )
            return outcome_response(reply.outcome)
        finally:
            parsed.cleanup()

    return handler


def pool_for(app: web.Application, model: ModelWrapper) -> WorkerPool:
    """A plugin that learns online runs in one worker, so predictions see what it learned."""
    if model.can_learn and LEARN_POOL in app:
        return app[LEARN_POOL]
    return app[PREDICT_POOL]


def learn_handler(model: ModelWrapper) -> Handler:
    """``POST …/learn/``: the plugin's ``learn(**kwargs)``, in order, in its one worker."""
    spec = model.learn_args
    assert spec is not None

    async def handler(request: web.Request) -> web.StreamResponse:
        app = request.app
        parsed = await parse_arguments(
            request, spec, upload_dir=app[UPLOAD_DIR], limit=app[SETTINGS].max_body_size
        )
        try:
            reply = await app[LEARN_POOL].call(
                model.name,
                "learn",
                parsed.values,
                large=parsed.large,
                gone=client_gone(request),
            )
        finally:
            parsed.cleanup()
        return web.json_response(reply.value)

    return handler
