"""``/v2/online/``: online models — create, predict, learn, label, metrics, streams.

Bodies are JSON objects of at most 1 MiB (and ``max_body_size``); the bulk route
takes newline-delimited JSON of up to ``max_body_size`` and answers one line per
input line, in order; an answer over 1 MiB waits in a temporary file, not in
memory. Event streams send each event encoded once, from the model's ring (see
:mod:`deepaas_host.online.feed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from marshmallow import fields, validate

from deepaas_host.api.bodies import LARGE, Body, off_loop
from deepaas_host.api.code_guard import require_code_execution
from deepaas_host.api.jsonbody import decode_json
from deepaas_host.api.keys import ONLINE, SETTINGS, UPLOAD_DIR
from deepaas_host.api.links import href
from deepaas_host.api.parsing import parse_arguments
from deepaas_host.api.presence import client_gone
from deepaas_host.api.spool import Spool
from deepaas_host.errors import (
    ArgumentError,
    ClientGone,
    HostError,
    PayloadTooLarge,
)
from deepaas_host.model.arguments import ArgumentSpec, build_argument_spec
from deepaas_host.model.online import FLAVORS
from deepaas_host.model.v2 import File, UploadedFile
from deepaas_host.online.features import non_finite
from deepaas_host.online.feed import sse_frame
from deepaas_host.online.service import OnlineService
from deepaas_host.settings import Settings

__all__ = ["create_spec", "online_routes", "parse_op"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Largest body of one operation and largest line of a bulk body (within max_body_size).
_OP_LIMIT = 1 << 20
_BULK_READ = 1 << 18
_BULK_CHUNK = 1000
_BULK_WINDOW = 3


def create_spec() -> ArgumentSpec:
    return build_argument_spec(
        "online",
        "create",
        {
            "name": fields.Str(
                load_default=None,
                metadata={"description": "Name of the new model (two friendly words if absent)"},
            ),
            "plugin": fields.Str(
                load_default=None,
                metadata={"description": "Online plugin whose pipeline the model starts from"},
            ),
            "file": File(
                load_default=None,
                metadata={"description": "A pickled river model (instead of a plugin)"},
            ),
            "flavor": fields.Str(
                load_default=None,
                validate=validate.OneOf(FLAVORS),
                metadata={"description": "Required with a file; defaults to the plugin's"},
            ),
            "description": fields.Str(load_default="", metadata={"description": "Free text"}),
        },
    )


# request bodies ---------------------------------------------------------------------


def _op_limit(settings: Settings) -> int:
    return min(_OP_LIMIT, settings.max_body_size)


async def _json_object(request: web.Request) -> tuple[dict[str, Any], int]:
    """The body's JSON object and its size in bytes."""
    settings = request.app[SETTINGS]
    async with Body(request, limit=_op_limit(settings), idle=settings.body_timeout) as reader:
        data = await reader.read()
    body = await off_loop(len(data) > LARGE, decode_json, data or b"{}")
    if not isinstance(body, dict):
        raise ArgumentError(
            "The body must be a JSON object.", details={"_body": ["Expected an object."]}
        )
    return body, len(data)


def _truth_problem(flavor: str, y: Any) -> str | None:
    if y is None:
        if flavor in ("regression", "binary", "multiclass"):
            return f"Required: a {flavor} model learns from a ground truth."
        return None
    if flavor == "regression":
        if isinstance(y, bool) or not isinstance(y, int | float) or not math.isfinite(y):
            return "A regression ground truth is a finite number."
    elif flavor in ("binary", "multiclass"):
        if not isinstance(y, str | int | bool) or isinstance(y, float):
            return "A class label is a string, an integer or a boolean."
    elif flavor == "clustering":
        return "A clustering model learns without a ground truth; leave it out."
    elif flavor == "anomaly" and (not isinstance(y, bool | int) or y not in (0, 1)):
        return "An anomaly ground truth is true/false (or 1/0)."
    elif (where := non_finite(y)) is not None:
        inside = f" (at {where})" if where else ""
        return f"Not a finite number{inside}: NaN and infinities are refused."
    return None


def _features_problem(features: Any) -> str | None:
    where = non_finite(features)
    if where is None:
        return None
    return f"Feature {where!r} is not a finite number: NaN and infinities are refused."


