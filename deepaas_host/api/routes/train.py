"""Training routes: start, list, get and cancel jobs of one model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from deepaas_host.api.keys import REGISTRY, SETTINGS, TRAINING, UPLOAD_DIR
from deepaas_host.api.links import href
from deepaas_host.api.parsing import parse_arguments
from deepaas_host.jobs.training import public_arguments
from deepaas_host.model.wrapper import ModelWrapper
from deepaas_host.store import JobRecord

__all__ = ["job_document", "train_handlers"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def job_document(request: web.Request, record: JobRecord) -> dict[str, Any]:
    body = record.to_dict()
    body["uuid"] = record.id
    body["arguments"] = public_arguments(record.arguments)
    body["href"] = href(request, f"/v2/models/{record.model}/train/{record.id}")
    return body


def train_handlers(model: ModelWrapper) -> dict[str, Handler]:
    spec = model.train_args
    assert spec is not None

    async def start(request: web.Request) -> web.Response:
        app = request.app
        parsed = await parse_arguments(
            request, spec, upload_dir=app[UPLOAD_DIR], limit=app[SETTINGS].max_body_size
        )
        try:
            record = await app[TRAINING].submit(model.name, parsed.values, parsed.uploads)
        finally:
            parsed.cleanup()
        body = job_document(request, record)
        return web.json_response(body, status=202, headers={"Location": body["href"]})

    async def list_jobs(request: web.Request) -> web.Response:
        records = await request.app[TRAINING].list(model.name)
        return web.json_response([job_document(request, r) for r in records])

    async def get_job(request: web.Request) -> web.Response:
        record = await request.app[TRAINING].get(model.name, request.match_info["job_id"])
        body = job_document(request, record)
        version = await request.app[REGISTRY].by_job(model.name, record.id)
        body["version"] = version.name if version is not None else None
        return web.json_response(body)

    async def cancel_job(request: web.Request) -> web.Response:
        record = await request.app[TRAINING].cancel(model.name, request.match_info["job_id"])
        return web.json_response(job_document(request, record))

    return {"start": start, "list": list_jobs, "get": get_job, "cancel": cancel_job}
