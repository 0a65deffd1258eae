"""The OpenAPI 3 document, built from the served models with apispec.

Only routes that exist are described, and every response shape here is the
one the handlers send (the test suite holds real responses against it).
"""

from __future__ import annotations

import decimal
import json
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from deepaas_host import __version__
from deepaas_host.api.auth import document_security
from deepaas_host.jobs.states import JobStatus
from deepaas_host.model.arguments import ArgumentSpec, is_file_field
from deepaas_host.model.discovery import LoadedPlugin, quiet_legacy_warnings
from deepaas_host.model.online import FLAVORS
from deepaas_host.model.outputs import JSON_MEDIA_TYPE
from deepaas_host.model.wrapper import ModelWrapper
from deepaas_host.settings import Settings
from deepaas_host.store.versions import VERSION_NAME, VersionSource

__all__ = ["build_openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "400": "Malformed body (broken multipart or JSON, or JSON nested deeper than 64 levels)",
    "404": "No such model or job",
    "406": "None of the accepted media types can be produced",
    "408": "The request body stalled for longer than the body timeout",
    "413": "The request body exceeds the host's max_body_size",
    "415": "Unsupported Content-Type",
    "422": "Invalid arguments; `details` names each field",
    "500": "The model raised, or its output broke its response schema",
    "502": "The worker process died during the call",
    "503": "Queue full or host shutting down (see Retry-After)",
}
#: The 422 of a route that runs the model: the model may refuse its input too.
_MODEL_422 = {
    "422": (
        "Invalid arguments, or the model refused its input (the plugin raised "
        "`InvalidInput`, a marshmallow `ValidationError`, or the values sent overflow "
        "the model); `details` names each argument (`_input`: the input as a whole)"
    )
}


def _error_responses(
    codes: Iterable[str], descriptions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    descriptions = descriptions or {}
    return {
        code: {
            "description": descriptions.get(code) or _ERRORS.get(code, "Error"),
            "content": {JSON_MEDIA_TYPE: {"schema": _ERROR}},
        }
        for code in codes
    }


def _components(spec: APISpec) -> None:
    link = {
        "type": "object",
        "properties": {
            "rel": {"type": "string"},
            "href": {"type": "string", "format": "uri"},
        },
        "required": ["rel", "href"],
    }
    spec.components.schema("Link", link)
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["error"]},
                "code": {"type": "integer"},
                "error": {"type": "string", "description": "Error type"},
                "message": {"type": "string"},
                "details": {"description": "Field messages, exception type, …"},
                "request_id": {"type": "string"},
            },
            "required": ["status", "code", "error", "message"],
        },
    )
    spec.components.schema(
        "ModelMetadata",
        {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "author": {},
                "license": {"type": "string", "nullable": True},
                "version": {"type": "string", "nullable": True},
                "url": {"type": "string", "nullable": True},
                "links": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Link"},
                },
            },
            "required": ["id", "name", "description", "links"],
            "additionalProperties": True,
        },
    )
    spec.components.schema(
        "Job",
        {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "uuid": {
                    "type": "string",
                    "description": "Same as id (DEEPaaS clients)",
                },
                "model": {"type": "string"},
                "status": {"type": "string", "enum": [s.value for s in JobStatus]},
                "arguments": {"type": "object", "additionalProperties": True},
                "created": {"type": "string", "format": "date-time"},
                "started": {"type": "string", "format": "date-time", "nullable": True},
                "finished": {"type": "string", "format": "date-time", "nullable": True},
                "duration": {"type": "number", "nullable": True},
                "progress": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "nullable": True,
                },
                "progress_message": {"type": "string"},
                "result": {
                    "nullable": True,
                    "description": "What train() returned (null until the job is done)",
                },
                "error": {
                    "type": "string",
                    "nullable": True,
                    "description": "Why the job failed or ended: the model's exception, "
                    "or the message of the 422 when the model refused its input",
                },
                "href": {"type": "string", "format": "uri"},
                "version": {
                    "type": "string",
                    "nullable": True,
                    "description": "Version the job produced (single-job view)",
                },
            },
            "required": [
                "id",
                "uuid",
                "model",
                "status",
                "arguments",
                "created",
                "href",
            ],
        },
    )
    spec.components.schema("Version", _version_component())
    spec.components.schema(
        "Health",
        {
            "type": "object",
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["ok", "starting", "degraded", "stopping"],
                },
                "live": {"type": "boolean"},
                "ready": {"type": "boolean"},
                "pools": {"type": "object", "additionalProperties": True},
                "error": {"type": "string", "nullable": True},
                "damaged": {
                    "type": "array",
                    "items": _ref("OnlineDamagedModel"),
                    "description": "Online models refused because their files are damaged; "
                    "the host stays ready (status `degraded`)",
                },
            },
            "required": ["status", "live", "ready", "pools"],
        },
    )


