"""Reading a request's arguments: query string, urlencoded or multipart form, JSON.

An empty value in a query string or form counts as not given (browsers send
every form field); JSON bodies are taken as they are.

Files in a multipart body are streamed to temporary files (never held in memory)
and handed to the model as :class:`~deepaas_host.model.v2.UploadedFile`. The
caller owns the returned paths and deletes them whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import marshmallow
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict
from webargs.aiohttpparser import AIOHTTPParser

from deepaas_host.errors import ArgumentError, HostError, MalformedBody, PayloadTooLarge
from deepaas_host.model.arguments import ArgumentSpec, merge_arguments
from deepaas_host.model.v2 import UploadedFile

__all__ = ["ParsedArguments", "parse_arguments"]

_CHUNK = 1 << 16
_TEXT_LIMIT = 1 << 20


class UnsupportedMediaType(HostError):
    status = 415


@dataclass
class ParsedArguments:
    """Validated arguments, plus the temporary files they point to."""

    values: dict[str, Any] = field(default_factory=dict)
    uploads: list[Path] = field(default_factory=list)
    explicit: frozenset[str] = frozenset()
    #: Host arguments taken out before the model's validation (``version``).
    reserved: dict[str, str] = field(default_factory=dict)

    def cleanup(self) -> None:
        for path in self.uploads:
            with contextlib.suppress(OSError):
                path.unlink()
        self.uploads.clear()


class _Parser(AIOHTTPParser):
    """webargs parser reading the merged arguments prepared for this request."""

    __location_map__ = {**AIOHTTPParser.__location_map__, "merged": "load_merged"}

    def load_merged(self, req: web.Request, schema: marshmallow.Schema) -> Any:
        return merge_arguments(req["deepaas.raw_args"], req["deepaas.json_args"], schema)

    def handle_error(
        self,
        error: marshmallow.ValidationError,
        req: web.Request,
        schema: marshmallow.Schema,
        *,
        error_status_code: int | None,
        error_headers: Any,
    ) -> NoReturn:
        messages = error.normalized_messages()  # type: ignore[no-untyped-call]
        if isinstance(messages, dict) and set(messages) == {"merged"}:
            messages = messages["merged"]  # webargs keys errors by location
        if isinstance(messages, dict):
            names = ", ".join(sorted(str(k) for k in messages))
            raise ArgumentError(f"Invalid arguments: {names}.", details=messages)
        raise ArgumentError("Invalid arguments.", details={"_schema": messages})


def _upload_path(upload_dir: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="upload-", dir=upload_dir)
    os.close(fd)
    return Path(name)


async def _read_multipart(
    request: web.Request,
    raw: MultiDict[Any],
    parsed: ParsedArguments,
    upload_dir: str,
    limit: int,
) -> None:
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, RuntimeError) as exc:
        raise MalformedBody(f"Malformed multipart body: {exc}") from exc
    total = 0
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise MalformedBody("Nested multipart bodies are not supported.")
            name = part.name
            if not name:
                raise MalformedBody("A multipart part has no name in Content-Disposition.")
            if part.filename is not None:
                path = _upload_path(upload_dir)
                parsed.uploads.append(path)
                with path.open("wb") as fh:
                    while chunk := await part.read_chunk(_CHUNK):
                        total += len(chunk)
                        if total > limit:
                            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
                        fh.write(chunk)
                if not part.filename and path.stat().st_size == 0:
                    # A browser's empty file input: no file was chosen.
                    path.unlink()
                    parsed.uploads.remove(path)
                    continue
                ctype = part.headers.get("Content-Type", "application/octet-stream")
                raw.add(name, UploadedFile(name, str(path), ctype, part.filename))
            else:
                data = await part.read(decode=True)
                total += len(data)
                if total > limit:
                    raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
                charset = part.get_charset(default="utf-8")
                try:
                    raw.add(name, data.decode(charset))
                except (UnicodeDecodeError, LookupError) as exc:
                    raise MalformedBody(f"Form field {name!r} is not valid {charset}.") from exc
    except HostError:
        raise
    except (ValueError, AssertionError, RuntimeError, LookupError, HttpProcessingError) as exc:
        # HttpProcessingError: aiohttp rejects a part's header block (InvalidHeader)
        raise MalformedBody(f"Malformed multipart body: {exc}") from exc


async def _read_body(
    request: web.Request,
    raw: MultiDict[Any],
    parsed: ParsedArguments,
    upload_dir: str,
    limit: int,
) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"The request body ({request.content_length} bytes) exceeds {limit} bytes."
        )
    if not request.body_exists:
        return {}
    ctype = request.content_type
    if ctype == "multipart/form-data":
        await _read_multipart(request, raw, parsed, upload_dir, limit)
        return {}
    if ctype == "application/x-www-form-urlencoded":
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge as exc:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.") from exc
        except (ValueError, LookupError) as exc:  # LookupError: unknown charset
            raise MalformedBody(f"Malformed form body: {exc}") from exc
        raw.extend(form)
        return {}
    body = await _read_limited(request, limit)
    if ctype == "application/json" or ctype.endswith("+json"):
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedBody(f"The body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedBody("The JSON body must be an object of arguments.")
        return data
    if not body:
        return {}
    raise UnsupportedMediaType(
        f"Unsupported Content-Type {ctype!r}: send multipart/form-data, "
        "application/x-www-form-urlencoded, application/json or a query string."
    )


async def _read_limited(request: web.Request, limit: int) -> bytes:
    data = bytearray()
    while chunk := await request.content.read(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    return bytes(data)


async def parse_arguments(
    request: web.Request,
    spec: ArgumentSpec,
    *,
    upload_dir: str,
    limit: int,
    defaults: Callable[[frozenset[str]], dict[str, Any]] | None = None,
    reserved: frozenset[str] = frozenset(),
) -> ParsedArguments:
    """Read and validate the arguments of ``request`` against ``spec``.

    ``defaults`` is given the names the client sent and returns values for
    arguments it did not send (the negotiated ``accept``, say); they are
    validated like the rest.
    """
    parsed = ParsedArguments()
    raw: MultiDict[Any] = MultiDict(request.query)
    try:
        json_args = await _read_body(request, raw, parsed, upload_dir, limit)
        # In a query string or form an empty value means "not given", as HTML
        # forms (and Swagger UI) send every field, filled in or not.
        raw = MultiDict((k, v) for k, v in raw.items() if v != "")
        for key in reserved:
            value = raw.popone(key, None)
            value = json_args.pop(key, value)
            if value is not None:
                parsed.reserved[key] = str(value)
        explicit = frozenset(raw.keys()) | frozenset(json_args)
        for key, value in (defaults(explicit) if defaults else {}).items():
            if key not in explicit and key in spec.fields:
                raw[key] = value
        request["deepaas.raw_args"] = raw
        request["deepaas.json_args"] = json_args
        parsed.values = await _Parser().async_parse(
            spec.schema, request, location="merged", unknown=marshmallow.RAISE
        )
        parsed.explicit = explicit
    except BaseException:
        parsed.cleanup()
        raise
    return parsed
