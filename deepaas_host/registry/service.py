"""Versions of served models: upload, register from training, load, serve, delete."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from deepaas_host.errors import (
    ArgumentError,
    ArtifactError,
    HostError,
    ModelAlreadyExists,
    ModelNotFound,
    VersionLoadError,
    VersionNotFound,
)
from deepaas_host.jobs.messages import VersionRef
from deepaas_host.jobs.pool import WorkerPool
from deepaas_host.model.wrapper import ModelWrapper
from deepaas_host.registry.artifacts import ArtifactStore
from deepaas_host.store.errors import translating
from deepaas_host.store.versions import (
    VERSION_NAME,
    VersionRecord,
    VersionSource,
    VersionStore,
)

__all__ = ["VersionService"]

log = logging.getLogger(__name__)


class VersionService:
    """The registry of every served model's versions.

    Per model at most ``history_limit`` versions produced by training are kept
    besides the default and the pinned ones: registering one more deletes the
    oldest (record and artifact). Uploaded versions are never pruned.
    """

    def __init__(
        self,
        store: VersionStore,
        artifacts: ArtifactStore,
        models: dict[str, ModelWrapper],
        pool: WorkerPool | None,
        *,
        history_limit: int = 20,
    ) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, not {history_limit}")
        self.store = store
        self.artifacts = artifacts
        self.models = models
        self.pool = pool
        self.history_limit = history_limit
        self._lock = asyncio.Lock()  # name allocation and replacement are read-modify-write
        # Default version per model, so a predict costs no query; every change
        # goes through this service, which forgets the entry.
        self._defaults: dict[str, VersionRecord | None] = {}

    async def default(self, model: str) -> VersionRecord | None:
        if model not in self._defaults:
            self._defaults[model] = await self.store.default(model)
        return self._defaults[model]

    def require_model(self, name: str) -> ModelWrapper:
        model = self.models.get(name)
        if model is None:
            raise ModelNotFound(name)
        return model

    async def get(self, model: str, name: str) -> VersionRecord:
        self.require_model(model)
        record = await self.store.get(model, name)
        if record is None:
            raise VersionNotFound(model, name)
        return record

    async def list(self, model: str) -> list[VersionRecord]:
        self.require_model(model)
        return await self.store.list(model)

    async def default_name(self, model: str) -> str | None:
        record = await self.default(model)
        return record.name if record else None

    def loaded(self, model: str) -> set[str]:
        return self.pool.loaded_versions(model) if self.pool is not None else set()

    async def upload(
        self,
        model: str,
        source: Path,
        *,
        filename: str,
        engine: str,
        name: str | None = None,
        description: str | None = None,
        force: bool = False,
    ) -> tuple[VersionRecord, bool]:
        """Store an uploaded artifact as a version; returns (record, created).

        For a model that can load versions the artifact is loaded in a worker
        first: one it cannot load is refused (422) and nothing is stored.
        """
        wrapper = self.require_model(model)
        loadable = wrapper.supports_versions and self.pool is not None
        stored = await self.artifacts.put(model, source, keep_local=loadable)
        try:
            async with self._lock:
                name = name or await self.store.next_name(model)
                current = await self.store.get(model, name)
                if current is not None and not force:
                    raise ModelAlreadyExists(model, name)
                if loadable:
                    assert self.pool is not None
                    ref = await self._ref(name, stored.key, stored.sha256)
                    try:
                        await self.pool.call(model, "load", {}, version=ref)
                    except VersionLoadError as exc:
                        raise ArgumentError(
                            f"Model {model!r} cannot load this file as version {name!r}.",
                            details={"file": [exc.message]},
                        ) from exc
                if current is not None:
                    record = await self.store.replace(
                        current,
                        filename=filename,
                        key=stored.key,
                        size=stored.size,
                        sha256=stored.sha256,
                        engine=engine,
                        description=description,
                    )
                    await self._discard(current.key, current.sha256)
                    self._defaults.pop(model, None)
                    return record, False
                record = await self.store.add(
                    model,
                    name,
                    engine=engine,
                    filename=filename,
                    key=stored.key,
                    size=stored.size,
                    sha256=stored.sha256,
                    source=VersionSource.UPLOAD,
                    description=description,
                )
                self._defaults.pop(model, None)
                return record, True
        except BaseException:
            await self._discard(stored.key, stored.sha256)
            raise

    async def register_training(
        self, model: str, job_id: str, artifact_dir: Path, metrics: Any
    ) -> VersionRecord | None:
        """Make what a training job wrote into a version (None if it wrote nothing),
        then prune the model's trained versions beyond the history limit."""
        wrapper = self.require_model(model)
        with translating(where=f"The job directory {artifact_dir.parent}"):
            files = await asyncio.to_thread(_files_in, artifact_dir)
            if not files:
                return None
            if len(files) == 1:
                source, filename = files[0], files[0].name
            else:
                source = Path(tempfile.mkstemp(dir=artifact_dir.parent, suffix=".zip")[1])
                await asyncio.to_thread(_zip_dir, artifact_dir, source)
                filename = f"{model}.zip"
        stored = await self.artifacts.put(
            model, source, keep_local=wrapper.supports_versions and self.pool is not None
        )
        try:
            async with self._lock:
                name = _plugin_version_name(wrapper, job_id, metrics)
                name = name or await self.store.next_name(model)
                record = await self.store.add(
                    model,
                    name,
                    engine=str(getattr(wrapper.plugin, "engine", None) or "custom"),
                    filename=filename,
                    key=stored.key,
                    size=stored.size,
                    sha256=stored.sha256,
                    source=VersionSource.TRAINING,
                    job_id=job_id,
                    metrics=metrics if isinstance(metrics, dict) else None,
                )
                self._defaults.pop(model, None)
        except BaseException:
            await self._discard(stored.key, stored.sha256)
            raise
        log.info("training job %s registered version %s of %s", job_id, name, model)
        await self._prune(model)
        return record

    async def _prune(self, model: str) -> None:
        """Delete trained versions beyond the history limit; a failure is logged only
        (the next registration tries again)."""
        try:
            async with self._lock:
                spare = await self.default_name(model)
                surplus = await self.store.surplus_trained(model, self.history_limit, spare=spare)
                for record in surplus:
                    await self._remove(record)
                    log.info(
                        "pruned version %s of %s (more than %d trained versions)",
                        record.name,
                        model,
                        self.history_limit,
                    )
        except Exception:
            log.exception("pruning the trained versions of %s failed", model)

    async def by_job(self, model: str, job_id: str) -> VersionRecord | None:
        for record in await self.store.list(model):
            if record.job_id == job_id:
                return record
        return None

    async def delete(self, model: str, name: str) -> VersionRecord:
        record = await self.get(model, name)
        await self._remove(record)
        return record

    async def _remove(self, record: VersionRecord) -> None:
        if self.pool is not None:
            await self.pool.broadcast(record.model, "unload", {"version": record.name})
        await self.store.delete(record.model, record.name)
        self._defaults.pop(record.model, None)
        await self._discard(record.key, record.sha256)

    async def pin(self, model: str, name: str) -> VersionRecord:
        """Keep a version through the pruning of trained versions."""
        return await self._set_pinned(model, name, True)

    async def unpin(self, model: str, name: str) -> VersionRecord:
        """Let a trained version be pruned again (the next training may prune it)."""
        return await self._set_pinned(model, name, False)

    async def _set_pinned(self, model: str, name: str, pinned: bool) -> VersionRecord:
        self.require_model(model)
        async with self._lock:  # not while a pruning picks what to delete
            record = await self.store.set_pinned(model, name, pinned)
        if record is None:
            raise VersionNotFound(model, name)
        self._defaults.pop(model, None)
        return record

    async def _discard(self, key: str, sha256: str) -> None:
        """Delete an artifact no record uses any more, and its local copy unless shared."""
        await self.artifacts.delete(key)
        try:
            for model in self.models:
                if any(r.sha256 == sha256 for r in await self.store.list(model)):
                    return
        except HostError as exc:  # keep the local copy: a record may still use it
            log.warning("cannot tell whether %s is still used: %s", sha256, exc.message)
            return
        await self.artifacts.forget(sha256)

    async def _ref(self, name: str, key: str, sha256: str) -> VersionRef:
        try:
            path = await self.artifacts.local_path(key, sha256, label=f"version {name!r}")
        except ArtifactError as exc:
            raise VersionLoadError(exc.message) from exc
        return VersionRef(name, str(path), sha256)

    async def ref(self, record: VersionRecord) -> VersionRef:
        """What a worker needs to load ``record``: a local file (fetched if the store is
        remote) and its checksum."""
        return await self._ref(record.name, record.key, record.sha256)

    def _require_loadable(self, model: str) -> None:
        if not self.require_model(model).supports_versions:
            raise ArgumentError(
                f"Model {model!r} cannot serve versions.",
                details={"version": [f"Model {model!r} has no load(); versions are stored only."]},
            )

    async def load(self, model: str, name: str) -> VersionRecord:
        self._require_loadable(model)
        record = await self.get(model, name)
        if self.pool is not None:
            await self.pool.broadcast(model, "load", {}, version=await self.ref(record))
        return record

    async def unload(self, model: str, name: str) -> VersionRecord:
        record = await self.get(model, name)
        if self.pool is not None:
            await self.pool.broadcast(model, "unload", {"version": name})
        return record

    async def set_default(self, model: str, name: str) -> VersionRecord:
        record = await self.get(model, name)
        await self.store.set_default(model, name)
        self._defaults.pop(model, None)
        return record

    async def for_predict(self, model: str, name: str | None) -> VersionRef | None:
        """The version a predict uses: the one asked for, else the default, else none."""
        if name is not None:
            self._require_loadable(model)
            return await self.ref(await self.get(model, name))
        if not self.require_model(model).supports_versions:
            return None
        record = await self.default(model)
        return await self.ref(record) if record is not None else None


def _files_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _zip_dir(directory: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(directory))
    shutil.rmtree(directory, ignore_errors=True)


def _plugin_version_name(wrapper: ModelWrapper, job_id: str, metrics: Any) -> str | None:
    hook = getattr(wrapper.plugin, "generate_version_id", None)
    if not callable(hook):
        return None
    try:
        name = hook(job_id=job_id, metrics=metrics)
    except Exception:
        log.exception("generate_version_id of %s raised; using a generated name", wrapper.name)
        return None
    if not name:
        return None
    if not VERSION_NAME.fullmatch(str(name)):
        log.warning(
            "generate_version_id of %s returned %r, which is no version name "
            "(letters, digits and _.+- up to 128); using a generated name",
            wrapper.name,
            name,
        )
        return None
    return str(name)