def _fields_schema(
    ma: MarshmallowPlugin,
    spec_fields: dict[str, fields.Field],
    *,
    with_files: bool,
    as_text: bool = False,
) -> dict[str, Any]:
    """The schema of one request body; ``as_text`` for a form or multipart body,
    where an empty value counts as not given (so a required string is never ``""``)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in spec_fields.items():
        if is_file_field(field):
            if not with_files:
                continue
            prop: dict[str, Any] = {"type": "string", "format": "binary"}
            description = field.metadata.get("description")
            if description:
                prop["description"] = str(description)
        else:
            prop = ma.converter.field2property(field)  # type: ignore[union-attr]
            prop.pop("x-location", None)
            prop.pop("location", None)
            if prop.get("default") is None:
                prop.pop("default", None)
            if as_text and field.required and isinstance(field, fields.String):
                prop["minLength"] = max(1, prop.get("minLength", 0))
        properties[name] = prop
        if field.required:
            required.append(name)
    # unknown arguments are refused (422), so the spec must not allow them
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _request_body(ma: MarshmallowPlugin, args: ArgumentSpec) -> dict[str, Any]:
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": _fields_schema(ma, args.fields, with_files=True, as_text=True)
        }
    }
    if not args.file_fields:
        content["application/x-www-form-urlencoded"] = {
            "schema": _fields_schema(ma, args.fields, with_files=False, as_text=True)
        }
        content[JSON_MEDIA_TYPE] = {"schema": _fields_schema(ma, args.fields, with_files=False)}
    return {
        "required": bool(any(f.required for f in args.fields.values())),
        "content": content,
    }


def _predict_response(spec: APISpec, model: ModelWrapper) -> dict[str, Any]:
    if model.response_schema is not None:
        name = f"{_camel(model.name)}Response"
        spec.components.schema(name, schema=type(model.response_schema))
        json_schema: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
    else:
        json_schema = {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["OK"]},
                "predictions": {"description": "What the model returned, as JSON"},
            },
            "required": ["status", "predictions"],
        }
    content: dict[str, Any] = {}
    accept = model.predict_args.accept or [JSON_MEDIA_TYPE]
    for media_type in accept:
        if media_type == JSON_MEDIA_TYPE:
            content[media_type] = {"schema": json_schema}
        else:
            content[media_type] = {"schema": {"type": "string", "format": "binary"}}
    if JSON_MEDIA_TYPE not in content:
        content[JSON_MEDIA_TYPE] = {"schema": json_schema}
    return {"description": "Prediction", "content": content}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON_MEDIA_TYPE: {"schema": schema}},
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


class _SchemaNames:
    """Component names for nested schemas: the class name, or a numbered name for
    schemas generated from dicts; stable for the same plugins and order."""

    def __init__(self) -> None:
        self._names: dict[type, str] = {}

    def __call__(self, schema: Any) -> str:
        cls = schema if isinstance(schema, type) else type(schema)
        if cls not in self._names:
            name = cls.__name__
            if name.endswith("Schema") and len(name) > len("Schema"):
                name = name[: -len("Schema")]
            if name in ("", "Generated", "Response") or name in self._names.values():
                name = f"Nested{len(self._names) + 1}"
            self._names[cls] = name
        return self._names[cls]


def build_openapi(
    settings: Settings,
    models: Iterable[ModelWrapper],
    *,
    online: Iterable[LoadedPlugin] = (),
) -> dict[str, Any]:
    """Build the OpenAPI 3 document for ``models`` under ``settings.base_path``.

    The online-learning routes are always served, so always documented; ``online``
    (the online plugins) names the models they start with and gives request examples.
    """
    models = list(models)
    online = list(online)
    ma = MarshmallowPlugin(schema_name_resolver=_SchemaNames())
    spec = APISpec(
        title="deepaas-host",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[ma],
        info={
            "description": "Models served by deepaas-host (DEEPaaS V2 compatible API). "
            "Every operation answers 421 HostNotAllowed to a Host header that is not one of "
            "the host's names, and every POST, PUT or DELETE answers 403 CrossSiteRequest "
            "when a browser sends it for a page of another site.",
        },
    )
    assert ma.converter is not None  # set when the plugin joined the spec
    ma.converter.add_attribute_function(_tuple_properties)  # type: ignore[no-untyped-call]
    _components(spec)
    p = settings.base_path
    spec.path(
        path=f"{p}/",
        operations={
            "get": {
                "summary": "API versions",
                "tags": ["meta"],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "versions": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "id": {"type": "string"},
                                            "version": {"type": "string"},
                                            "status": {"type": "string"},
                                            "host_version": {"type": "string"},
                                            "links": {
                                                "type": "array",
                                                "items": _ref("Link"),
                                            },
                                        },
                                        "required": ["id", "links"],
                                    },
                                }
                            },
                            "required": ["versions"],
                        },
                        "Versions",
                    )
                },
            }
        },
    )
    spec.path(
        path=f"{p}/v2/",
        operations={
            "get": {
                "summary": "V2 API root",
                "tags": ["meta"],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "version": {"type": "string"},
                                "host_version": {"type": "string"},
                                "links": {"type": "array", "items": _ref("Link")},
                            },
                            "required": ["id", "version", "links"],
                        },
                        "V2 links",
                    )
                },
            }
        },
    )
    spec.path(
        path=f"{p}/v2/health",
        operations={
            "get": {
                "summary": "Liveness and readiness",
                "tags": ["meta"],
                "responses": {
                    "200": _json(_ref("Health"), "Ready: every worker is warmed"),
                    "503": _json(_ref("Health"), "Live but not ready"),
                },
            }
        },
    )
    spec.path(
        path=f"{p}/v2/models/",
        operations={
            "get": {
                "summary": "Served models",
                "tags": ["models"],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "models": {
                                    "type": "array",
                                    "items": _ref("ModelMetadata"),
                                }
                            },
                            "required": ["models"],
                        },
                        "Metadata of every model",
                    )
                },
            }
        },
    )
    with warnings.catch_warnings(), quiet_legacy_warnings():
        warnings.simplefilter("ignore", UserWarning)  # apispec's duplicate-name notices
        for model in models:
            base = f"{p}/v2/models/{model.name}"
            tag = model.name
            spec.tag({"name": tag, "description": str(model.metadata.get("description", ""))})
            spec.path(
                path=f"{base}/",
                operations={
                    "get": {
                        "summary": f"Metadata of {model.name}",
                        "tags": [tag],
                        "responses": {"200": _json(_ref("ModelMetadata"), "Model metadata")},
                    }
                },
            )
            if settings.predict:
                description = "Arguments may also be sent in the query string."
                if model.predict_args.accept:
                    description += (
                        " The response type follows the `accept` argument, or else the "
                        "HTTP Accept header."
                    )
                spec.path(
                    path=f"{base}/predict/",
                    operations={
                        "post": {
                            "summary": f"Predict with {model.name}",
                            "description": description,
                            "operationId": f"predict_{model.name}",
                            "tags": [tag],
                            "requestBody": _request_body(ma, model.predict_args),
                            "parameters": _version_parameter(model),
                            "responses": {
                                "200": _predict_response(spec, model),
                                **_error_responses(
                                    [
                                        "400",
                                        "404",
                                        "406",
                                        "408",
                                        "413",
                                        "415",
                                        "422",
                                        "500",
                                        "502",
                                        "503",
                                    ],
                                    _MODEL_422,
                                ),
                            },
                        }
                    },
                )
            if settings.predict and model.learn_args is not None:
                spec.path(
                    path=f"{base}/learn/",
                    operations={
                        "post": {
                            "summary": f"Learn with {model.name}",
                            "description": (
                                "Runs the plugin's learn() with these arguments. Learns and "
                                "predictions of this model run in one worker, in the order "
                                "they arrive, so a prediction sees every learn answered "
                                "before it."
                            ),
                            "operationId": f"learn_{model.name}",
                            "tags": [tag],
                            "requestBody": _request_body(ma, model.learn_args),
                            "responses": {
                                "200": _json({}, "What learn() returned, as JSON"),
                                **_error_responses(
                                    ["400", "404", "408", "413", "415", "422", "500", "502", "503"],
                                    _MODEL_422,
                                ),
                            },
                        }
                    },
                )
            if settings.train and model.train_args is not None:
                job_id = {
                    "name": "job_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
                spec.path(
                    path=f"{base}/train/",
                    operations={
                        "post": {
                            "summary": f"Start training {model.name}",
                            "operationId": f"train_{model.name}",
                            "tags": [tag],
                            "requestBody": _request_body(ma, model.train_args),
                            "responses": {
                                "202": _json(_ref("Job"), "Job accepted and queued"),
                                **_error_responses(
                                    ["400", "408", "413", "415", "422", "503", "507"],
                                    {
                                        "503": "The job cannot be recorded: the database "
                                        "failed, or the host is shutting down",
                                        "507": "The job cannot be recorded: no room left "
                                        "on disk or in the database",
                                    },
                                ),
                            },
                        },
                        "get": {
                            "summary": f"Training jobs of {model.name}, newest first",
                            "operationId": f"list_train_{model.name}",
                            "tags": [tag],
                            "responses": {
                                "200": _json({"type": "array", "items": _ref("Job")}, "Jobs")
                            },
                        },
                    },
                )
                spec.path(
                    path=f"{base}/train/{{job_id}}",
                    operations={
                        "get": {
                            "summary": "A training job",
                            "operationId": f"get_train_{model.name}",
                            "tags": [tag],
                            "parameters": [job_id],
                            "responses": {
                                "200": _json(_ref("Job"), "Job"),
                                **_error_responses(["404"]),
                            },
                        },
                        "delete": {
                            "summary": "Cancel a training job",
                            "operationId": f"cancel_train_{model.name}",
                            "tags": [tag],
                            "parameters": [job_id],
                            "responses": {
                                "200": _json(_ref("Job"), "Job after cancelling"),
                                **_error_responses(["404"]),
                            },
                        },
                    },
                )
        for model in models:
            _version_paths(spec, f"{p}/v2/models/{model.name}", model)
    _online_paths(spec, p, online)
    return document_security(_plain(spec.to_dict()), p)


def _tuple_properties(converter: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """A ``Tuple`` argument is an array of exactly its length (apispec says nothing)."""
    if not isinstance(field, fields.Tuple):
        return {}
    size = len(field.tuple_fields)
    return {"type": "array", "minItems": size, "maxItems": size}


def _plain(value: Any) -> Any:
    """JSON numbers for the ``Decimal`` bounds and defaults of ``Decimal`` arguments."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value() and abs(value) < 2**63:
            return int(value)
        return float(value)
    return value


