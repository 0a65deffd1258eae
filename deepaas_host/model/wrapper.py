"""The host's view of a loaded plugin: metadata, argument specs, capabilities."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow

from deepaas_host.errors import PluginLoadError
from deepaas_host.model.arguments import ArgumentSpec, build_argument_spec
from deepaas_host.model.discovery import LoadedPlugin, PluginInfo, quiet_legacy_warnings
from deepaas_host.model.outputs import response_schema_of

__all__ = ["ModelWrapper"]


@dataclass(frozen=True)
class ModelWrapper:
    """Everything the HTTP side needs to know about one served model."""

    info: PluginInfo
    metadata: dict[str, Any]
    predict_args: ArgumentSpec
    train_args: ArgumentSpec | None
    response_schema: marshmallow.Schema | None
    #: Arguments of ``learn`` (``get_learn_args``, else the predict arguments);
    #: None when the plugin does not learn online.
    learn_args: ArgumentSpec | None = None
    #: The plugin object itself (module, instance); its hooks run in workers,
    #: only naming hooks such as ``generate_version_id`` run here.
    plugin: Any = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def can_train(self) -> bool:
        return self.train_args is not None

    @property
    def can_learn(self) -> bool:
        return self.learn_args is not None

    @property
    def supports_versions(self) -> bool:
        """The plugin can load a version's artifact (it has ``load(path)``)."""
        return callable(getattr(self.plugin, "load", None))

    @classmethod
    def from_plugin(cls, plugin: LoadedPlugin) -> ModelWrapper:
        info, obj = plugin.info, plugin.model
        try:
            with quiet_legacy_warnings():
                metadata = _metadata(info, obj.get_metadata())
                predict = build_argument_spec(
                    info.name, "predict", _call_optional(obj, "get_predict_args")
                )
                train = None
                if callable(getattr(obj, "train", None)):
                    train = build_argument_spec(
                        info.name, "train", _call_optional(obj, "get_train_args")
                    )
                schema = response_schema_of(obj)
                learn = None
                if callable(getattr(obj, "learn", None)):
                    learn_fields = _call_optional(obj, "get_learn_args")
                    if not learn_fields:
                        learn_fields = _call_optional(obj, "get_predict_args")
                    learn = build_argument_spec(info.name, "learn", learn_fields)
        except PluginLoadError:
            raise
        except Exception as exc:
            raise PluginLoadError(
                info.name, info.distribution, f"{type(exc).__name__}: {exc}"
            ) from exc
        return cls(info, metadata, predict, train, schema, learn_args=learn, plugin=obj)


def _call_optional(obj: Any, method: str) -> Mapping[str, Any]:
    fn = getattr(obj, method, None)
    if not callable(fn):
        return {}
    result = fn()
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise TypeError(f"{method}() returned {type(result).__name__}, not a dict")
    return result


#: Metadata keys of the contract whose values are text (or null when absent).
_TEXT_KEYS = ("license", "version", "url")


def _metadata(info: PluginInfo, raw: Any) -> dict[str, Any]:
    """The plugin's metadata as the API sends it (and as its document states):
    ``id``, ``name`` and ``description`` are text, ``license``, ``version`` and
    ``url`` text or null, anything else JSON as given, or its text."""
    if not isinstance(raw, Mapping):
        raise TypeError(f"get_metadata() returned {type(raw).__name__}, not a dict")
    meta: dict[str, Any] = {str(k): _json_value(v) for k, v in raw.items() if k != "links"}
    meta["id"] = info.name
    meta["name"] = info.name if meta.get("name") is None else str(meta["name"])
    meta["description"] = "" if meta.get("description") is None else str(meta["description"])
    for key in _TEXT_KEYS:
        if meta.get(key) is not None:
            meta[key] = str(meta[key])
    return meta


def _json_value(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return str(value)
    return value
