"""Argument specs: a plugin's dict of fields turned into a validating schema.

Accepts the DEEPaaS-era idioms as written (``missing=``, ``description=``,
``enum=``, ``fields.Field(type="file", location="form")``) and makes them
behave: an ``enum`` is enforced, a file argument only accepts an upload.

On top of what a plugin declares, the host refuses, in every transport (query
string, form, multipart, JSON) and at any depth (lists, tuples, dicts, nested
schemas), what no model can be handed safely:

* an integer argument sent as a number with a fraction (JSON ``1.9`` would be
  truncated to 1; ``2.0`` is taken as 2), or outside a signed 64-bit integer;
* NaN, infinities and numbers beyond what a double holds, in any numeric
  argument (``Float``, ``Decimal``, ``Number``);
* a number too large for its field's own type (a ``TimeDelta`` of ``1e999``
  days, a timestamp of 400 digits): 422 instead of an ``OverflowError``;
* an empty string for a required string argument, unless the plugin declared
  its own ``Length`` (or allows ``""`` among its choices).

Each rule is a validator or a field subclass the OpenAPI document reads, so the
document states the same bounds (``minimum``/``maximum``, ``minLength: 1``).
The plugin's own field objects are never changed: the spec works on copies.
"""

from __future__ import annotations

import copy
import decimal
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow
from marshmallow import fields, validate
from multidict import MultiDict
from webargs.multidictproxy import MultiDictProxy as ArgsProxy

from deepaas_host.model.v2 import UploadedFile

__all__ = [
    "FLOAT_LIMIT",
    "INT_MAX",
    "INT_MIN",
    "ArgumentSpec",
    "accept_choices",
    "build_argument_spec",
    "field_choices",
    "is_file_field",
    "merge_arguments",
]


#: Bounds of an integer argument (a signed 64-bit integer, what numeric libraries take).
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
#: Largest magnitude of any other numeric argument (the largest finite double).
FLOAT_LIMIT = sys.float_info.max

_OUT_OF_RANGE = "Number out of range."


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
    if isinstance(f, fields.Integer):
        _bound(validators, INT_MIN, INT_MAX)
    elif isinstance(f, fields.Float):
        # allow_nan=False refuses NaN and infinities; a finite double is in range.
        f.allow_nan = False
    elif isinstance(f, fields.Number):
        if isinstance(f, fields.Decimal):
            f.allow_nan = False
        validators.append(_Finite())
        _bound(validators, -FLOAT_LIMIT, FLOAT_LIMIT)
    if isinstance(f, fields.String) and f.required and _may_require_text(f, validators):
        validators.append(validate.Length(min=1, error="Must not be empty."))
    f.validators = validators
    _guard(f)
    inner = getattr(f, "inner", None)
    if isinstance(f, fields.List) and isinstance(inner, fields.Field):
        f.inner = _normalize(inner)
    if isinstance(f, fields.Tuple):
        f.tuple_fields = [_normalize(item) for item in f.tuple_fields]
    if isinstance(f, fields.Mapping):
        if isinstance(f.key_field, fields.Field):
            f.key_field = _normalize(f.key_field)
        if isinstance(f.value_field, fields.Field):
            f.value_field = _normalize(f.value_field)
    if isinstance(f, fields.Nested):
        f.nested = _normalize_nested(f.nested)
        f._schema = None  # the copy may carry the original's schema, built already
    return f


def _bound(validators: list[Any], low: float, high: float) -> None:
    """Add a ``Range`` for the side(s) the plugin's own ranges leave open (or wider)."""
    ranges = [v for v in validators if isinstance(v, validate.Range)]
    mins = [v.min for v in ranges if v.min is not None]
    maxs = [v.max for v in ranges if v.max is not None]
    need_low = not mins or max(mins) < low
    need_high = not maxs or min(maxs) > high
    if need_low or need_high:
        validators.append(
            validate.Range(min=low if need_low else None, max=high if need_high else None)
        )


def _may_require_text(f: fields.Field, validators: list[Any]) -> bool:
    """A required string refuses ``""`` unless its plugin said otherwise."""
    if any(isinstance(v, validate.Length) for v in validators):
        return False
    return "" not in (field_choices(f) or [])


def _normalize_nested(nested: Any) -> Any:
    """A nested schema (class or dict) with its fields normalized like the top level.

    A subclass keeps the plugin's hooks (``pre_load``, ``validates_schema``…);
    a schema given as an instance, a name or a callable is left as it is.
    """
    if isinstance(nested, Mapping):
        return {
            name: _normalize(f) if isinstance(f, fields.Field) else f for name, f in nested.items()
        }
    if isinstance(nested, type) and issubclass(nested, marshmallow.Schema):
        declared = {name: _normalize(f) for name, f in nested._declared_fields.items()}
        namespace: dict[str, Any] = {"__module__": nested.__module__, **declared}
        return type(nested.__name__, (nested,), namespace)
    return nested


class _Guarded(fields.Field):
    """Mixed into every argument field: a value too large for the field's own
    type (``timedelta``, a timestamp) is the caller's error, not an ``OverflowError``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except OverflowError as exc:
            raise marshmallow.ValidationError(_OUT_OF_RANGE) from exc


class _Integral(_Guarded):
    """Mixed into integer fields: marshmallow's ``int(1.9)`` would truncate silently."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, float | decimal.Decimal) and not _is_integral(value):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def _is_integral(value: float | decimal.Decimal) -> bool:
    if isinstance(value, decimal.Decimal):
        return value.is_finite() and value == value.to_integral_value()
    return math.isfinite(value) and value.is_integer()


def _guard(f: fields.Field) -> None:
    """Put the host's mixin under the field's own class (on the copy the spec owns).

    A subclass made on the spot keeps the plugin's class and behaviour (and how
    apispec documents it) and adds the refusals; the plugin changes nothing.
    """
    if isinstance(f, _Guarded) or not isinstance(f, _MAY_OVERFLOW):
        return
    mixin: type[_Guarded] = _Integral if isinstance(f, fields.Integer) else _Guarded
    cls = type(f)
    guarded = type(cls.__name__, (mixin, cls), {"__module__": cls.__module__})
    try:
        f.__class__ = guarded
    except TypeError:  # a field class with an unusual layout keeps its own behaviour
        pass


#: Field types whose conversion can raise ``OverflowError`` on a value that is too large.
_MAY_OVERFLOW = (fields.Number, fields.TimeDelta, fields.DateTime, fields.Date, fields.Time)


class _Finite(validate.Validator):
    error = "Must be a finite number."

    def __call__(self, value: Any) -> Any:
        finite = (
            value.is_finite()
            if isinstance(value, decimal.Decimal)
            else not isinstance(value, float) or math.isfinite(value)
        )
        if not finite:
            raise marshmallow.ValidationError(self.error)
        return value


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
