"""Training job records and the store that keeps them across restarts."""

from __future__ import annotations

import builtins
import dataclasses
import json
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from deepaas_host.jobs.states import FINAL_STATES, JobStatus
from deepaas_host.store.db import EngineStore, create_schema, iso_utc, jobs_table, open_engine

__all__ = ["JobRecord", "JobStore"]

_FINAL_VALUES = tuple(sorted(status.value for status in FINAL_STATES))


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """One training job as stored; times are unix seconds."""

    id: str
    model: str
    status: JobStatus
    arguments: dict[str, Any]
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    progress: float | None = None
    progress_message: str = ""
    result: Any = None
    error: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds spent running: until it finished, or until now while running."""
        if self.started_at is None:
            return None
        if self.finished_at is not None:
            return self.finished_at - self.started_at
        if self.status is JobStatus.RUNNING:
            return max(time.time() - self.started_at, 0.0)
        return None

    def to_dict(self) -> dict[str, Any]:
        """The record as the API returns it."""
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status.value,
            "arguments": self.arguments,
            "created": iso_utc(self.created_at),
            "started": iso_utc(self.started_at),
            "finished": iso_utc(self.finished_at),
            "duration": self.duration,
            "progress": self.progress,
            "progress_message": self.progress_message,
            "result": self.result,
            "error": self.error,
        }


def _json_default(value: Any) -> Any:
    # Array-likes (numpy and friends) keep their values; anything else is
    # stored as its text rather than failing the job's bookkeeping.
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        try:
            return tolist()
        except Exception:
            pass
    return str(value)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError, RecursionError):
        # Circular references, non-string keys and the like.
        return json.dumps(repr(value))


def _record(row: sa.RowMapping) -> JobRecord:
    result = row["result"]
    return JobRecord(
        id=row["id"],
        model=row["model"],
        status=JobStatus(row["status"]),
        arguments=json.loads(row["arguments"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        result=None if result is None else json.loads(result),
        error=row["error"],
    )


_COLUMNS = tuple(column for column in jobs_table.c if column.name != "seq")


class JobStore(EngineStore):
    """Training job records in a SQL database.

    Open one with :meth:`open` (it owns its engine and creates the tables), or
    build one on an engine the caller owns and has run
    :func:`~deepaas_host.store.db.create_schema` on. Either way it is an async
    context manager::

        async with await JobStore.open(sqlite_url(data_dir)) as store:
            job = await store.create("my-model", {"epochs": 3})

    Per model at most ``history_limit`` jobs in a final state are kept; the
    ones that finished first are deleted. Queued and running jobs are never
    deleted.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        history_limit: int = 100,
        clock: Callable[[], float] = time.time,
        owns_engine: bool = False,
    ) -> None:
        if history_limit < 0:
            raise ValueError(f"history_limit must be >= 0, not {history_limit}")
        super().__init__(engine, owns_engine=owns_engine)
        self._history_limit = history_limit
        self._clock = clock

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        history_limit: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> JobStore:
        """Connect to ``url`` and create the tables if needed."""
        engine = await open_engine(url)
        try:
            await create_schema(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, history_limit=history_limit, clock=clock, owns_engine=True)

    @property
    def history_limit(self) -> int:
        return self._history_limit

    def now(self) -> float:
        """The current time on the store's clock (unix seconds)."""
        return self._clock()

    async def create(
        self, model: str, arguments: dict[str, Any], *, job_id: str | None = None
    ) -> JobRecord:
        """Record a new queued job for ``model`` (``job_id`` generated unless given)."""
        arguments_json = _dumps(arguments)
        record = JobRecord(
            id=job_id or uuid.uuid4().hex,
            model=model,
            status=JobStatus.QUEUED,
            # What a later read returns: JSON types only.
            arguments=json.loads(arguments_json),
            created_at=self._clock(),
        )
        async with self._begin() as conn:
            await conn.execute(
                jobs_table.insert().values(
                    id=record.id,
                    model=model,
                    status=record.status.value,
                    arguments=arguments_json,
                    created_at=record.created_at,
                    progress_message="",
                )
            )
            await self._prune(conn, model)
        return record

    async def get(self, model: str, job_id: str) -> JobRecord | None:
        """The job ``job_id`` of ``model``, or None (also if it is another model's)."""
        query = sa.select(*_COLUMNS).where(jobs_table.c.id == job_id, jobs_table.c.model == model)
        async with self._connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def list(self, model: str, *, limit: int | None = None) -> builtins.list[JobRecord]:
        """Jobs of ``model``, newest first, at most ``limit`` of them."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        query = (
            sa.select(*_COLUMNS)
            .where(jobs_table.c.model == model)
            .order_by(jobs_table.c.seq.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        return await self._fetch(query)

    async def pending(self) -> builtins.list[JobRecord]:
        """Queued jobs of every model, oldest first, to queue again at start-up."""
        query = (
            sa.select(*_COLUMNS)
            .where(jobs_table.c.status == JobStatus.QUEUED.value)
            .order_by(jobs_table.c.seq)
        )
        return await self._fetch(query)

    async def mark_running(self, job_id: str, *, started_at: float | None = None) -> None:
        """Mark a queued job as running from ``started_at`` (default: now).

        A job that is no longer queued (cancelled meanwhile, say) is left as it is.
        """
        query = (
            jobs_table.update()
            .where(
                jobs_table.c.id == job_id,
                jobs_table.c.status == JobStatus.QUEUED.value,
            )
            .values(
                status=JobStatus.RUNNING.value,
                started_at=self._clock() if started_at is None else started_at,
            )
        )
        async with self._begin() as conn:
            await conn.execute(query)

    async def set_progress(self, job_id: str, fraction: float | None, message: str) -> None:
        """Store the last progress report; ignored once the job is final.

        ``fraction`` is clamped to [0, 1]; NaN counts as unknown (None).
        """
        if fraction is not None:
            fraction = float(fraction)
            fraction = None if math.isnan(fraction) else min(max(fraction, 0.0), 1.0)
        query = (
            jobs_table.update()
            .where(
                jobs_table.c.id == job_id,
                jobs_table.c.status.not_in(_FINAL_VALUES),
            )
            .values(progress=fraction, progress_message=str(message))
        )
        async with self._begin() as conn:
            await conn.execute(query)

    async def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: Any = None,
        error: str | None = None,
        finished_at: float | None = None,
        started_at: float | None = None,
    ) -> JobRecord:
        """Put the job in the final ``status`` and return the stored record.

        A job that is already final keeps its state: a cancelled job stays
        cancelled when the worker's result arrives afterwards. ``finished_at``
        is when the job ended (see :meth:`now`); by default, now. ``started_at``
        is recorded if no start was (its write failed, say).

        Raises ``ValueError`` if ``status`` is not final and ``KeyError`` if
        there is no such job (never created, or pruned from the history).
        """
        status = JobStatus(status)
        if status not in FINAL_STATES:
            raise ValueError(f"{status.value!r} is not a final job state")
        update = (
            jobs_table.update()
            .where(
                jobs_table.c.id == job_id,
                jobs_table.c.status.not_in(_FINAL_VALUES),
            )
            .values(
                status=status.value,
                finished_at=self._clock() if finished_at is None else finished_at,
                result=None if result is None else _dumps(result),
                error=error,
            )
        )
        if started_at is not None:
            update = update.values(started_at=sa.func.coalesce(jobs_table.c.started_at, started_at))
        select = sa.select(*_COLUMNS).where(jobs_table.c.id == job_id)
        async with self._begin() as conn:
            changed = (await conn.execute(update)).rowcount
            row = (await conn.execute(select)).mappings().first()
            if row is None:
                raise KeyError(job_id)
            record = _record(row)
            if changed:
                await self._prune(conn, record.model)
        return record

    async def interrupt_running(self, message: str) -> int:
        """At start-up: fail every job left running by a previous host; count them."""
        query = (
            jobs_table.update()
            .where(jobs_table.c.status == JobStatus.RUNNING.value)
            .values(status=JobStatus.ERROR.value, finished_at=self._clock(), error=message)
        )
        async with self._begin() as conn:
            count = (await conn.execute(query)).rowcount
            if count:
                models = await conn.execute(sa.select(jobs_table.c.model).distinct())
                for model in models.scalars().all():
                    await self._prune(conn, model)
        return count

    async def _fetch(self, query: sa.Select[Any]) -> builtins.list[JobRecord]:
        async with self._connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_record(row) for row in rows]

    async def _prune(self, conn: AsyncConnection, model: str) -> None:
        final = sa.and_(jobs_table.c.model == model, jobs_table.c.status.in_(_FINAL_VALUES))
        kept = (
            sa.select(jobs_table.c.seq)
            .where(final)
            .order_by(
                sa.func.coalesce(jobs_table.c.finished_at, jobs_table.c.created_at).desc(),
                jobs_table.c.seq.desc(),
            )
            .limit(self._history_limit)
        )
        await conn.execute(jobs_table.delete().where(final, jobs_table.c.seq.not_in(kept)))
