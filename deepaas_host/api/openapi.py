"""The OpenAPI 3 document, built from the served models with apispec.

Only routes that exist are described, and every response shape here is the
one the handlers send (the test suite holds real responses against it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from deepaas_host import __version__
from deepaas_host.api.auth import document_security
from deepaas_host.jobs.states import JobStatus
from deepaas_host.model.arguments import ArgumentSpec, is_file_field
from deepaas_host.model.discovery import quiet_legacy_warnings
from deepaas_host.model.outputs import JSON_MEDIA_TYPE
from deepaas_host.model.wrapper import ModelWrapper
from deepaas_host.settings import Settings

__all__ = ["build_openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "400": "Malformed body (broken multipart or JSON)",
    "404": "No such model or job",
    "406": "None of the accepted media types can be produced",
    "413": "Request body too large",
    "415": "Unsupported Content-Type",
    "422": "Invalid arguments; `details` names each field",
    "500": "The model raised, or its output broke its response schema",
    "502": "The worker process died during the call",
    "503": "Queue full or host shutting down (see Retry-After)",
}


def _error_responses(codes: Iterable[str]) -> dict[str, Any]:
    return {
        code: {
            "description": _ERRORS.get(code, "Error"),
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
                "license": {"type": "string"},
                "version": {"type": "string"},
                "url": {"type": "string"},
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
                "result": {"nullable": True},
                "error": {"type": "string", "nullable": True},
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
    spec.components.schema(
        "Version",
        {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "model": {"type": "string"},
                "name": {"type": "string"},
                "engine": {"type": "string"},
                "description": {"type": "string", "nullable": True},
                "source": {"type": "string", "enum": ["upload", "training"]},
                "job_id": {"type": "string", "nullable": True},
                "created": {"type": "string", "format": "date-time"},
                "updated": {"type": "string", "format": "date-time"},
                "filename": {"type": "string"},
                "size": {"type": "integer"},
                "sha256": {"type": "string"},
                "metrics": {"type": "object", "nullable": True, "additionalProperties": True},
                "default": {"type": "boolean"},
                "loaded": {"type": "boolean", "description": "Loaded in a predict worker"},
                "href": {"type": "string", "format": "uri"},
                "download": {"type": "string", "format": "uri"},
            },
            "required": ["id", "model", "name", "engine", "source", "size", "sha256", "href"],
        },
    )
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
            },
            "required": ["status", "live", "ready", "pools"],
        },
    )


def _fields_schema(
    ma: MarshmallowPlugin, spec_fields: dict[str, fields.Field], *, with_files: bool
) -> dict[str, Any]:
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
        "multipart/form-data": {"schema": _fields_schema(ma, args.fields, with_files=True)}
    }
    if not args.file_fields:
        content["application/x-www-form-urlencoded"] = {
            "schema": _fields_schema(ma, args.fields, with_files=False)
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


def build_openapi(settings: Settings, models: Iterable[ModelWrapper]) -> dict[str, Any]:
    """Build the OpenAPI 3 document for ``models`` under ``settings.base_path``."""
    models = list(models)
    ma = MarshmallowPlugin(schema_name_resolver=_SchemaNames())
    spec = APISpec(
        title="deepaas-host",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[ma],
        info={
            "description": "Models served by deepaas-host (DEEPaaS V2 compatible API).",
        },
    )
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
                                        "413",
                                        "415",
                                        "422",
                                        "500",
                                        "502",
                                        "503",
                                    ]
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
                                **_error_responses(["400", "413", "415", "422"]),
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
            _version_paths(spec, f"{p}/v2/models/{model.name}", model.name)
    return document_security(spec.to_dict(), p)


def _version_parameter(model: ModelWrapper) -> list[dict[str, Any]]:
    if "version" in model.predict_args.fields:
        return []
    return [
        {
            "name": "version",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "Version to predict with (default: the model's default version,"
            " for models that can load versions)",
        }
    ]


def _version_paths(spec: APISpec, base: str, tag: str) -> None:
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
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
            "version": {"type": "string", "description": "Name; generated (v1, v2, …) if absent"},
            "description": {"type": "string"},
            "force": {"type": "boolean", "default": False, "description": "Replace if it exists"},
        },
        "required": ["file", "engine"],
        "additionalProperties": False,
    }
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
                    **_error_responses(["400", "404", "409", "413", "422"]),
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
                                "default": {"type": "string", "nullable": True},
                            },
                            "required": ["versions", "default"],
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
                "responses": {"200": doc, **_error_responses(["404"])},
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
    for action, summary in (
        ("load", "Load the version in every predict worker"),
        ("unload", "Release the version in every predict worker"),
        ("default", "Make the version the model's default"),
    ):
        spec.path(
            path=f"{base}/versions/{{version}}/{action}",
            operations={
                "post": {
                    "summary": summary,
                    "operationId": f"{action}_version_{tag}",
                    "tags": [tag],
                    "parameters": [version],
                    "responses": {"200": doc, **_error_responses(["404", "422", "500"])},
                }
            },
        )