_STORAGE_ERRORS = {
    "503": "The database or the artifact store failed (see Retry-After)",
    "507": "No room left: the disk, a quota or the database is full",
}


def _version_name_schema() -> dict[str, Any]:
    return {"type": "string", "pattern": f"^{VERSION_NAME.pattern}$"}


def _version_parameter(model: ModelWrapper) -> list[dict[str, Any]]:
    """``?version=`` of a predict: only for a model that can load versions, and only
    when the plugin has no argument of that name."""
    if not model.supports_versions or "version" in model.predict_args.fields:
        return []
    return [
        {
            "name": "version",
            "in": "query",
            "required": False,
            "schema": _version_name_schema(),
            "description": "Version to predict with (default: the model's default version)",
        }
    ]


def _version_component() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "model": {"type": "string"},
            "name": _version_name_schema(),
            "engine": {"type": "string"},
            "description": {"type": "string", "nullable": True},
            "source": {"type": "string", "enum": [s.value for s in VersionSource]},
            "job_id": {
                "type": "string",
                "nullable": True,
                "description": "The training job that produced it (null if uploaded)",
            },
            "created": {"type": "string", "format": "date-time"},
            "updated": {"type": "string", "format": "date-time"},
            "filename": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "metrics": {"type": "object", "nullable": True, "additionalProperties": True},
            "pinned": {
                "type": "boolean",
                "description": "Kept when older trained versions are pruned",
            },
            "default": {"type": "boolean"},
            "loaded": {"type": "boolean", "description": "Loaded in a predict worker"},
            "href": {"type": "string", "format": "uri"},
            "download": {"type": "string", "format": "uri"},
        },
        "required": [
            "id",
            "model",
            "name",
            "engine",
            "description",
            "source",
            "job_id",
            "created",
            "updated",
            "filename",
            "size",
            "sha256",
            "metrics",
            "pinned",
            "default",
            "loaded",
            "href",
            "download",
        ],
        "additionalProperties": False,
    }


