"""Versions of a model: upload, list, get, download (resumable), delete, load, unload,
default."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from marshmallow import fields, validate

from deepaas_host.api.keys import REGISTRY, SETTINGS, UPLOAD_DIR
from deepaas_host.api.links import href
from deepaas_host.api.parsing import parse_arguments
from deepaas_host.model.arguments import ArgumentSpec, build_argument_spec
from deepaas_host.model.v2 import File, UploadedFile
from deepaas_host.registry.service import VersionService
from deepaas_host.store.versions import VersionRecord

__all__ = ["ENGINES", "upload_spec", "version_document", "version_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Engines clients commonly name; any short identifier is accepted.
ENGINES = ("onnx", "pickle", "joblib", "river", "torch", "tensorflow", "custom")


def upload_spec() -> ArgumentSpec:
    return build_argument_spec(
        "versions",
        "upload",
        {
            "file": File(required=True, metadata={"description": "The artifact"}),
            "engine": fields.Str(
                required=True,
                validate=validate.Regexp(r"^[A-Za-z0-9_.+-]{1,64}$"),
                metadata={"description": f"Artifact format, e.g. {', '.join(ENGINES)}"},
            ),
            "version": fields.Str(
                load_default=None,
                validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$"),
                metadata={"description": "Version name (generated: v1, v2, … when absent)"},
            ),
            "description": fields.Str(load_default=None, metadata={"description": "Free text"}),
            "force": fields.Bool(
                load_default=False,
                metadata={"description": "Replace file, engine and description if it exists"},
            ),
        },
    )


def version_document(
    request: web.Request, record: VersionRecord, *, default: str | None, loaded: set[str]
) -> dict[str, Any]:
    body = record.to_dict()
    base = f"/v2/models/{record.model}/versions/{record.name}"
    body["default"] = record.name == default
    body["loaded"] = record.name in loaded
    body["href"] = href(request, base)
    body["download"] = href(request, base + "/download")
    return body


def version_routes(prefix: str) -> list[web.RouteDef]:
    spec = upload_spec()

    def registry(request: web.Request) -> VersionService:
        return request.app[REGISTRY]

    async def document(request: web.Request, record: VersionRecord) -> dict[str, Any]:
        reg = registry(request)
        default = await reg.default_name(record.model)
        return version_document(request, record, default=default, loaded=reg.loaded(record.model))

    async def upload(request: web.Request) -> web.Response:
        model = request.match_info["name"]
        registry(request).require_model(model)
        parsed = await parse_arguments(
            request,
            spec,
            upload_dir=request.app[UPLOAD_DIR],
            limit=request.app[SETTINGS].max_body_size,
        )
        try:
            values = parsed.values
            upload: UploadedFile = values["file"]
            record, created = await registry(request).upload(
                model,
                Path(upload.filename),
                filename=upload.original_filename or "artifact",
                engine=values["engine"],
                name=values["version"],
                description=values["description"],
                force=values["force"],
            )
        finally:
            parsed.cleanup()
        body = await document(request, record)
        return web.json_response(
            body, status=201 if created else 200, headers={"Location": body["href"]}
        )

    async def list_versions(request: web.Request) -> web.Response:
        model = request.match_info["name"]
        reg = registry(request)
        records = await reg.list(model)
        default = await reg.default_name(model)
        loaded = reg.loaded(model)
        return web.json_response(
            {
                "versions": [
                    version_document(request, r, default=default, loaded=loaded) for r in records
                ],
                "default": default,
            }
        )

    async def get_version(request: web.Request) -> web.Response:
        record = await registry(request).get(
            request.match_info["name"], request.match_info["version"]
        )
        return web.json_response(await document(request, record))

    async def download(request: web.Request) -> web.StreamResponse:
        reg = registry(request)
        record = await reg.get(request.match_info["name"], request.match_info["version"])
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{_safe(record.filename)}"',
            "X-Checksum-SHA256": record.sha256,
        }
        return web.FileResponse(reg.path(record), headers=headers)

    async def delete(request: web.Request) -> web.Response:
        record = await registry(request).delete(
            request.match_info["name"], request.match_info["version"]
        )
        body = await document(request, record)
        return web.json_response(body)

    def action(name: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            reg = registry(request)
            method = {"load": reg.load, "unload": reg.unload, "default": reg.set_default}[name]
            record = await method(request.match_info["name"], request.match_info["version"])
            return web.json_response(await document(request, record))

        return handler

    base = prefix + "/v2/models/{name}/versions"
    return [
        web.post(base + "/", upload),
        web.get(base + "/", list_versions, allow_head=False),
        web.get(base + "/{version}", get_version, allow_head=False),
        web.get(base + "/{version}/download", download),
        web.delete(base + "/{version}", delete),
        web.post(base + "/{version}/load", action("load")),
        web.post(base + "/{version}/unload", action("unload")),
        web.post(base + "/{version}/default", action("default")),
    ]


def _safe(name: str) -> str:
    return "".join(c if c.isprintable() and c not in '"\\' else "_" for c in name)