def parse_op(kind: str, flavor: str, body: Mapping[str, Any]) -> tuple[Any, ...]:
    """Check one operation's fields and build the op the service takes."""
    errors: dict[str, list[str]] = {}
    allowed = {
        "predict": {"features", "id", "keep"},
        "learn": {"features", "ground_truth", "id"},
        "label": {"id", "ground_truth"},
    }[kind]
    for key in body:
        if key not in allowed:
            errors[key] = [f"Unknown field; {kind} takes {', '.join(sorted(allowed))}."]
    ident = body.get("id")
    if ident is not None and (not isinstance(ident, str | int) or isinstance(ident, bool)):
        errors["id"] = ["An identifier is a string."]
    elif ident is not None:
        ident = str(ident)
        if not 0 < len(ident) <= 256:
            errors["id"] = ["An identifier has 1 to 256 characters."]
    features = body.get("features")
    if features is not None and not isinstance(features, dict | str):
        errors["features"] = ["Features are a JSON object (or a text, for text models)."]
    elif isinstance(features, dict) and (problem := _features_problem(features)):
        errors["features"] = [problem]
    y = body.get("ground_truth")
    if kind == "predict":
        if features is None:
            errors.setdefault("features", ["Required."])
        keep = body.get("keep", True)
        if not isinstance(keep, bool):
            errors["keep"] = ["Not a boolean."]
        op: tuple[Any, ...] = ("predict", features, ident, keep)
    elif kind == "learn":
        if features is None and ident is None:
            errors.setdefault("features", ["Required unless an id of a kept prediction is given."])
        problem = _truth_problem(flavor, y)
        if problem:
            errors["ground_truth"] = [problem]
        op = ("learn", features, y, ident)
    else:
        if ident is None:
            errors.setdefault("id", ["Required: the id the prediction was answered with."])
        if flavor == "clustering":
            errors["ground_truth"] = ["A clustering model takes no labels."]
        elif y is None:
            errors["ground_truth"] = ["Required."]
        else:
            problem = _truth_problem(flavor, y)
            if problem:
                errors["ground_truth"] = [problem]
        op = ("label", ident, y)
    if errors:
        raise ArgumentError(f"Invalid {kind} request.", details=errors)
    return op


# documents --------------------------------------------------------------------------


def _document(request: web.Request, info: Mapping[str, Any]) -> dict[str, Any]:
    base = f"/v2/online/{info['name']}"
    links = {
        "self": href(request, base),
        "predict": href(request, base + "/predict/"),
        "learn": href(request, base + "/learn/"),
        "label": href(request, base + "/label/"),
        "bulk": href(request, base + "/bulk/"),
        "metrics": href(request, base + "/metrics"),
        "stats": href(request, base + "/stats"),
        "stream_metrics": href(request, base + "/stream/metrics"),
        "stream_events": href(request, base + "/stream/events"),
        "download": href(request, base + "/download"),
    }
    return {**info, "links": links}


def _interval(request: web.Request) -> float:
    raw = request.query.get("interval", "1")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.1 <= value <= 3600:
        raise ArgumentError(
            "Invalid interval.", details={"interval": ["Seconds between 0.1 and 3600."]}
        )
    return value