def _version_paths(spec: APISpec, base: str, model: ModelWrapper) -> None:
    tag = model.name
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": _version_name_schema(),
        "description": "Version name",
    }
    doc = _json(_ref("Version"), "The version")
    upload = {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "The artifact"},
            "engine": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.+-]{1,64}$",
                "description": "Artifact format, e.g. onnx, pickle, joblib, river, custom",
            },
            "version": {
                **_version_name_schema(),
                "description": "Name; generated (v1, v2, …) if absent",
            },
            "description": {"type": "string"},
            "force": {"type": "boolean", "default": False, "description": "Replace if it exists"},
        },
        "required": ["file", "engine"],
        "additionalProperties": False,
    }
    stored = ("503", "507")
    spec.path(
        path=f"{base}/versions/",
        operations={
            "post": {
                "summary": f"Upload a version of {tag}",
                "operationId": f"upload_version_{tag}",
                "tags": [tag],
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": upload}},
                },
                "responses": {
                    "201": _json(_ref("Version"), "Created"),
                    "200": _json(_ref("Version"), "Replaced (force)"),
                    **_error_responses(
                        ["400", "404", "408", "409", "413", "422", *stored], _STORAGE_ERRORS
                    ),
                },
            },
            "get": {
                "summary": f"Versions of {tag}, newest first",
                "operationId": f"list_versions_{tag}",
                "tags": [tag],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "versions": {"type": "array", "items": _ref("Version")},
                                "default": {**_version_name_schema(), "nullable": True},
                            },
                            "required": ["versions", "default"],
                            "additionalProperties": False,
                        },
                        "Versions",
                    ),
                    **_error_responses(["404"]),
                },
            },
        },
    )
    spec.path(
        path=f"{base}/versions/{{version}}",
        operations={
            "get": {
                "summary": "A version",
                "operationId": f"get_version_{tag}",
                "tags": [tag],
                "parameters": [version],
                "responses": {"200": doc, **_error_responses(["404"])},
            },
            "delete": {
                "summary": "Delete a version and its artifact",
                "operationId": f"delete_version_{tag}",
                "tags": [tag],
                "parameters": [version],
                "responses": {"200": doc, **_error_responses(["404", *stored], _STORAGE_ERRORS)},
            },
        },
    )
    spec.path(
        path=f"{base}/versions/{{version}}/download",
        operations={
            "get": {
                "summary": "Download the artifact (resumable with Range)",
                "operationId": f"download_version_{tag}",
                "tags": [tag],
                "parameters": [version],
                "responses": {
                    "200": {
                        "description": "The artifact; X-Checksum-SHA256 carries its sha256",
                        "headers": {"X-Checksum-SHA256": {"schema": {"type": "string"}}},
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "206": {
                        "description": "The requested byte range",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    **_error_responses(["404"]),
                },
            }
        },
    )
    actions = [
        ("default", "Make the version the model's default", ["404", *stored]),
        (
            "pin",
            "Pin the version: pruning of older trained versions keeps it",
            ["404", *stored],
        ),
        ("unpin", "Unpin the version: it may be pruned again", ["404", *stored]),
    ]
    if model.supports_versions:
        actions += [
            ("load", "Load the version in every predict worker", ["404", "500"]),
            ("unload", "Release the version in every predict worker", ["404"]),
        ]
    for action, summary, errors in actions:
        spec.path(
            path=f"{base}/versions/{{version}}/{action}",
            operations={
                "post": {
                    "summary": summary,
                    "operationId": f"{action}_version_{tag}",
                    "tags": [tag],
                    "parameters": [version],
                    "responses": {
                        "200": doc,
                        **_error_responses(
                            errors,
                            {
                                **_STORAGE_ERRORS,
                                "500": "The artifact is missing or corrupt, or load() failed",
                            },
                        ),
                    },
                }
            },
        )


# online learning ------------------------------------------------------------------

_ONLINE_TAG = "online"
_TRUTH_EXAMPLES: dict[str, Any] = {
    "regression": 43.5,
    "binary": True,
    "multiclass": "a-class",
    "anomaly": False,
    "custom": 1.0,
}
_GENERIC_FEATURES: dict[str, Any] = {"temperature": 21.5, "humidity": 0.4, "weekday": "mon"}
_OP_ERRORS = {
    "400": "The body is not valid JSON, or is nested deeper than 64 levels",
    "408": "The request body stalled for longer than the body timeout",
    "413": "The body exceeds 1 MiB (or the host's max_body_size, if smaller)",
    "422": "Invalid fields (`details` names each): a number that is not finite (NaN, "
    "Infinity, 1e999) in the features or the ground truth, a ground truth the flavor does "
    "not take, more features than `max_features`, new feature names past "
    "`max_feature_names`; or a sample the model cannot use (`details.exception` names what "
    "it raised, an OverflowError included; the model is left as it was)",
    "500": "The model raised (ModelError names the exception type)",
    "502": "The online worker died during the call",
    "503": "Overloaded (too many operations waiting) or ShuttingDown, with Retry-After; "
    "OnlineModelDamaged: the model's files are damaged and it is refused until repaired "
    "(`details` says where: file, offset, what is readable after it); StorageUnavailable: "
    "writing its log failed, nothing of the request was applied",
    "507": "InsufficientStorage: the disk (or a quota) is full; nothing of the request was "
    "applied, the model serves what needs no writing",
}
_NOT_FOUND = "OnlineModelNotFound: no online model has this name"
#: Errors of every route of one model besides those of its events.
_MODEL_503 = (
    "OnlineModelDamaged: the model's files are damaged and it is refused until repaired "
    "(`details`: file, offset, what is readable after it); or the host is shutting down"
)


def _errors(descriptions: dict[str, str]) -> dict[str, Any]:
    """Error responses with descriptions of their own."""
    return _error_responses(descriptions, descriptions)


def _worker_errors(*, not_found: bool = True) -> dict[str, Any]:
    if not_found:
        return _errors({"404": _NOT_FOUND, "502": _OP_ERRORS["502"], "503": _MODEL_503})
    return _errors({"502": _OP_ERRORS["502"], "503": "The host is shutting down"})


def _example_features(plugin: LoadedPlugin) -> Any:
    """The plugin's ``example`` features, if it has JSON ones."""
    example = getattr(plugin.model, "example", None)
    if not isinstance(example, Mapping | str) or not example:
        return None
    value = dict(example) if isinstance(example, Mapping) else example
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return None


def _online_examples(online: list[LoadedPlugin]) -> dict[str, dict[str, Any]]:
    """Request examples of predict, learn and label: one per plugin with example
    features (named after it), else a generic one."""
    out: dict[str, dict[str, Any]] = {"predict": {}, "learn": {}, "label": {}}
    for plugin in online:
        features = _example_features(plugin)
        if features is None:
            continue
        name = plugin.info.name
        flavor = str(getattr(plugin.model, "flavor", "custom"))
        truth = _TRUTH_EXAMPLES.get(flavor)
        summary = f"Features of {name} ({flavor})"
        out["predict"][name] = {
            "summary": summary,
            "value": {"features": features, "id": "request-42", "keep": True},
        }
        learn: dict[str, Any] = {"features": features}
        if truth is not None:
            learn["ground_truth"] = truth
            out["label"][name] = {
                "summary": f"The ground truth of a kept prediction of {name}",
                "value": {"id": "request-42", "ground_truth": truth},
            }
        out["learn"][name] = {"summary": summary, "value": learn}
    generic = {
        "predict": {"features": _GENERIC_FEATURES, "id": "request-42", "keep": True},
        "learn": {"features": _GENERIC_FEATURES, "ground_truth": 1.5},
        "label": {"id": "request-42", "ground_truth": 1.5},
    }
    for kind, examples in out.items():
        if not examples:
            examples["generic"] = {"summary": "Numeric and text features", "value": generic[kind]}
    first_label = next(iter(out["label"].values()))["value"]
    out["learn"]["kept"] = {
        "summary": "Learn from a kept prediction (its features) and its ground truth",
        "value": {"id": "request-42", "ground_truth": first_label["ground_truth"]},
    }
    return out


def _online_components(spec: APISpec) -> None:
    count = {"type": "integer", "minimum": 0}
    ms = {"type": "number", "nullable": True, "description": "Milliseconds"}
    features = {
        "description": "The sample: an object of feature values, or a text for text models. "
        "Every number in it is finite: NaN, Infinity and numbers too large for a double "
        "(1e999) are refused with 422 naming the feature. At most `max_features` features "
        "(a setting, 10000 by default); a model learns at most `max_feature_names` distinct "
        "names (100000 by default) over its life.",
        "oneOf": [
            {
                "type": "object",
                "additionalProperties": {
                    "description": "A feature value: a finite number, a text, a boolean, "
                    "null, or a list or object of these",
                    "nullable": True,
                },
            },
            {"type": "string"},
        ],
    }
    truth = {
        "description": "What the model should have answered, as its flavor takes it: "
        "regression a finite number; binary and multiclass a class label (a string, an "
        "integer or a boolean); anomaly true/false or 1/0 (optional); clustering none (leave "
        "it out); custom any value without NaN or infinities (optional)",
        "anyOf": [
            {"title": "regression", "type": "number"},
            {
                "title": "binary, multiclass",
                "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}],
            },
            {
                "title": "anomaly",
                "anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}],
            },
            {"title": "custom", "description": "Any JSON value without NaN or infinities"},
        ],
    }
    ident = {
        "type": "string",
        "minLength": 1,
        "maxLength": 256,
        "description": "Identifier of the prediction (an integer is taken as its text)",
    }
    prediction = {
        "nullable": True,
        "description": "A number (regression, anomaly score), a class label, a cluster "
        "number, or what a custom model returns; null before the model has learned",
    }
    links = ["self", "predict", "learn", "label", "bulk", "metrics", "stats"]
    links += ["stream_metrics", "stream_events", "download"]
    spec.components.schema(
        "OnlineModel",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "flavor": {"type": "string", "enum": list(FLAVORS)},
                "estimator": {"type": "string", "description": "The river steps"},
                "description": {"type": "string"},
                "created": {"type": "string", "format": "date-time"},
                "plugin": {"type": "string", "description": "Plugin it was created from"},
                "upload": {"type": "string", "description": "File name it was uploaded as"},
                "seq": {**count, "description": "Events (learns, kept predictions) so far"},
                "learned": count,
                "labelled": {**count, "description": "Learns from a kept prediction"},
                "predictions_since_start": count,
                "kept": {**count, "description": "Predictions waiting for a label"},
                "kept_bytes": {
                    **count,
                    "description": "Roughly the bytes they hold (at most `keep_bytes`)",
                },
                "feature_names": {
                    **count,
                    "description": "Distinct feature names learned (at most "
                    "`max_feature_names`; counted from the first start of this host version "
                    "for models of older ones)",
                },
                "snapshot_seq": count,
                "meta_rebuilt": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When a repair rebuilt a damaged meta.json",
                },
                "links": {
                    "type": "object",
                    "properties": {k: {"type": "string", "format": "uri"} for k in links},
                    "required": links,
                },
            },
            "required": [
                "name",
                "flavor",
                "estimator",
                "description",
                "created",
                "seq",
                "learned",
                "labelled",
                "predictions_since_start",
                "kept",
                "kept_bytes",
                "feature_names",
                "snapshot_seq",
                "links",
            ],
        },
    )
    spec.components.schema(
        "OnlineDamage",
        {
            "type": "object",
            "description": "Where a model's files do not read as written",
            "properties": {
                "problem": {"type": "string"},
                "file": {
                    "type": "string",
                    "nullable": True,
                    "description": "The file in the model's directory",
                },
                "offset": {"type": "integer", "minimum": 0, "description": "Byte in it"},
                "last_good_seq": {
                    **count,
                    "description": "Events up to this one read as written",
                },
                "frames_after": {**count, "description": "Readable frames after the damage"},
                "events_after": {**count, "description": "Readable events after the damage"},
                "last_seq_after": {"type": "integer", "nullable": True},
            },
            "required": ["problem", "file"],
        },
    )
    spec.components.schema(
        "OnlineDamagedModel",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "reason": {"type": "string"},
                "details": _ref("OnlineDamage"),
            },
            "required": ["name", "reason", "details"],
        },
    )
    spec.components.schema(
        "OnlineRepair",
        {
            "type": "object",
            "description": "What a repair kept and lost",
            "properties": {
                "model": {"type": "string"},
                "kept": {**count, "description": "Events applied after the snapshot"},
                "lost": {**count, "description": "Sequence numbers missing among them"},
                "lost_ranges": {
                    "type": "array",
                    "description": "The missing numbers as [first, last] (the first 100)",
                    "items": {"type": "array", "items": count, "minItems": 2, "maxItems": 2},
                },
                "seq": {**count, "description": "The model's last event now"},
                "from_snapshot": {
                    **count,
                    "nullable": True,
                    "description": "The snapshot it started from (null: afresh from its "
                    "plugin, no snapshot loading)",
                },
                "unreadable": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Log files with unreadable bytes",
                },
                "snapshots_set_aside": {"type": "array", "items": {"type": "string"}},
                "meta_rebuilt": {"type": "boolean"},
                "moved_to": {
                    "type": "string",
                    "description": "The folder of the model's directory the old files "
                    "were moved into, as they were",
                },
                "moved": {"type": "array", "items": {"type": "string"}},
                "links": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": [
                "model",
                "kept",
                "lost",
                "lost_ranges",
                "seq",
                "from_snapshot",
                "moved_to",
                "moved",
            ],
        },
    )
    spec.components.schema(
        "OnlinePredictRequest",
        {
            "type": "object",
            "properties": {
                "features": features,
                "id": {
                    **ident,
                    "description": "Identifier to label the prediction with later "
                    "(generated when kept and absent)",
                },
                "keep": {
                    "type": "boolean",
                    "default": True,
                    "description": "Keep the prediction to be labelled later",
                },
            },
            "required": ["features"],
            "additionalProperties": False,
        },
    )
    spec.components.schema(
        "OnlineLearnRequest",
        {
            "type": "object",
            "description": "Features and ground truth; or the id of a kept prediction, whose "
            "features are learned from (and whose prediction counts for the metrics)",
            "properties": {
                "features": features,
                "ground_truth": truth,
                "id": {**ident, "description": "A kept prediction"},
            },
            "anyOf": [{"required": ["features"]}, {"required": ["id"]}],
            "additionalProperties": False,
        },
    )
    spec.components.schema(
        "OnlineLabelRequest",
        {
            "type": "object",
            "description": "The ground truth of a kept prediction (not for clustering)",
            "properties": {
                "id": {**ident, "description": "The id the prediction was answered with"},
                "ground_truth": truth,
            },
            "required": ["id", "ground_truth"],
            "additionalProperties": False,
        },
    )
    spec.components.schema(
        "OnlinePrediction",
        {
            "type": "object",
            "properties": {
                "prediction": prediction,
                "probabilities": {
                    "type": "object",
                    "additionalProperties": {"type": "number", "nullable": True},
                    "description": "Probability of each class (classifiers); null where it "
                    "is not a finite number",
                },
                "id": {"type": "string", "description": "Given, or generated when kept"},
                "seq": {**count, "description": "Event number (kept predictions)"},
                "kept": {
                    "type": "boolean",
                    "enum": [False],
                    "description": "Present (false) when a prediction asked to be kept was "
                    "not: its features take more than `keep_bytes`",
                },
                "warning": {"type": "string", "description": "Why it was not kept"},
            },
            "required": ["prediction"],
        },
    )
    spec.components.schema(
        "OnlineUpdate",
        {
            "type": "object",
            "description": "After a learn or a label",
            "properties": {
                "prediction": {
                    **prediction,
                    "description": "What the model predicted before learning (the kept "
                    "prediction for a label)",
                },
                "seq": {**count, "description": "Event number"},
                "learned": {**count, "description": "Samples learned so far"},
            },
            "required": ["prediction", "seq", "learned"],
        },
    )
    spec.components.schema(
        "OnlineBulkError",
        {
            "type": "object",
            "properties": {"error": _ERROR},
            "required": ["error"],
            "additionalProperties": False,
            "description": "A line that failed; `details.line` is its number (from 1)",
        },
    )
    metric_values = {"type": "object", "additionalProperties": {"type": "number", "nullable": True}}
    spec.components.schema(
        "OnlineMetrics",
        {
            "type": "object",
            "properties": {
                "model": {"type": "string"},
                "flavor": {"type": "string", "enum": list(FLAVORS)},
                "learned": count,
                "overall": {**metric_values, "description": "Every metric since creation"},
                "rolling": {**metric_values, "description": "Over the last `window` samples"},
                "window": {"type": "integer", "minimum": 1},
            },
            "required": ["model", "flavor", "learned", "overall", "rolling", "window"],
        },
    )
    spec.components.schema(
        "OnlineOpStats",
        {
            "type": "object",
            "properties": {
                "count": count,
                "errors": count,
                "latency_ms": {
                    "type": "object",
                    "properties": {"p50": ms, "p90": ms, "p99": ms, "max": ms},
                    "required": ["p50", "p90", "p99", "max"],
                },
            },
            "required": ["count", "errors", "latency_ms"],
        },
    )
    spec.components.schema(
        "OnlineStats",
        {
            "type": "object",
            "properties": {
                "model": {"type": "string"},
                "predict": _ref("OnlineOpStats"),
                "learn": _ref("OnlineOpStats"),
                "label": _ref("OnlineOpStats"),
                "totals": {
                    "type": "object",
                    "properties": {
                        "learned": count,
                        "labelled": count,
                        "predictions_since_start": count,
                        "kept_predictions": count,
                        "seq": count,
                    },
                    "required": [
                        "learned",
                        "labelled",
                        "predictions_since_start",
                        "kept_predictions",
                        "seq",
                    ],
                },
            },
            "required": ["model", "predict", "learn", "label", "totals"],
        },
    )


