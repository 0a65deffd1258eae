"""Training jobs: records in the store, execution in the train pool.

A job is recorded before it is acknowledged. Its uploaded files move into the
job's own directory so they still exist when it runs (also after a restart:
queued jobs are queued again at start-up, in the order they were created), and
that directory is removed when the job ends, whatever the ending.

When the store fails (a full disk, say):

- a job that cannot be recorded is refused (``InsufficientStorage`` or
  ``StorageUnavailable``), leaving no directory and no upload behind;
- a running job whose start or progress cannot be written keeps running;
- a job whose final state cannot be written reads ``error`` (saying so, and
  why) from memory while the write is retried until it succeeds; if the host
  stops first, the next start finds the job running and reports it interrupted.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepaas_host.errors import (
    HostError,
    InsufficientStorage,
    JobNotFound,
    ShuttingDown,
    StorageUnavailable,
)
from deepaas_host.jobs.pool import CallCancelled, WorkerPool
from deepaas_host.jobs.states import FINAL_STATES, JobStatus
from deepaas_host.model.v2 import UploadedFile
from deepaas_host.store import JobRecord, JobStore
from deepaas_host.store.errors import storage_error

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
CANCELLED = "Cancelled on request."
_FILE_MARK = "$upload"
_PROGRESS_INTERVAL = 0.25
# Retries of a final state the store did not take: soon, then every few seconds.
_RETRY_FIRST = 0.5
_RETRY_MAX = 5.0
_STORAGE_ERRORS = (InsufficientStorage, StorageUnavailable)


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
    """Store writes of one job, applied in the order they were issued.

    A write that fails is reported to ``failed`` and skipped: the job goes on.
    """

    def __init__(self, failed: Callable[[HostError], None]) -> None:
        self._last: asyncio.Task[None] | None = None
        self._failed = failed

    def add(self, make: Callable[[], Awaitable[None]]) -> None:
        previous = self._last

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                await make()
            except _STORAGE_ERRORS as exc:
                self._failed(exc)

        self._last = asyncio.ensure_future(run())

    async def flush(self) -> None:
        if self._last is not None:
            with contextlib.suppress(Exception):
                await self._last


@dataclasses.dataclass
class _Ending:
    """How a job ended, kept until the store has it."""

    status: JobStatus
    finished_at: float
    result: Any = None
    error: str | None = None
    started_at: float | None = None

    def describe(self) -> str:
        return self.status.value if self.error is None else f"{self.status.value}: {self.error}"


@dataclasses.dataclass
class _Unsaved:
    """A job whose final state the store did not take: shown from memory meanwhile."""

    ending: _Ending
    shown: JobRecord
    retry: asyncio.Task[None] | None = None


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
        self._unsaved: dict[str, _Unsaved] = {}
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
        for record in pending:  # oldest first: they queue in the order they were created
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
        """Record a job, move its uploads next to it and queue it.

        Raises ``InsufficientStorage`` or ``StorageUnavailable`` when the job cannot
        be recorded; nothing of it is left behind then.
        """
        job_id = uuid.uuid4().hex
        job_dir = self.jobs_dir / job_id
        try:
            try:
                job_dir.mkdir(parents=True, exist_ok=True)
                moved = {key: self._adopt(value, job_dir) for key, value in kwargs.items()}
            except OSError as exc:
                raise _as_storage_error(exc, f"The job directory {job_dir}") from exc
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
        unsaved = self._unsaved.get(job_id)
        if unsaved is not None and unsaved.shown.model == model:
            return unsaved.shown
        record = await self.store.get(model, job_id)
        if record is None:
            raise JobNotFound(model, job_id)
        return record

    async def list(self, model: str) -> builtins.list[JobRecord]:
        """Jobs of ``model``, newest first, as :meth:`get` shows them."""
        return [self._shown(record) for record in await self.store.list(model)]

    async def cancel(self, model: str, job_id: str) -> JobRecord:
        record = await self.get(model, job_id)
        if record.status in FINAL_STATES:
            return record
        self.pool.cancel(job_id)
        ending = _Ending(JobStatus.CANCELLED, self.store.now(), error=CANCELLED)
        shown = await self._save_final(record, ending)
        log.info("training job %s of %s cancelled", job_id, model)
        return shown

    async def close(self) -> None:
        """Stop: running jobs are recorded as interrupted, queued ones stay queued."""
        self._closing = True
        retries = [u.retry for u in self._unsaved.values() if u.retry is not None]
        tasks = [*self._tasks.values(), *retries]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for job_id, unsaved in builtins.list(self._unsaved.items()):
            if await self._write_final(job_id, unsaved.ending):
                del self._unsaved[job_id]
        try:
            await self.store.interrupt_running(INTERRUPTED)
        except _STORAGE_ERRORS as exc:
            # The next start marks them: it finds them running.
            log.error("cannot record the running training jobs as interrupted: %s", exc.message)
        for job_id, unsaved in self._unsaved.items():
            log.error(
                "training job %s ended (%s), but the host stops before that could be "
                "saved; the next start finds the job as last saved (running: interrupted)",
                job_id,
                unsaved.ending.describe(),
            )

    # internals ----------------------------------------------------------------

    def _shown(self, record: JobRecord) -> JobRecord:
        unsaved = self._unsaved.get(record.id)
        return unsaved.shown if unsaved is not None else record

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
        live = record  # what this job is, as far as the host knows: for _Unsaved
        warned = False

        def write_failed(exc: HostError) -> None:
            nonlocal warned
            if not warned:
                warned = True
                log.warning(
                    "training job %s of %s goes on, but its progress cannot be saved: %s",
                    job_id,
                    model,
                    exc.message,
                )

        writes = _Serial(write_failed)
        last_progress = 0.0

        def started() -> None:
            nonlocal live
            log.info("training job %s of %s started", job_id, model)
            began = self.store.now()  # now, not when the queued write gets to run
            live = dataclasses.replace(live, status=JobStatus.RUNNING, started_at=began)
            writes.add(lambda: self.store.mark_running(job_id, started_at=began))

        def progress(fraction: float | None, message: str) -> None:
            nonlocal last_progress, live
            now = time.monotonic()
            if now - last_progress < _PROGRESS_INTERVAL and (fraction or 0) < 1:
                return
            last_progress = now
            live = dataclasses.replace(live, progress=fraction, progress_message=str(message))
            writes.add(lambda: self.store.set_progress(job_id, fraction, message))

        keep_dir = False
        ending: _Ending | None = None
        artifacts = self.jobs_dir / job_id / "artifact"
        try:
            # Nothing may be awaited before the call enters the pool's queue, so jobs
            # queue in the order their tasks were created: the order the jobs were
            # created (recover starts them oldest first). One mkdir is cheap enough
            # to make on the loop.
            try:
                artifacts.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _as_storage_error(exc, f"The job directory {artifacts.parent}") from exc
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
            # Registered before the job reads done: a client that sees "done"
            # finds the version.
            failure = await self._register(model, job_id, artifacts, reply.value)
            if failure is None:
                ending = _Ending(JobStatus.DONE, ended, result=reply.value)
                log.info("training job %s of %s done", job_id, model)
            else:
                ending = _Ending(JobStatus.ERROR, ended, result=reply.value, error=failure)
        except CallCancelled:
            ending = _Ending(JobStatus.CANCELLED, self.store.now(), error=CANCELLED)
        except (ShuttingDown, asyncio.CancelledError):
            # Queued jobs stay queued (and keep their files) for the next start.
            keep_dir = live.status is JobStatus.QUEUED
            if not keep_dir:
                ending = _Ending(JobStatus.ERROR, self.store.now(), error=INTERRUPTED)
        except HostError as exc:
            ending = _Ending(JobStatus.ERROR, self.store.now(), error=exc.message)
            log.warning("training job %s of %s failed: %s", job_id, model, exc.message)
        except Exception as exc:  # a bug of ours must still end the job
            log.exception("training job %s of %s", job_id, model)
            ending = _Ending(
                JobStatus.ERROR, self.store.now(), error=f"{type(exc).__name__}: {exc}"
            )
        finally:
            await writes.flush()
            if ending is not None:
                ending.started_at = live.started_at
                await self._save_final(live, ending)
            if not keep_dir:
                self._remove_dir(job_id)

    async def _register(self, model: str, job_id: str, artifacts: Path, metrics: Any) -> str | None:
        """Register what the job wrote as a version; why it failed, or None."""
        if self.registry is None:
            return None
        try:
            await self.registry.register_training(model, job_id, artifacts, metrics)
        except Exception as exc:
            why = exc.message if isinstance(exc, HostError) else f"{type(exc).__name__}: {exc}"
            log.error(
                "training job %s of %s: its version cannot be registered: %s", job_id, model, why
            )
            return f"Training finished, but its version could not be registered: {why}"
        return None

    async def _write_final(self, job_id: str, ending: _Ending) -> bool:
        """Write the job's final state; False if the store did not take it."""
        try:
            await self.store.finish(
                job_id,
                ending.status,
                result=ending.result,
                error=ending.error,
                finished_at=ending.finished_at,
                started_at=ending.started_at,
            )
        except _STORAGE_ERRORS:
            return False
        except KeyError:  # deleted from the history meanwhile: nothing left to write
            pass
        return True

    async def _save_final(self, live: JobRecord, ending: _Ending) -> JobRecord:
        """Record how the job ended; what a client sees of it now."""
        job_id = live.id
        if job_id in self._unsaved:  # an ending is waiting for the store already
            return self._unsaved[job_id].shown
        try:
            return await self.store.finish(
                job_id,
                ending.status,
                result=ending.result,
                error=ending.error,
                finished_at=ending.finished_at,
                started_at=ending.started_at,
            )
        except KeyError:
            return dataclasses.replace(live, status=ending.status, error=ending.error)
        except _STORAGE_ERRORS as exc:
            if job_id in self._unsaved:  # the other ending (cancel or run) got here first
                return self._unsaved[job_id].shown
            shown = dataclasses.replace(
                live,
                status=JobStatus.ERROR,
                finished_at=ending.finished_at,
                result=None,
                error=(
                    f"This job ended ({ending.describe()}), but its state could not be "
                    f"saved ({exc.name}: {exc.message}); the host keeps trying to save it."
                ),
            )
            unsaved = _Unsaved(ending, shown)
            self._unsaved[job_id] = unsaved
            log.error(
                "training job %s of %s ended (%s) but its state could not be saved: %s",
                job_id,
                live.model,
                ending.describe(),
                exc.message,
            )
            if not self._closing:
                unsaved.retry = asyncio.create_task(self._retry_final(job_id, unsaved))
            return shown

    async def _retry_final(self, job_id: str, unsaved: _Unsaved) -> None:
        delay = _RETRY_FIRST
        while True:
            await asyncio.sleep(delay)
            if await self._write_final(job_id, unsaved.ending):
                self._unsaved.pop(job_id, None)
                log.info("the final state of training job %s is saved", job_id)
                return
            delay = min(delay * 2, _RETRY_MAX)


def _as_storage_error(exc: OSError, where: str) -> HostError:
    error = storage_error(exc, where=where)
    assert error is not None  # every OSError is a storage failure
    return error
