"""Versions of a model: upload, list, get, download (resumable), delete, default, pin,
unpin; load and unload for models that can load versions (the others have no such
route). A ``{version}`` segment is a version name (:data:`VERSION_NAME`) or no route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from marshmallow import fields, validate

from deepaas_host.api.code_guard import require_code_execution
from deepaas_host.api.keys import REGISTRY, SETTINGS, UPLOAD_DIR
from deepaas_host.api.links import href
from deepaas_host.api.parsing import parse_arguments
from deepaas_host.model.arguments import ArgumentSpec, build_argument_spec
from deepaas_host.model.v2 import File, UploadedFile
from deepaas_host.model.wrapper import ModelWrapper
from deepaas_host.registry.artifacts import ArtifactStore
from deepaas_host.registry.service import VersionService
from deepaas_host.store.versions import VERSION_NAME, VersionRecord

__all__ = ["ENGINES", "upload_spec", "version_document", "version_routes"]

log = logging.getLogger(__name__)

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
                # \Z, not $: "v1\n" is no name (Regexp matches from the start only).
                validate=validate.Regexp(rf"{VERSION_NAME.pattern}\Z"),
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


def version_routes(prefix: str, models: Iterable[ModelWrapper] = ()) -> list[web.RouteDef]:
    """The routes of every model's versions; load and unload for ``models`` that can
    load versions."""
    spec = upload_spec()

    def registry(request: web.Request) -> VersionService:
        return request.app[REGISTRY]

    async def document(request: web.Request, record: VersionRecord) -> dict[str, Any]:
        reg = registry(request)
        default = await reg.default_name(record.model)
        return version_document(request, record, default=default, loaded=reg.loaded(record.model))

    async def upload(request: web.Request) -> web.Response:
        require_code_execution(request)
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
        label = f"version {record.name!r} of {record.model!r}"
        local = await reg.artifacts.local_copy(record.key, record.sha256, label=label)
        if local is not None:
            return web.FileResponse(local, headers=headers)
        return await _stream(request, reg.artifacts, record, headers, label)

    async def delete(request: web.Request) -> web.Response:
        record = await registry(request).delete(
            request.match_info["name"], request.match_info["version"]
        )
        body = await document(request, record)
        return web.json_response(body)

    def action(name: str, model: str | None = None) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            if name == "load":
                require_code_execution(request)
            reg = registry(request)
            method: Callable[[str, str], Awaitable[VersionRecord]] = {
                "load": reg.load,
                "unload": reg.unload,
                "default": reg.set_default,
                "pin": reg.pin,
                "unpin": reg.unpin,
            }[name]
            record = await method(
                model or request.match_info["name"], request.match_info["version"]
            )
            return web.json_response(await document(request, record))

        return handler

    base = prefix + "/v2/models/{name}/versions"
    version = f"{{version:{VERSION_NAME.pattern}}}"
    routes = [
        web.post(base + "/", upload),
        web.get(base + "/", list_versions, allow_head=False),
        web.get(f"{base}/{version}", get_version, allow_head=False),
        web.get(f"{base}/{version}/download", download),
        web.delete(f"{base}/{version}", delete),
        web.post(f"{base}/{version}/default", action("default")),
        web.post(f"{base}/{version}/pin", action("pin")),
        web.post(f"{base}/{version}/unpin", action("unpin")),
    ]
    for model in models:
        if model.supports_versions:
            own = f"{prefix}/v2/models/{model.name}/versions/{version}"
            routes.append(web.post(f"{own}/load", action("load", model.name)))
            routes.append(web.post(f"{own}/unload", action("unload", model.name)))
    return routes


async def _stream(
    request: web.Request,
    artifacts: ArtifactStore,
    record: VersionRecord,
    headers: dict[str, str],
    label: str,
) -> web.StreamResponse:
    """Stream an artifact from its store, honouring a single byte ``Range`` (206/416)."""
    size = record.size
    etag = f'"{record.sha256}"'
    start, end, status = 0, size, 200
    if_range = request.headers.get(hdrs.IF_RANGE)
    if hdrs.RANGE in request.headers and (if_range is None or if_range == etag):
        bounds = _range(request, size)
        if bounds is None:
            return web.Response(status=416, headers={hdrs.CONTENT_RANGE: f"bytes */{size}"})
        start, end = bounds
        status = 206
    reader = await artifacts.open(record.key, label=label)  # errors are still JSON here
    try:
        response = web.StreamResponse(status=status, headers=headers)
        response.headers[hdrs.ACCEPT_RANGES] = "bytes"
        response.headers[hdrs.ETAG] = etag
        if status == 206:
            response.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end - 1}/{size}"
        response.content_length = end - start
        await response.prepare(request)
        if request.method == hdrs.METH_HEAD:
            return response
        try:
            async for chunk in reader.chunks(start, end):
                await response.write(chunk)
        except ConnectionError:  # the client went away
            return response
        except Exception as exc:
            # Headers are sent: the only honest signal left is a cut connection.
            log.warning("streaming %s from the artifact store failed: %s", label, exc)
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response
    finally:
        await reader.close()


def _range(request: web.Request, size: int) -> tuple[int, int] | None:
    """The ``Range`` asked for as ``(start, end)``, end exclusive; None if unsatisfiable."""
    try:
        rng = request.http_range
    except ValueError:
        return None
    start, stop = rng.start, rng.stop
    if start is None:
        return 0, size
    if start < 0:  # the last -start bytes
        return (max(size + start, 0), size) if size else None
    if start >= size:
        return None
    return start, min(stop if stop is not None else size, size)


def _safe(name: str) -> str:
    return "".join(c if c.isprintable() and c not in '"\\' else "_" for c in name)
