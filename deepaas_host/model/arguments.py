"""Argument specs: a plugin's dict of fields turned into a validating schema.

Accepts the DEEPaaS-era idioms as written (``missing=``, ``description=``,
``enum=``, ``fields.Field(type="file", location="form")``) and makes them
behave: an ``enum`` is enforced, a file argument only accepts an upload.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow
from marshmallow import fields, validate
from multidict import MultiDict
from webargs.multidictproxy import MultiDictProxy as ArgsProxy

from deepaas_host.model.v2 import UploadedFile

__all__ = [
    "ArgumentSpec",
    "accept_choices",
    "build_argument_spec",
    "field_choices",
    "is_file_field",
    "merge_arguments",
]


def is_file_field(f: fields.Field) -> bool:
    """True for an argument that takes an uploaded file."""
    return f.metadata.get("type") == "file"


def field_choices(f: fields.Field) -> list[Any] | None:
    """The allowed values of a field, from ``OneOf`` or DEEPaaS's ``enum=``."""
    for validator in _validators(f):
        if isinstance(validator, validate.OneOf):
            return list(validator.choices)
    enum = f.metadata.get("enum")
    return list(enum) if enum is not None else None


def accept_choices(args: Mapping[str, fields.Field]) -> list[str] | None:
    """Media types a model can answer with, from its ``accept`` argument."""
    f = args.get("accept")
    if f is None:
        return None
    choices = field_choices(f)
    return [str(c) for c in choices] if choices else None


def _validators(f: fields.Field) -> list[Any]:
    return list(getattr(f, "validators", []) or [])


def _is_upload(value: Any) -> bool:
    return isinstance(value, UploadedFile)


def _normalize(original: fields.Field) -> fields.Field:
    f = copy.deepcopy(original)
    validators = _validators(f)
    enum = f.metadata.get("enum")
    if enum is not None and not any(isinstance(v, validate.OneOf) for v in validators):
        validators.append(validate.OneOf(list(enum)))
    if is_file_field(f):
        validators.append(_FileValidator())
    f.validators = validators
    inner = getattr(f, "inner", None)
    if isinstance(f, fields.List) and isinstance(inner, fields.Field):
        f.inner = _normalize(inner)
    return f


class _FileValidator(validate.Validator):
    error = "Must be a file upload (multipart/form-data with a filename)."

    def __call__(self, value: Any) -> Any:
        if value is not None and not _is_upload(value):
            raise marshmallow.ValidationError(self.error)
        return value


@dataclass(frozen=True)
class ArgumentSpec:
    """The arguments of one route (predict or train) of one model."""

    fields: dict[str, fields.Field]
    schema: marshmallow.Schema
    file_fields: frozenset[str]
    accept: list[str] | None = None
    accept_default: str | None = None
    json_fields: frozenset[str] = field(default_factory=frozenset)

    def load(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and deserialize; raises marshmallow.ValidationError."""
        result: dict[str, Any] = self.schema.load(data)
        return result


def build_argument_spec(model_name: str, kind: str, raw: Mapping[str, Any] | None) -> ArgumentSpec:
    """Normalize a plugin's ``get_*_args()`` result into an :class:`ArgumentSpec`."""
    raw = dict(raw or {})
    normalized: dict[str, fields.Field] = {}
    for name, f in raw.items():
        if not isinstance(f, fields.Field):
            raise TypeError(
                f"argument {name!r} of {model_name} {kind} is {type(f).__name__}, "
                "not a marshmallow/webargs field"
            )
        normalized[name] = _normalize(f)
    schema_cls = marshmallow.Schema.from_dict(
        normalized, name=f"{_camel(model_name)}{kind.capitalize()}Args"
    )
    schema = schema_cls(unknown=marshmallow.RAISE)
    accept = accept_choices(normalized)
    accept_default = None
    if accept and "accept" in normalized:
        default = normalized["accept"].load_default
        if isinstance(default, str) and default in accept:
            accept_default = default
    files = frozenset(n for n, f in normalized.items() if is_file_field(f))
    structured = frozenset(
        n for n, f in normalized.items() if isinstance(f, fields.Nested | fields.Dict)
    )
    return ArgumentSpec(normalized, schema, files, accept, accept_default, structured)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def merge_arguments(
    raw: MultiDict[Any], extra: Mapping[str, Any], schema: marshmallow.Schema
) -> dict[str, Any]:
    """One dict from repeated form/query keys (lists where the schema wants one)
    and already-structured values (a JSON body)."""
    proxy = ArgsProxy(raw, schema)
    merged = {key: proxy[key] for key in dict.fromkeys(raw.keys())}
    merged.update(extra)
    return merged
