"""Training jobs: records in the store, execution in the train pool.

A job is recorded before it is acknowledged. Its uploaded files move into the
job's own directory so they still exist when it runs (also after a restart:
queued jobs are queued again at start-up), and that directory is removed when
the job ends, whatever the ending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepaas_host.errors import HostError, JobNotFound, ShuttingDown
from deepaas_host.jobs.pool import CallCancelled, WorkerPool
from deepaas_host.jobs.states import FINAL_STATES, JobStatus
from deepaas_host.model.v2 import UploadedFile
from deepaas_host.store import JobRecord, JobStore

if TYPE_CHECKING:
    from deepaas_host.registry.service import VersionService

__all__ = [
    "INTERRUPTED",
    "TrainingService",
    "arguments_from_record",
    "public_arguments",
]

log = logging.getLogger(__name__)

INTERRUPTED = "Interrupted: the host stopped while this job was running."
_FILE_MARK = "$upload"
_PROGRESS_INTERVAL = 0.25


def _to_record_value(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        return {_FILE_MARK: value._asdict()}
    if isinstance(value, list | tuple):
        return [_to_record_value(v) for v in value]
    return value


def _from_record_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_FILE_MARK}:
        return UploadedFile(**value[_FILE_MARK])
    if isinstance(value, list):
        return [_from_record_value(v) for v in value]
    return value


def arguments_from_record(arguments: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a stored job, uploaded files included."""
    return {k: _from_record_value(v) for k, v in arguments.items()}


