"""Plugin discovery: a thin layer over stevedore that returns data.

Two namespaces are searched: the host's own ``deepaas_host.model.v2`` and DEEPaaS's
``deepaas.v2.model``. When both hold the same name, the host's namespace wins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stevedore import NamedExtensionManager

from deepaas_host.errors import PluginLoadError
from deepaas_host.model.online import OnlineModel

__all__ = [
    "HOST_NAMESPACE",
    "LEGACY_NAMESPACE",
    "NAMESPACES",
    "LoadedPlugin",
    "PluginInfo",
    "list_plugins",
    "load_plugin",
    "load_plugins",
    "quiet_legacy_warnings",
]

log = logging.getLogger(__name__)

HOST_NAMESPACE = "deepaas_host.model.v2"
LEGACY_NAMESPACE = "deepaas.v2.model"
NAMESPACES = (HOST_NAMESPACE, LEGACY_NAMESPACE)

REQUIRED = ("get_metadata", "predict")
ONLINE_REQUIRED = ("get_metadata", "build")


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin, known without importing it."""

    name: str
    namespace: str
    target: str
    distribution: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "target": self.target,
            "distribution": self.distribution,
            "version": self.version,
        }


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin whose entry point was imported and, for a class, instantiated."""

    info: PluginInfo
    model: Any


class quiet_legacy_warnings(warnings.catch_warnings):
    """Silence marshmallow's deprecation warnings for DEEPaaS-era idioms.

    ``missing=``, ``description=`` and ``location="form"`` are what DEEPaaS's
    documentation tells plugin authors to write; the host accepts them as-is.
    """

    def __enter__(self) -> None:
        super().__enter__()
        from marshmallow import warnings as mm_warnings

        for name in ("RemovedInMarshmallow4Warning", "ChangedInMarshmallow4Warning"):
            category = getattr(mm_warnings, name, None)
            if category is not None:
                warnings.simplefilter("ignore", category)


def _distributions(namespace: str) -> dict[tuple[str, str], tuple[str, str]]:
    # stevedore's cached entry points carry no distribution; metadata does.
    found = {}
    for ep in importlib.metadata.entry_points(group=namespace):
        dist = ep.dist
        if dist is not None:
            found[(ep.name, ep.value)] = (
                str(dist.metadata["Name"] or dist.name),
                str(dist.version),
            )
    return found


def list_plugins() -> list[PluginInfo]:
    """Every installed plugin, host namespace first, without importing any of them."""
    seen: dict[str, PluginInfo] = {}
    for namespace in NAMESPACES:
        manager: NamedExtensionManager[Any] = NamedExtensionManager(namespace, names=[])
        dists = _distributions(namespace)
        for ep in manager.list_entry_points():
            distribution, version = dists.get((ep.name, ep.value), ("unknown", ""))
            info = PluginInfo(ep.name, namespace, ep.value, distribution, version)
            if ep.name in seen:
                log.warning(
                    "plugin %r in %s is shadowed by the one in %s",
                    ep.name,
                    namespace,
                    seen[ep.name].namespace,
                )
                continue
            seen[ep.name] = info
    return sorted(seen.values(), key=lambda p: p.name)


def _resolve(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def load_plugin(info: PluginInfo) -> LoadedPlugin:
    """Import one plugin; a class is instantiated once. Raises PluginLoadError."""
    try:
        with quiet_legacy_warnings():
            obj = _resolve(info.target)
            if inspect.isclass(obj):
                obj = obj()
    except Exception as exc:
        raise PluginLoadError(
            info.name,
            info.distribution,
            f"cannot be loaded from {info.target!r}: {type(exc).__name__}: {exc}",
        ) from exc
    required = ONLINE_REQUIRED if isinstance(obj, OnlineModel) else REQUIRED
    missing = [m for m in required if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginLoadError(
            info.name,
            info.distribution,
            f"{info.target!r} does not implement {', '.join(missing)}",
        )
    return LoadedPlugin(info, obj)


def load_plugins(
    names: Sequence[str] | None = None,
    *,
    skip_broken: bool = False,
    available: Iterable[PluginInfo] | None = None,
) -> tuple[list[LoadedPlugin], list[PluginLoadError]]:
    """Load the selected plugins (all when ``names`` is empty or None).

    Without ``skip_broken`` the first failure is raised; with it, failures are
    returned next to the plugins that loaded.
    """
    known = {p.name: p for p in (available if available is not None else list_plugins())}
    failed: list[PluginLoadError] = []
    selected = list(known.values())
    if names:
        installed = ", ".join(sorted(known)) or "none"
        failed = [
            PluginLoadError(
                name,
                "not installed",
                f"no such plugin in {' or '.join(NAMESPACES)} (installed: {installed})",
            )
            for name in dict.fromkeys(names)
            if name not in known
        ]
        if failed and not skip_broken:
            raise failed[0]
        for error in failed:
            log.error("skipping broken plugin: %s", error.message)
        selected = [known[n] for n in dict.fromkeys(names) if n in known]
    loaded: list[LoadedPlugin] = []
    for info in selected:
        try:
            loaded.append(load_plugin(info))
        except PluginLoadError as exc:
            if not skip_broken:
                raise
            log.error("skipping broken plugin: %s", exc.message)
            failed.append(exc)
    return loaded, failed