def online_routes(prefix: str) -> list[web.RouteDef]:
    base = f"{prefix}/v2/online"
    spec = create_spec()

    def service(request: web.Request) -> OnlineService:
        return request.app[ONLINE]

    async def list_models(request: web.Request) -> web.Response:
        svc = service(request)
        models = [_document(request, i) for i in await svc.list_models()]
        plugins = [
            {"name": name, **p.model.get_metadata()} for name, p in sorted(svc.plugins.items())
        ]
        body = {
            "models": models,
            "plugins": plugins,
            "flavors": FLAVORS,
            "damaged": svc.damaged_models(),
        }
        return web.json_response(body)

    async def create(request: web.Request) -> web.Response:
        parsed = await parse_arguments(
            request,
            spec,
            upload_dir=request.app[UPLOAD_DIR],
            limit=request.app[SETTINGS].max_body_size,
        )
        try:
            values = parsed.values
            upload: UploadedFile | None = values["file"]
            if (upload is None) == (values["plugin"] is None):
                raise ArgumentError(
                    "Give either a plugin or a file.",
                    details={"plugin": ["Send exactly one of plugin and file."]},
                )
            if upload is not None:
                require_code_execution(request)
                if values["flavor"] is None:
                    raise ArgumentError(
                        "A pickled model needs its flavor.",
                        details={"flavor": [f"Required with a file: one of {', '.join(FLAVORS)}."]},
                    )
                info = await service(request).create(
                    values["name"],
                    flavor=values["flavor"],
                    file=Path(upload.filename),
                    filename=upload.original_filename,
                    description=values["description"],
                )
            else:
                info = await service(request).create(
                    values["name"],
                    plugin=values["plugin"],
                    flavor=values["flavor"],
                    description=values["description"],
                )
        finally:
            parsed.cleanup()
        body = _document(request, info)
        return web.json_response(body, status=201, headers={"Location": body["links"]["self"]})

    async def get_model(request: web.Request) -> web.Response:
        info = await service(request).info(request.match_info["name"])
        return web.json_response(_document(request, info))

    async def delete_model(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await service(request).delete(name)
        return web.json_response({"deleted": name})

    async def repair(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        report = await service(request).repair(name)
        info = await service(request).info(name)
        return web.json_response({**report, "links": _document(request, info)["links"]})

    async def download(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = Path(request.app[UPLOAD_DIR]) / f"download-{uuid.uuid4().hex}.pkl"
        try:
            await service(request).download(name, path)
            fh = await asyncio.to_thread(path.open, "rb")
        finally:
            path.unlink(missing_ok=True)  # the open handle keeps the data readable
        with fh:
            digest = await asyncio.to_thread(_sha256, fh)
            size = os.fstat(fh.fileno()).st_size
            response = web.StreamResponse(
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Disposition": f'attachment; filename="{name}.pkl"',
                    "X-Checksum-SHA256": digest,
                }
            )
            response.content_length = size
            await response.prepare(request)
            while chunk := await asyncio.to_thread(fh.read, 1 << 20):
                await response.write(chunk)
            await response.write_eof()
        return response

    def operation(kind: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            svc = service(request)
            flavor = svc.meta(name)["flavor"]
            body, size = await _json_object(request)
            op = parse_op(kind, flavor, body)
            result = await svc.apply_one(name, op, size=size, gone=client_gone(request))
            return web.json_response({"model": name, **result})

        return handler

    async def bulk(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        svc = service(request)
        flavor = svc.meta(name)["flavor"]
        kind = request.query.get("op", "learn")
        if kind not in ("learn", "predict", "label"):
            raise ArgumentError("Invalid op.", details={"op": ["One of learn, predict, label."]})
        settings = request.app[SETTINGS]
        line_limit = _op_limit(settings)
        gone = client_gone(request)
        # The answer is sent once the whole body is read: HTTP clients (curl,
        # requests) send all of a body before reading, so answering early would
        # fill both socket buffers and stall. Meanwhile it waits in a spool.
        window: deque[tuple[list[Any], asyncio.Future[list[Any]]]] = deque()
        answers = Spool(request.app[UPLOAD_DIR])
        line_no = 0
        processed = 0

        async def drain(keep: int) -> None:
            while len(window) > keep:
                lines, pending = window.popleft()
                results = iter(await pending)
                out = bytearray()
                for entry in lines:
                    result = entry if isinstance(entry, HostError) else next(results)
                    if isinstance(result, HostError):
                        out += _bulk_error(result)
                    else:
                        out += json.dumps(result, default=str).encode() + b"\n"
                await answers.write(bytes(out))

        async def submit(lines: list[Any], size: int) -> None:
            nonlocal processed
            ops = [entry for entry in lines if not isinstance(entry, HostError)]
            window.append((lines, svc.submit(name, ops, size=size, gone=gone)))
            processed += len(lines)
            await drain(_BULK_WINDOW - 1)

        try:
            async with Body(
                request, limit=settings.max_body_size, idle=settings.body_timeout
            ) as body:
                chunk: list[Any] = []
                chunk_size = 0
                buffer = b""
                while True:
                    data = await body.read_chunk(_BULK_READ)
                    if data:
                        buffer += data
                        *complete, buffer = buffer.split(b"\n")
                        if len(buffer) > line_limit:
                            raise PayloadTooLarge(
                                f"A line of the body exceeds {line_limit} bytes.",
                                details={"line_limit": line_limit},
                            )
                    else:
                        complete, buffer = [buffer], b""
                    size = sum(map(len, complete))
                    entries = await off_loop(
                        size > LARGE, _bulk_ops, kind, flavor, complete, line_no
                    )
                    line_no += len(entries)
                    for entry, entry_size in entries:
                        chunk.append(entry)
                        chunk_size += entry_size
                        if len(chunk) >= _BULK_CHUNK:
                            await submit(chunk, chunk_size)
                            chunk, chunk_size = [], 0
                    if not data:
                        break
            if chunk:
                await submit(chunk, chunk_size)
            await drain(0)
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            response.content_length = answers.size
            await response.prepare(request)
            await answers.send(response)
            await response.write_eof()
            return response
        except HostError as exc:
            # What was sent is applied whatever happens: wait for it, then say so.
            await asyncio.gather(*(pending for _, pending in window), return_exceptions=True)
            if not isinstance(exc, ClientGone):
                exc.message += f" The first {processed} lines were processed."
                details = exc.details if isinstance(exc.details, dict) else {}
                exc.details = {**details, "lines_processed": processed}
            raise
        finally:
            answers.close()
            for _, pending in window:  # left behind by a cancellation: end quietly
                pending.add_done_callback(_retrieve)

    async def metrics(request: web.Request) -> web.Response:
        return web.json_response(await service(request).metrics(request.match_info["name"]))

    async def stats(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        svc = service(request)
        info = await svc.info(name)
        body = {
            "model": name,
            **svc.op_stats(name),
            "totals": {
                "learned": info["learned"],
                "labelled": info["labelled"],
                "predictions_since_start": info["predictions_since_start"],
                "kept_predictions": info["kept"],
                "seq": info["seq"],
            },
        }
        return web.json_response(body)

    def _stream_response() -> web.StreamResponse:
        return web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )

    async def _open_stream(request: web.Request, response: web.StreamResponse) -> None:
        await response.prepare(request)
        await response.write(b": connected\n\n")

    async def stream_events(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        svc = service(request)
        svc.meta(name)
        sub = svc.events.subscribe(name)
        response = _stream_response()
        try:
            await _open_stream(request, response)
            while not sub.closed and name in svc.models and not svc.stopping.is_set():
                if not await sub.wait():
                    await response.write(b": keep-alive\n\n")
                    continue
                # Everything since the follower's cursor, in one write.
                frames = sub.take()
                if frames:
                    await response.write(frames)
        except (ConnectionError, asyncio.CancelledError):  # the follower left
            pass
        finally:
            sub.close()
        return response

    async def stream_metrics(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        svc = service(request)
        svc.meta(name)
        interval = _interval(request)
        last = None
        response = _stream_response()
        try:
            await _open_stream(request, response)
            while not svc.stopping.is_set():
                try:
                    current = await svc.metrics(name)
                except HostError as exc:
                    await response.write(sse_frame("error", exc.to_dict()))
                    break
                if current != last:
                    await response.write(sse_frame("metrics", current, current.get("learned")))
                    last = current
                else:
                    await response.write(b": keep-alive\n\n")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(svc.stopping.wait(), interval)
        except (ConnectionError, asyncio.CancelledError):  # the follower left
            pass
        return response

    model = f"{base}/{{name}}"
    routes = [
        web.get(f"{base}/", list_models, allow_head=False),
        web.post(f"{base}/", create),
        web.get(model, get_model, allow_head=False),
        web.delete(model, delete_model),
        web.post(f"{model}/repair", repair),
        web.get(f"{model}/download", download, allow_head=False),
        web.get(f"{model}/metrics", metrics, allow_head=False),
        web.get(f"{model}/stats", stats, allow_head=False),
        web.get(f"{model}/stream/metrics", stream_metrics, allow_head=False),
        web.get(f"{model}/stream/events", stream_events, allow_head=False),
    ]
    for kind in ("predict", "learn", "label"):
        handler = operation(kind)
        routes.append(web.post(f"{model}/{kind}/", handler))
        routes.append(web.post(f"{model}/{kind}", handler))
    routes.append(web.post(f"{model}/bulk/", bulk))
    routes.append(web.post(f"{model}/bulk", bulk))
    return routes


def _bulk_ops(kind: str, flavor: str, lines: list[bytes], line_no: int) -> list[tuple[Any, int]]:
    """Each non-blank line's op (or error) and size; ``line_no`` lines came before."""
    entries = []
    for raw in lines:
        if raw and not raw.isspace():
            line_no += 1
            entries.append((_bulk_op(kind, flavor, raw, line_no), len(raw)))
    return entries


def _bulk_op(kind: str, flavor: str, raw: bytes, line_no: int) -> Any:
    try:
        body = decode_json(raw, f"Line {line_no}")
    except HostError as exc:
        return _line_error(exc, line_no)
    if not isinstance(body, dict):
        return _line_error(ArgumentError(f"Line {line_no} is not a JSON object."), line_no)
    try:
        return parse_op(kind, flavor, body)
    except HostError as exc:
        return _line_error(exc, line_no)


def _line_error(exc: HostError, line_no: int) -> HostError:
    exc.details = {"line": line_no, **({"fields": exc.details} if exc.details else {})}
    return exc


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _bulk_error(exc: HostError) -> bytes:
    return json.dumps({"error": exc.to_dict()}).encode() + b"\n"


def _sha256(fh: Any) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(1 << 20):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()
