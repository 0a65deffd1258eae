"""Reading a request's arguments: query string, urlencoded or multipart form, JSON.

An empty value in a query string or form counts as not given (browsers send
every form field); JSON bodies are taken as they are.

The body is read through :class:`~deepaas_host.api.bodies.Body` (size limit,
idle timeout). Files in a multipart body are streamed to temporary files (never
held in memory) and handed to the model as
:class:`~deepaas_host.model.v2.UploadedFile`; the caller owns the returned
paths and deletes them whatever happens. Arguments that came in a large body
are decoded and validated in a thread; a 422 lists at most
:data:`MAX_MESSAGES` entries per level of its details.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qsl

import marshmallow
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict
from webargs.core import Parser

from deepaas_host.api.bodies import CHUNK, LARGE, Body, off_loop
from deepaas_host.api.jsonbody import decode_json
from deepaas_host.api.keys import SETTINGS
from deepaas_host.errors import ArgumentError, HostError, MalformedBody
from deepaas_host.model.arguments import ArgumentSpec, merge_arguments
from deepaas_host.model.v2 import UploadedFile

__all__ = ["MAX_MESSAGES", "ParsedArguments", "parse_arguments", "truncate_messages"]

#: Entries a 422 lists per level of its details; the rest are counted.
MAX_MESSAGES = 20


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
    #: The values came in a large body: encode the call for a worker off the loop too.
    large: bool = False

    def cleanup(self) -> None:
        for path in self.uploads:
            with contextlib.suppress(OSError):
                path.unlink()
        self.uploads.clear()


def truncate_messages(messages: Any) -> Any:
    """Validation messages with at most :data:`MAX_MESSAGES` entries per level.

    A list of five million bad items gives the first entries and
    ``"_more": 4999980``, not five million messages.
    """
    if isinstance(messages, dict):
        first = itertools.islice(messages.items(), MAX_MESSAGES)
        kept = {k: truncate_messages(v) for k, v in first}
        if len(messages) > MAX_MESSAGES:
            kept["_more"] = len(messages) - MAX_MESSAGES
        return kept
    if isinstance(messages, list):
        shown = [truncate_messages(m) for m in messages[:MAX_MESSAGES]]
        if len(messages) > MAX_MESSAGES:
            shown.append(f"... and {len(messages) - MAX_MESSAGES} more")
        return shown
    return messages


class _Parser(Parser[web.Request]):
    """webargs parser reading the merged arguments prepared for this request.

    The synchronous parser: it runs in a thread for a large body.
    """

    __location_map__ = {**Parser.__location_map__, "merged": "load_merged"}

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
        if isinstance(messages, dict) and len(messages) == 1 and "merged" in messages:
            messages = messages["merged"]  # webargs keys errors by location
        if isinstance(messages, dict):
            names = sorted(str(k) for k in messages)
            shown = ", ".join(names[:MAX_MESSAGES])
            if len(names) > MAX_MESSAGES:
                shown += f" and {len(names) - MAX_MESSAGES} more"
            raise ArgumentError(f"Invalid arguments: {shown}.", details=truncate_messages(messages))
        raise ArgumentError("Invalid arguments.", details={"_schema": truncate_messages(messages)})


def _validate(spec: ArgumentSpec, request: web.Request) -> dict[str, Any]:
    try:
        values: dict[str, Any] = _Parser().parse(
            spec.schema, request, location="merged", unknown=marshmallow.RAISE
        )
    except OverflowError as exc:  # a plugin's own field type converting a huge number
        raise ArgumentError(
            "Invalid arguments: a number is out of range.", details={"_schema": [str(exc)]}
        ) from exc
    return values


def _upload_path(upload_dir: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="upload-", dir=upload_dir)
    os.close(fd)
    return Path(name)


async def _read_multipart(
    request: web.Request,
    body: Body,
    raw: MultiDict[Any],
    parsed: ParsedArguments,
    upload_dir: str,
) -> int:
    """Read every part; returns the bytes of the fields that are not files."""
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, RuntimeError) as exc:
        raise MalformedBody(f"Malformed multipart body: {exc}") from exc
    inline = 0
    try:
        while True:
            part = await body.step(reader.next())
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
                    while chunk := await body.step(part.read_chunk(CHUNK)):
                        fh.write(chunk)
                if not part.filename and path.stat().st_size == 0:
                    # A browser's empty file input: no file was chosen.
                    path.unlink()
                    parsed.uploads.remove(path)
                    continue
                ctype = part.headers.get("Content-Type", "application/octet-stream")
                raw.add(name, UploadedFile(name, str(path), ctype, part.filename))
            else:
                data = bytearray()
                while chunk := await body.step(part.read_chunk(CHUNK)):
                    data += chunk
                inline += len(data)
                charset = part.get_charset(default="utf-8")
                try:
                    raw.add(name, bytes(part.decode(data)).decode(charset))
                except (UnicodeDecodeError, LookupError) as exc:
                    raise MalformedBody(f"Form field {name!r} is not valid {charset}.") from exc
    except HostError:
        raise
    except (ValueError, AssertionError, RuntimeError, LookupError, HttpProcessingError) as exc:
        # HttpProcessingError: aiohttp rejects a part's header block (InvalidHeader)
        raise MalformedBody(f"Malformed multipart body: {exc}") from exc
    return inline


def _decode_form(data: bytes, charset: str | None) -> list[tuple[str, str]]:
    charset = charset or "utf-8"
    try:
        return parse_qsl(data.rstrip().decode(charset), keep_blank_values=True, encoding=charset)
    except (ValueError, LookupError) as exc:  # LookupError: unknown charset
        raise MalformedBody(f"Malformed form body: {exc}") from exc


async def _read_body(
    request: web.Request,
    raw: MultiDict[Any],
    parsed: ParsedArguments,
    upload_dir: str,
    limit: int,
) -> tuple[dict[str, Any], int]:
    """The JSON arguments (form fields go into ``raw``) and the bytes they came in."""
    if not request.body_exists:
        return {}, 0
    idle = request.app[SETTINGS].body_timeout
    async with Body(request, limit=limit, idle=idle) as body:
        ctype = request.content_type
        if ctype == "multipart/form-data":
            return {}, await _read_multipart(request, body, raw, parsed, upload_dir)
        data = await body.read()
    large = len(data) > LARGE
    if ctype == "application/x-www-form-urlencoded":
        raw.extend(await off_loop(large, _decode_form, data, request.charset))
        return {}, len(data)
    if ctype == "application/json" or ctype.endswith("+json"):
        if not data or data.isspace():
            return {}, 0
        value = await off_loop(large, decode_json, data)
        if not isinstance(value, dict):
            raise MalformedBody("The JSON body must be an object of arguments.")
        return value, len(data)
    if not data:
        return {}, 0
    raise UnsupportedMediaType(
        f"Unsupported Content-Type {ctype!r}: send multipart/form-data, "
        "application/x-www-form-urlencoded, application/json or a query string."
    )


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

    ``limit`` bounds the body; it must arrive within the host's
    ``body_timeout``. ``defaults`` is given the names the client sent and
    returns values for arguments it did not send (the negotiated ``accept``,
    say); they are validated like the rest.
    """
    parsed = ParsedArguments()
    raw: MultiDict[Any] = MultiDict(request.query)
    try:
        json_args, size = await _read_body(request, raw, parsed, upload_dir, limit)
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
        parsed.large = size > LARGE
        parsed.values = await off_loop(parsed.large, _validate, spec, request)
        parsed.explicit = explicit
    except BaseException:
        parsed.cleanup()
        raise
    return parsed
