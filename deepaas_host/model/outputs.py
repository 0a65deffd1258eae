"""What a model returns, turned into something that can cross a process boundary.

Runs in the worker: the response schema is checked and JSON is serialized there,
so the HTTP process only writes bytes.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import marshmallow

__all__ = [
    "JSON_MEDIA_TYPE",
    "Outcome",
    "OutputError",
    "render_output",
    "response_schema_of",
    "to_jsonable",
]

JSON_MEDIA_TYPE = "application/json"


class OutputError(Exception):
    """The model's output cannot be sent as declared (schema or type mismatch)."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


@dataclass(frozen=True)
class Outcome:
    """A rendered result. ``kind`` is ``json`` (``body`` holds UTF-8 JSON),
    ``bytes`` (``body`` holds the payload) or ``path`` (a file to stream)."""

    kind: str
    media_type: str
    body: bytes = b""
    path: str | None = None
    filename: str | None = None


def response_schema_of(obj: Any) -> marshmallow.Schema | None:
    """The plugin's response schema as a Schema instance, or None."""
    schema = getattr(obj, "schema", None)
    if schema is None:
        return None
    if isinstance(schema, type) and issubclass(schema, marshmallow.Schema):
        return schema()
    if isinstance(schema, marshmallow.Schema):
        return schema
    if isinstance(schema, Mapping):
        return marshmallow.Schema.from_dict(dict(schema), name="Response")()
    raise TypeError(
        f"schema is {type(schema).__name__}; expected a marshmallow Schema "
        "subclass or a dict of fields"
    )


def to_jsonable(value: Any) -> Any:
    """``json.dumps`` default: numpy scalars/arrays, sets, paths, dataclasses."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "_asdict"):
        return value._asdict()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, default=to_jsonable, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise OutputError(f"The model's output cannot be sent as JSON: {exc}") from exc


def _filename(media_type: str, name: str | None) -> str:
    if name:
        return Path(name).name
    ext = mimetypes.guess_extension(media_type) or ".bin"
    return f"prediction{ext}"


def _read_file_object(result: Any, media_type: str) -> Outcome:
    try:
        data = result.read()
    finally:
        close = getattr(result, "close", None)
        if callable(close):
            close()
    if isinstance(data, str):
        data = data.encode()
    name = getattr(result, "name", None)
    return Outcome(
        "bytes",
        media_type,
        body=bytes(data),
        filename=_filename(media_type, name if isinstance(name, str) else None),
    )


def render_output(
    result: Any,
    *,
    accept: str | None,
    schema: marshmallow.Schema | None,
    wrap: bool = True,
) -> Outcome:
    """Turn a model's return value into an :class:`Outcome`.

    Binary results (bytes, file objects, paths when a non-JSON type was chosen)
    are returned as-is; everything else becomes JSON. With a ``schema`` the
    result is the whole response and must validate; without one it is wrapped
    as ``{"status": "OK", "predictions": result}`` (when ``wrap``).
    """
    media_type = accept or JSON_MEDIA_TYPE
    is_json_type = media_type == JSON_MEDIA_TYPE or media_type.endswith("+json")
    if isinstance(result, bytes | bytearray | memoryview):
        return Outcome(
            "bytes",
            media_type,
            body=bytes(result),
            filename=_filename(media_type, None),
        )
    if hasattr(result, "read") and callable(result.read):
        return _read_file_object(result, media_type)
    if not is_json_type and isinstance(result, str | os.PathLike):
        path = Path(result)
        if path.is_file():
            return Outcome("path", media_type, path=str(path), filename=path.name)
    if schema is not None:
        errors = (
            schema.validate(result)
            if isinstance(result, Mapping)
            else {"_schema": [f"Expected an object, got {type(result).__name__}."]}
        )
        if errors:
            fields_ = ", ".join(sorted(str(k) for k in errors))
            raise OutputError(
                f"The model's output does not match its response schema ({fields_}).",
                details=errors,
            )
        return Outcome("json", JSON_MEDIA_TYPE, body=dumps(result))
    if wrap:
        return Outcome("json", JSON_MEDIA_TYPE, body=dumps({"status": "OK", "predictions": result}))
    return Outcome("json", JSON_MEDIA_TYPE, body=dumps(result))