def _with_model(name: str) -> dict[str, Any]:
    """A single-operation answer: the component plus the model's name."""
    return {
        "allOf": [
            _ref(name),
            {
                "type": "object",
                "properties": {"model": {"type": "string"}},
                "required": ["model"],
            },
        ]
    }


def _online_paths(spec: APISpec, p: str, online: list[LoadedPlugin]) -> None:
    _online_components(spec)
    plugins = ", ".join(f"`{o.info.name}` ({getattr(o.model, 'flavor', 'custom')})" for o in online)
    installed = (
        f" Installed online plugins, each served as a model of the same name from the "
        f"start: {plugins}."
        if online
        else " No online plugin is installed: create models from pickled river models."
    )
    spec.tag(
        {
            "name": _ONLINE_TAG,
            "description": "Online learning: models that learn one sample at a time, with "
            "delayed labels, live metrics and event streams." + installed,
        }
    )
    tags = [_ONLINE_TAG]
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
        "description": "Name of an online model (names are known at run time: see "
        "`GET /v2/online/`)." + installed,
    }
    base = f"{p}/v2/online"
    model = f"{base}/{{name}}"
    first = online[0].info.name if online else "my-plugin"
    create_fields = {
        "name": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
            "description": "Name of the new model (two friendly words if absent)",
        },
        "description": {"type": "string", "description": "Free text"},
        "flavor": {
            "type": "string",
            "enum": list(FLAVORS),
            "description": "Required with a file; defaults to the plugin's",
        },
    }
    plugin_field = {"type": "string", "description": "Online plugin the model starts from"}
    spec.path(
        path=f"{base}/",
        operations={
            "get": {
                "summary": "Online models, installed online plugins and flavors",
                "operationId": "online_list",
                "tags": tags,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "models": {"type": "array", "items": _ref("OnlineModel")},
                                "plugins": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "name": {"type": "string"},
                                            "description": {"type": "string"},
                                            "flavor": {"type": "string", "enum": list(FLAVORS)},
                                        },
                                        "required": ["name", "description", "flavor"],
                                    },
                                },
                                "flavors": {
                                    "type": "array",
                                    "items": {"type": "string", "enum": list(FLAVORS)},
                                },
                                "damaged": {
                                    "type": "array",
                                    "items": _ref("OnlineDamagedModel"),
                                    "description": "Models refused because their files are "
                                    "damaged (see the repair route)",
                                },
                            },
                            "required": ["models", "plugins", "flavors", "damaged"],
                        },
                        "Online models",
                    ),
                    **_worker_errors(not_found=False),
                },
            },
            "post": {
                "summary": "Create an online model from a plugin or a pickled river model",
                "description": "Send exactly one of `plugin` (JSON or form) and `file` "
                "(multipart, with its `flavor`). Unpickling runs code: without access "
                "tokens an upload is accepted from loopback only.",
                "operationId": "online_create",
                "tags": tags,
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON_MEDIA_TYPE: {
                            "schema": {
                                "type": "object",
                                "properties": {"plugin": plugin_field, **create_fields},
                                "required": ["plugin"],
                                "additionalProperties": False,
                            },
                            "example": {
                                "plugin": first,
                                "name": f"{first}-2",
                                "description": "A second, independent instance",
                            },
                        },
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {
                                        "type": "string",
                                        "format": "binary",
                                        "description": "A pickled river model (or estimator "
                                        "with learn_one/predict_one), instead of a plugin",
                                    },
                                    **create_fields,
                                    "plugin": plugin_field,
                                },
                                "additionalProperties": False,
                            }
                        },
                    },
                },
                "responses": {
                    "201": {
                        **_json(_ref("OnlineModel"), "Created"),
                        "headers": {
                            "Location": {
                                "schema": {"type": "string", "format": "uri"},
                                "description": "The new model",
                            }
                        },
                    },
                    **_errors(
                        {
                            "400": _ERRORS["400"],
                            "403": "The token lacks the `manage` scope; or a file would be "
                            "unpickled without a manage token (CodeExecutionDenied); or a "
                            "browser sent it for another site (CrossSiteRequest)",
                            "408": _ERRORS["408"],
                            "409": "An online model of this name exists (damaged or not)",
                            "413": _ERRORS["413"],
                            "415": "Unsupported Content-Type",
                            "422": "Invalid fields: not exactly one of plugin and file, an "
                            "unknown plugin, a bad name, or a file that does not unpickle "
                            "or fit its flavor",
                            "500": "The plugin's build() raised",
                            "502": _OP_ERRORS["502"],
                            "503": "The host is shutting down, or writing the model failed "
                            "(StorageUnavailable); nothing was created",
                            "507": "InsufficientStorage: the disk is full; nothing was created",
                        }
                    ),
                },
            },
        },
    )
    spec.path(
        path=model,
        operations={
            "get": {
                "summary": "An online model: what it is and how much it learned",
                "operationId": "online_get",
                "tags": tags,
                "parameters": [name],
                "responses": {
                    "200": _json(_ref("OnlineModel"), "The model"),
                    **_worker_errors(),
                },
            },
            "delete": {
                "summary": "Delete an online model with its log and snapshots",
                "description": "A damaged model can be deleted too.",
                "operationId": "online_delete",
                "tags": tags,
                "parameters": [name],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"deleted": {"type": "string"}},
                            "required": ["deleted"],
                        },
                        "Deleted",
                    ),
                    **_errors(
                        {
                            "404": _NOT_FOUND,
                            "502": _OP_ERRORS["502"],
                            "503": "The host is shutting down, or the disk failed "
                            "(StorageUnavailable)",
                        }
                    ),
                },
            },
        },
    )
    spec.path(
        path=f"{model}/repair",
        operations={
            "post": {
                "summary": "Serve a damaged model again, accepting the loss of what is unreadable",
                "description": "For a model refused with OnlineModelDamaged. Its old files "
                "(the damaged ones and those the new snapshot replaces) are moved, as they "
                "are, into `damaged-<UTC time>/` of its directory; every readable event "
                "after the newest snapshot that loads is applied, in order; a fresh snapshot "
                "is written and the model serves again. A damaged meta.json is rebuilt from "
                "the snapshot; with no snapshot loading, a model created from an installed "
                "plugin starts afresh from it. The answer says how many events were kept "
                "and which sequence numbers were lost.",
                "operationId": "online_repair",
                "tags": tags,
                "parameters": [name],
                "responses": {
                    "200": _json(_ref("OnlineRepair"), "Repaired: serving again"),
                    **_errors(
                        {
                            "403": "The token lacks the `manage` scope",
                            "404": _NOT_FOUND,
                            "409": "Conflict: the model is not damaged, or nothing it holds "
                            "can be read (delete it instead)",
                            "502": _OP_ERRORS["502"],
                            "503": "The host is shutting down, or the disk failed "
                            "(StorageUnavailable); a repair can be run again",
                            "507": "InsufficientStorage: the disk is full; a repair can be "
                            "run again",
                        }
                    ),
                },
            }
        },
    )
    binary = {"schema": {"type": "string", "format": "binary"}}
    spec.path(
        path=f"{model}/download",
        operations={
            "get": {
                "summary": "Download the model as it is now (a pickle)",
                "operationId": "online_download",
                "tags": tags,
                "parameters": [name],
                "responses": {
                    "200": {
                        "description": "The pickled model; X-Checksum-SHA256 carries its sha256",
                        "headers": {
                            "X-Checksum-SHA256": {"schema": {"type": "string"}},
                            "Content-Disposition": {"schema": {"type": "string"}},
                        },
                        "content": {"application/octet-stream": binary},
                    },
                    **_worker_errors(),
                },
            }
        },
    )
    examples = _online_examples(online)
    operations = (
        (
            "predict",
            "Predict one sample",
            "Kept predictions (`keep`, the default) wait for a label under their `id`.",
            "OnlinePredictRequest",
            "OnlinePrediction",
            _NOT_FOUND,
        ),
        (
            "learn",
            "Learn one sample",
            "The model predicts the sample first (for the metrics), then learns it.",
            "OnlineLearnRequest",
            "OnlineUpdate",
            _NOT_FOUND + "; PredictionNotFound: only an `id` was given and no prediction "
            "with it is kept",
        ),
        (
            "label",
            "Label a kept prediction (delayed ground truth)",
            "The model learns the kept prediction's features with this ground truth; the "
            "metrics count the kept prediction.",
            "OnlineLabelRequest",
            "OnlineUpdate",
            _NOT_FOUND + "; PredictionNotFound: no prediction with this id is kept (unknown, "
            "labelled already, or expired)",
        ),
    )
    for kind, summary, description, request, response, not_found in operations:
        spec.path(
            path=f"{model}/{kind}/",
            operations={
                "post": {
                    "summary": summary,
                    "description": description + " Also routed without the final slash.",
                    "operationId": f"online_{kind}",
                    "tags": tags,
                    "parameters": [name],
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON_MEDIA_TYPE: {
                                "schema": _ref(request),
                                "examples": examples[kind],
                            }
                        },
                    },
                    "responses": {
                        "200": _json(_with_model(response), "Done (durable once answered)"),
                        **_errors(
                            {
                                "400": _OP_ERRORS["400"],
                                "404": not_found,
                                "408": _OP_ERRORS["408"],
                                "413": _OP_ERRORS["413"],
                                "422": _OP_ERRORS["422"],
                                "500": _OP_ERRORS["500"],
                                "502": _OP_ERRORS["502"],
                                "503": _OP_ERRORS["503"],
                                "507": _OP_ERRORS["507"],
                            }
                        ),
                    },
                }
            },
        )
    line = {"anyOf": [_ref("OnlinePrediction"), _ref("OnlineUpdate"), _ref("OnlineBulkError")]}
    bulk_example = "\n".join(
        json.dumps(next(iter(examples["learn"].values()))["value"]) for _ in range(3)
    )
    spec.path(
        path=f"{model}/bulk/",
        operations={
            "post": {
                "summary": "Many operations of one kind, as newline-delimited JSON",
                "description": "Each line is the body of one operation (see the `op` query "
                "parameter). Lines are applied in order, in chunks, and each answered as soon "
                "as its chunk is durable: one line out per line in, in order, the result or "
                '`{"error": …}` (with `details.line`). Also routed without the final slash.',
                "operationId": "online_bulk",
                "tags": tags,
                "parameters": [
                    name,
                    {
                        "name": "op",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": ["learn", "predict", "label"],
                            "default": "learn",
                        },
                        "description": "What every line is",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-ndjson": {
                            "schema": {
                                "type": "string",
                                "description": "One JSON object per line: an "
                                "OnlineLearnRequest, OnlinePredictRequest or OnlineLabelRequest",
                            },
                            "example": bulk_example,
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "One JSON object per input line (without `model`)",
                        "content": {
                            "application/x-ndjson": {
                                "schema": {
                                    "type": "string",
                                    "description": "Lines of OnlinePrediction (predict), "
                                    "OnlineUpdate (learn, label) or OnlineBulkError",
                                },
                                "x-item-schema": line,
                            }
                        },
                    },
                    **_errors(
                        {
                            "400": "A malformed chunked body",
                            "404": _NOT_FOUND,
                            "408": _OP_ERRORS["408"],
                            "413": "The body exceeds the host's max_body_size (the answer "
                            "says how many lines were processed), or a line exceeds 1 MiB",
                            "422": "Invalid `op` (a line's own errors, 422, 503 and 507 "
                            "among them, are answered in its line)",
                            "502": _OP_ERRORS["502"],
                            "503": _OP_ERRORS["503"],
                        }
                    ),
                },
            }
        },
    )
    spec.path(
        path=f"{model}/metrics",
        operations={
            "get": {
                "summary": "Metrics, overall and over the rolling window",
                "operationId": "online_metrics",
                "tags": tags,
                "parameters": [name],
                "responses": {
                    "200": _json(_ref("OnlineMetrics"), "Metrics (null: not defined yet)"),
                    **_worker_errors(),
                },
            }
        },
    )
    spec.path(
        path=f"{model}/stats",
        operations={
            "get": {
                "summary": "Operation counts and latencies since the host started",
                "operationId": "online_stats",
                "tags": tags,
                "parameters": [name],
                "responses": {
                    "200": _json(_ref("OnlineStats"), "Stats"),
                    **_worker_errors(),
                },
            }
        },
    )

    def event(names: list[str], data: str) -> dict[str, Any]:
        return {
            "schema": {
                "type": "object",
                "description": "One server-sent event (comments keep the connection alive)",
                "properties": {
                    "event": {"type": "string", "enum": names},
                    "data": {"type": "string", "description": data},
                    "id": {"type": "string"},
                },
                "required": ["data"],
            }
        }

    spec.path(
        path=f"{model}/stream/metrics",
        operations={
            "get": {
                "summary": "Server-sent events: the metrics whenever they change",
                "description": "The stream lasts until the client leaves or the host stops.",
                "operationId": "online_stream_metrics",
                "tags": tags,
                "parameters": [
                    name,
                    {
                        "name": "interval",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "number",
                            "minimum": 0.1,
                            "maximum": 3600,
                            "default": 1,
                        },
                        "description": "Seconds between two looks at the metrics",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "`metrics` events (id: samples learned); an `error` "
                        "event ends the stream",
                        "content": {
                            "text/event-stream": event(
                                ["metrics", "error"],
                                "JSON: OnlineMetrics, or an Error for `error`",
                            )
                        },
                    },
                    **_errors({"404": _NOT_FOUND, "422": "Invalid `interval`", "503": _MODEL_503}),
                },
            }
        },
    )
    spec.path(
        path=f"{model}/stream/events",
        operations={
            "get": {
                "summary": "Server-sent events: every predict, learn and label as it happens",
                "description": "A slow client loses events (a `dropped` event counts them); "
                "the model never waits for it. The stream lasts until the client leaves, the "
                "model is deleted or the host stops.",
                "operationId": "online_stream_events",
                "tags": tags,
                "parameters": [name],
                "responses": {
                    "200": {
                        "description": "Events (id: the event number)",
                        "content": {
                            "text/event-stream": event(
                                ["predict", "learn", "label", "dropped"],
                                "JSON: type, time, features, ground_truth, prediction, "
                                'probabilities, id, seq; `{"dropped": n}` for `dropped`',
                            )
                        },
                    },
                    **_errors({"404": _NOT_FOUND, "503": _MODEL_503}),
                },
            }
        },
    )