def public_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """Stored arguments as shown to clients: files by name, never by server path."""

    def show(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {_FILE_MARK}:
            f = value[_FILE_MARK]
            return {"file": f["original_filename"], "content_type": f["content_type"]}
        if isinstance(value, list):
            return [show(v) for v in value]
        return value

    return {k: show(v) for k, v in arguments.items()}


class _Serial:
    """Store writes of one job, applied in the order they were issued."""

    def __init__(self) -> None:
        self._last: asyncio.Task[None] | None = None

    def add(self, make: Callable[[], Awaitable[None]]) -> None:
        previous = self._last

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            await make()

        self._last = asyncio.ensure_future(run())

    async def flush(self) -> None:
        if self._last is not None:
            with contextlib.suppress(Exception):
                await self._last


class TrainingService:
    """Accepts, runs, reports and cancels training jobs."""

    def __init__(
        self,
        store: JobStore,
        pool: WorkerPool,
        jobs_dir: Path,
        registry: VersionService | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.pool = pool
        self.jobs_dir = jobs_dir
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    async def recover(self, served: set[str]) -> None:
        """At start-up: fail jobs a dead host left running, queue the queued ones again."""
        interrupted = await self.store.interrupt_running(INTERRUPTED)
        if interrupted:
            log.warning("%d training job(s) were interrupted by the last shutdown", interrupted)
        pending = await self.store.pending()
        # Directories of jobs that are not queued any more: the dead host was
        # running them (or was killed while removing them).
        queued = {record.id for record in pending}
        if self.jobs_dir.is_dir():
            for leftover in self.jobs_dir.iterdir():
                if leftover.name not in queued:
                    self._remove_dir(leftover.name)
        for record in pending:
            if record.model in served:
                self._start(record)
            else:
                await self.store.finish(
                    record.id,
                    JobStatus.ERROR,
                    error=f"Model {record.model!r} is no longer served by this host.",
                )
                self._remove_dir(record.id)

    async def submit(self, model: str, kwargs: dict[str, Any], uploads: list[Path]) -> JobRecord:
        """Record a job, move its uploads next to it and queue it."""
        job_id = uuid.uuid4().hex
        job_dir = self.jobs_dir / job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        try:
            moved = {key: self._adopt(value, job_dir) for key, value in kwargs.items()}
            stored = {k: _to_record_value(v) for k, v in moved.items()}
            record = await self.store.create(model, stored, job_id=job_id)
        except BaseException:
            self._remove_dir(job_id)
            raise
        finally:
            for path in uploads:
                path.unlink(missing_ok=True)
        self._start(record)
        return record

    async def get(self, model: str, job_id: str) -> JobRecord:
        record = await self.store.get(model, job_id)
        if record is None:
            raise JobNotFound(model, job_id)
        return record

    async def cancel(self, model: str, job_id: str) -> JobRecord:
        record = await self.get(model, job_id)
        if record.status in FINAL_STATES:
            return record
        self.pool.cancel(job_id)
        record = await self.store.finish(job_id, JobStatus.CANCELLED, error="Cancelled on request.")
        log.info("training job %s of %s cancelled", job_id, model)
        return record

    async def close(self) -> None:
        """Stop: running jobs are recorded as interrupted, queued ones stay queued."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.store.interrupt_running(INTERRUPTED)

    # internals ----------------------------------------------------------------

    def _adopt(self, value: Any, job_dir: Path) -> Any:
        if isinstance(value, UploadedFile):
            target = job_dir / f"{value.name}-{Path(value.filename).name}"
            shutil.move(value.filename, target)
            return value._replace(filename=str(target))
        if isinstance(value, list):
            return [self._adopt(v, job_dir) for v in value]
        return value

    def _start(self, record: JobRecord) -> None:
        task = asyncio.create_task(self._run(record))
        self._tasks[record.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(record.id, None))

    def _remove_dir(self, job_id: str) -> None:
        shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)

    async def _run(self, record: JobRecord) -> None:
        job_id, model = record.id, record.model
        writes = _Serial()
        last_progress = 0.0

        def started() -> None:
            log.info("training job %s of %s started", job_id, model)
            began = self.store.now()  # now, not when the queued write gets to run
            writes.add(lambda: self.store.mark_running(job_id, started_at=began))

        def progress(fraction: float | None, message: str) -> None:
            nonlocal last_progress
            now = time.monotonic()
            if now - last_progress < _PROGRESS_INTERVAL and (fraction or 0) < 1:
                return
            last_progress = now
            writes.add(lambda: self.store.set_progress(job_id, fraction, message))

        keep_dir = False
        artifacts = self.jobs_dir / job_id / "artifact"
        try:
            await asyncio.to_thread(artifacts.mkdir, parents=True, exist_ok=True)
            reply = await self.pool.call(
                model,
                "train",
                arguments_from_record(record.arguments),
                tag=job_id,
                on_start=started,
                on_progress=progress,
                artifact_dir=str(artifacts),
            )
            # Taken now: the next queued job may be recorded as started while
            # this one's last progress write is still pending.
            ended = self.store.now()
            await writes.flush()
            if self.registry is not None:
                # Registered before the job reads done: a client that sees
                # "done" finds the version.
                await self.registry.register_training(model, job_id, artifacts, reply.value)
            await self.store.finish(job_id, JobStatus.DONE, result=reply.value, finished_at=ended)
            log.info("training job %s of %s done", job_id, model)
        except CallCancelled:
            await writes.flush()
            await self.store.finish(job_id, JobStatus.CANCELLED, error="Cancelled on request.")
        except (ShuttingDown, asyncio.CancelledError):
            # Queued jobs stay queued (and keep their files) for the next start.
            await writes.flush()
            current = await self.store.get(model, job_id)
            keep_dir = current is not None and current.status is JobStatus.QUEUED
            if not keep_dir:
                await self.store.finish(job_id, JobStatus.ERROR, error=INTERRUPTED)
        except HostError as exc:
            ended = self.store.now()
            await writes.flush()
            await self.store.finish(job_id, JobStatus.ERROR, error=exc.message, finished_at=ended)
            log.warning("training job %s of %s failed: %s", job_id, model, exc.message)
        except Exception as exc:  # a bug of ours must still end the job
            log.exception("training job %s of %s", job_id, model)
            await self.store.finish(job_id, JobStatus.ERROR, error=f"{type(exc).__name__}: {exc}")
        finally:
            if not keep_dir:
                self._remove_dir(job_id)
