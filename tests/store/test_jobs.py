"""JobStore against real databases: a SQLite file in tmp_path and PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import pytest

from deepaas_host.jobs.states import JobStatus
from deepaas_host.store import JobRecord, JobStore, jobs_table, sqlite_url

from .conftest import Clock


@pytest.mark.asyncio
async def test_create_get_and_list_newest_first(db_url: str, clock: Clock) -> None:
    async with await JobStore.open(db_url, clock=clock) as store:
        # Same timestamp for all three: the order must come from insertion.
        first = await store.create("alpha", {"epochs": 1})
        second = await store.create("alpha", {"epochs": 2})
        third = await store.create("alpha", {"epochs": 3})
        other = await store.create("beta", {})

        assert first.status is JobStatus.QUEUED
        assert first.created_at == clock.now
        assert len({first.id, second.id, third.id, other.id}) == 4
        assert await store.get("alpha", second.id) == second

        listed = await store.list("alpha")
        assert [job.id for job in listed] == [third.id, second.id, first.id]
        assert [job.arguments["epochs"] for job in listed] == [3, 2, 1]
        limited = await store.list("alpha", limit=2)
        assert [job.id for job in limited] == [third.id, second.id]
        assert await store.list("alpha", limit=0) == []
        assert [job.id for job in await store.list("beta")] == [other.id]
        assert await store.list("gamma") == []
        with pytest.raises(ValueError):
            await store.list("alpha", limit=-1)


@pytest.mark.asyncio
async def test_get_with_the_wrong_model_or_id_is_none(db_url: str) -> None:
    async with await JobStore.open(db_url) as store:
        job = await store.create("alpha", {})
        assert await store.get("beta", job.id) is None
        assert await store.get("alpha", "0" * 32) is None
        assert await store.get("alpha", job.id) == job


@pytest.mark.asyncio
async def test_running_progress_and_finish_round_trip(db_url: str, clock: Clock) -> None:
    clock.now = 1_700_000_000.0
    async with await JobStore.open(db_url, clock=clock) as store:
        job = await store.create("alpha", {"lr": 0.1, "layers": [8, 4]})
        clock.advance(10)
        await store.mark_running(job.id)
        await store.set_progress(job.id, 0.25, "epoch 1/4")

        running = await store.get("alpha", job.id)
        assert running is not None
        assert running.status is JobStatus.RUNNING
        assert running.started_at == 1_700_000_010.0
        assert running.finished_at is None
        assert (running.progress, running.progress_message) == (0.25, "epoch 1/4")

        clock.advance(20.5)
        done = await store.finish(job.id, JobStatus.DONE, result={"accuracy": 0.9})
        assert done == await store.get("alpha", job.id)
        assert done.to_dict() == {
            "id": job.id,
            "model": "alpha",
            "status": "done",
            "arguments": {"lr": 0.1, "layers": [8, 4]},
            "created": "2023-11-14T22:13:20.000Z",
            "started": "2023-11-14T22:13:30.000Z",
            "finished": "2023-11-14T22:13:50.500Z",
            "duration": 20.5,
            "progress": 0.25,
            "progress_message": "epoch 1/4",
            "result": {"accuracy": 0.9},
            "error": None,
        }


@pytest.mark.asyncio
async def test_progress_is_clamped_and_nan_means_unknown(db_url: str) -> None:
    async with await JobStore.open(db_url) as store:
        job = await store.create("alpha", {})
        await store.mark_running(job.id)
        for reported, stored in [(1.7, 1.0), (-0.2, 0.0), (math.nan, None)]:
            await store.set_progress(job.id, reported, "step")
            record = await store.get("alpha", job.id)
            assert record is not None
            assert record.progress == stored


@pytest.mark.asyncio
async def test_error_is_stored_and_result_stays_null(db_url: str) -> None:
    async with await JobStore.open(db_url) as store:
        job = await store.create("alpha", {})
        await store.mark_running(job.id)
        failed = await store.finish(job.id, JobStatus.ERROR, error="ValueError: boom")
        assert failed.status is JobStatus.ERROR
        assert failed.error == "ValueError: boom"
        assert failed.result is None
        assert failed.to_dict()["result"] is None


def test_duration_of_a_job_that_runs_now() -> None:
    now = time.time()
    queued = JobRecord("a" * 32, "alpha", JobStatus.QUEUED, {}, created_at=now)
    assert queued.duration is None
    assert queued.to_dict()["duration"] is None
    running = JobRecord(
        "a" * 32, "alpha", JobStatus.RUNNING, {}, created_at=now, started_at=now - 5
    )
    assert running.duration is not None
    assert 5.0 <= running.duration < 60.0
    assert running.to_dict()["finished"] is None
    # Cancelled before it started: no run time at all.
    cancelled = JobRecord(
        "a" * 32, "alpha", JobStatus.CANCELLED, {}, created_at=now, finished_at=now
    )
    assert cancelled.duration is None


@pytest.mark.asyncio
async def test_finish_does_not_overwrite_a_final_job(db_url: str, clock: Clock) -> None:
    async with await JobStore.open(db_url, clock=clock) as store:
        job = await store.create("alpha", {})
        await store.mark_running(job.id)
        clock.advance()
        cancelled = await store.finish(job.id, JobStatus.CANCELLED, error="cancelled")
        cancelled_at = cancelled.finished_at

        # The worker's late reports arrive after the cancel.
        clock.advance()
        await store.set_progress(job.id, 1.0, "finished")
        late = await store.finish(job.id, JobStatus.DONE, result={"model": "v2"})

        assert late.status is JobStatus.CANCELLED
        assert late.result is None
        assert late.finished_at == cancelled_at
        assert late.progress is None
        assert late == await store.get("alpha", job.id)


@pytest.mark.asyncio
async def test_mark_running_leaves_a_cancelled_job_alone(db_url: str) -> None:
    async with await JobStore.open(db_url) as store:
        job = await store.create("alpha", {})
        await store.finish(job.id, JobStatus.CANCELLED)
        await store.mark_running(job.id)
        record = await store.get("alpha", job.id)
        assert record is not None
        assert record.status is JobStatus.CANCELLED
        assert record.started_at is None


@pytest.mark.asyncio
async def test_finish_rejects_a_non_final_state_and_an_unknown_job(
    db_url: str,
) -> None:
    async with await JobStore.open(db_url) as store:
        job = await store.create("alpha", {})
        for status in (JobStatus.QUEUED, JobStatus.RUNNING):
            with pytest.raises(ValueError, match=status.value):
                await store.finish(job.id, status)
        with pytest.raises(KeyError):
            await store.finish("0" * 32, JobStatus.DONE)
        record = await store.get("alpha", job.id)
        assert record is not None
        assert record.status is JobStatus.QUEUED


@pytest.mark.asyncio
async def test_records_survive_a_restart_and_running_jobs_are_interrupted(
    db_url: str, clock: Clock
) -> None:
    async with await JobStore.open(db_url, clock=clock) as store:
        running = await store.create("alpha", {"epochs": 9})
        queued = await store.create("alpha", {"epochs": 1})
        done = await store.create("beta", {})
        other_running = await store.create("beta", {})
        for job in (running, done, other_running):
            await store.mark_running(job.id)
        await store.set_progress(running.id, 0.5, "half way")
        await store.finish(done.id, JobStatus.DONE, result=[1, "two", {"3": None}])

    clock.advance(60)
    async with await JobStore.open(db_url, clock=clock) as store:
        assert await store.interrupt_running("the host restarted") == 2
        assert await store.interrupt_running("again") == 0

        interrupted = await store.get("alpha", running.id)
        assert interrupted is not None
        assert interrupted.status is JobStatus.ERROR
        assert interrupted.error == "the host restarted"
        assert interrupted.finished_at == clock.now
        assert interrupted.arguments == {"epochs": 9}
        assert (interrupted.progress, interrupted.progress_message) == (
            0.5,
            "half way",
        )
        other = await store.get("beta", other_running.id)
        assert other is not None
        assert other.status is JobStatus.ERROR

        still_queued = await store.get("alpha", queued.id)
        assert still_queued is not None
        assert still_queued.status is JobStatus.QUEUED
        assert [job.id for job in await store.pending()] == [queued.id]

        kept = await store.get("beta", done.id)
        assert kept is not None
        assert kept.status is JobStatus.DONE
        assert kept.result == [1, "two", {"3": None}]


@pytest.mark.asyncio
async def test_pending_is_queued_jobs_oldest_first(db_url: str, clock: Clock) -> None:
    async with await JobStore.open(db_url, clock=clock) as store:
        jobs = [await store.create(model, {}) for model in ("a", "b", "a", "c", "b")]
        await store.mark_running(jobs[1].id)
        await store.finish(jobs[3].id, JobStatus.CANCELLED)
        pending = await store.pending()
        assert [job.id for job in pending] == [jobs[0].id, jobs[2].id, jobs[4].id]
        assert all(job.status is JobStatus.QUEUED for job in pending)


@pytest.mark.asyncio
async def test_history_keeps_the_latest_finished_jobs(db_url: str, clock: Clock) -> None:
    async with await JobStore.open(db_url, history_limit=3, clock=clock) as store:
        jobs = [await store.create("alpha", {"n": n}) for n in range(5)]
        # Finished out of creation order: the bound keeps the last finished.
        for index in (4, 0, 3, 1, 2):
            clock.advance()
            await store.finish(jobs[index].id, JobStatus.DONE, result=index)
        remaining = {job.id for job in await store.list("alpha")}
        assert remaining == {jobs[3].id, jobs[1].id, jobs[2].id}

        # One more finished job pushes out the oldest finished one only.
        extra = await store.create("alpha", {})
        clock.advance()
        await store.finish(extra.id, JobStatus.ERROR, error="x")
        remaining = {job.id for job in await store.list("alpha")}
        assert remaining == {jobs[1].id, jobs[2].id, extra.id}


@pytest.mark.asyncio
async def test_history_never_prunes_queued_or_running_jobs(db_url: str, clock: Clock) -> None:
    async with await JobStore.open(db_url, history_limit=3, clock=clock) as store:
        queued = [await store.create("alpha", {}) for _ in range(4)]
        running = [await store.create("alpha", {}) for _ in range(2)]
        for job in running:
            await store.mark_running(job.id)
        finished = []
        for _ in range(5):
            job = await store.create("alpha", {})
            clock.advance()
            finished.append(await store.finish(job.id, JobStatus.DONE))
        other = await store.create("beta", {})
        await store.finish(other.id, JobStatus.DONE)

        by_status: dict[JobStatus, set[str]] = {}
        for job in await store.list("alpha"):
            by_status.setdefault(job.status, set()).add(job.id)
        assert by_status == {
            JobStatus.QUEUED: {job.id for job in queued},
            JobStatus.RUNNING: {job.id for job in running},
            JobStatus.DONE: {job.id for job in finished[-3:]},
        }
        # Another model's history is counted on its own.
        assert await store.get("beta", other.id) is not None


@pytest.mark.asyncio
async def test_history_limit_applies_to_interrupted_jobs(db_url: str, clock: Clock) -> None:
    async with await JobStore.open(db_url, history_limit=2, clock=clock) as store:
        jobs = [await store.create("alpha", {}) for _ in range(3)]
        for job in jobs:
            await store.mark_running(job.id)
        clock.advance()
        assert await store.interrupt_running("restart") == 3
        statuses = [job.status for job in await store.list("alpha")]
        assert statuses == [JobStatus.ERROR, JobStatus.ERROR]


class _Opaque:
    def __str__(self) -> str:
        return "<opaque>"


class _ArrayLike:
    def tolist(self) -> list[int]:
        return [1, 2, 3]


@pytest.mark.asyncio
async def test_values_json_cannot_hold_do_not_break_the_store(db_url: str, tmp_path: Path) -> None:
    circular: list[Any] = []
    circular.append(circular)
    async with await JobStore.open(db_url) as store:
        job = await store.create("alpha", {"file": tmp_path / "x.csv", "thing": _Opaque()})
        assert job.arguments == {"file": str(tmp_path / "x.csv"), "thing": "<opaque>"}
        await store.mark_running(job.id)
        done = await store.finish(
            job.id, JobStatus.DONE, result={"weights": _ArrayLike(), (1, 2): "key"}
        )
        assert isinstance(done.result, str)
        assert "(1, 2)" in done.result

        second = await store.create("alpha", {})
        looped = await store.finish(second.id, JobStatus.DONE, result=circular)
        assert looped.result == "[[...]]"

        third = await store.create("alpha", {})
        array = await store.finish(third.id, JobStatus.DONE, result={"weights": _ArrayLike()})
        assert array.result == {"weights": [1, 2, 3]}
        assert await store.get("alpha", third.id) == array


@pytest.mark.asyncio
async def test_open_creates_the_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "deep" / "er"
    url = sqlite_url(data_dir)
    assert url.startswith("sqlite+aiosqlite:///")
    assert url.endswith("/deep/er/deepaas-host.db")
    async with await JobStore.open(url) as store:
        await store.create("alpha", {})
    assert (data_dir / "deepaas-host.db").is_file()


async def _pragma(store: JobStore, name: str) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()


@pytest.mark.asyncio
async def test_two_stores_on_one_sqlite_file(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    async with (
        await JobStore.open(url, history_limit=1000) as first,
        await JobStore.open(url, history_limit=1000) as second,
    ):
        for store in (first, second):
            assert await _pragma(store, "journal_mode") == "wal"
            assert await _pragma(store, "busy_timeout") == 30_000

        # Both write at once, each through its own connections.
        created = await asyncio.gather(
            *(store.create("alpha", {"n": n}) for n in range(40) for store in (first, second))
        )
        ids = {job.id for job in created}
        assert len(ids) == 80
        # Each finishes the jobs the other one created.
        await asyncio.gather(
            *(
                (second if index % 2 == 0 else first).finish(job.id, JobStatus.DONE, result=index)
                for index, job in enumerate(created)
            )
        )
        for store in (first, second):
            jobs = await store.list("alpha")
            assert {job.id for job in jobs} == ids
            assert {job.status for job in jobs} == {JobStatus.DONE}
        assert await _pragma(first, "integrity_check") == "ok"


@pytest.mark.asyncio
async def test_a_writer_waits_for_another_writer(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    async with (
        await JobStore.open(url) as holder,
        await JobStore.open(url) as waiter,
    ):
        async with holder.engine.begin() as conn:
            await conn.execute(
                jobs_table.insert().values(
                    id="f" * 32,
                    model="alpha",
                    status="queued",
                    arguments="{}",
                    created_at=0.0,
                    progress_message="",
                )
            )
            # The file is write-locked until this transaction ends.
            blocked = asyncio.ensure_future(waiter.create("alpha", {}))
            await asyncio.sleep(0.5)
            assert not blocked.done()
        job = await asyncio.wait_for(blocked, timeout=10)
        assert {record.id for record in await waiter.list("alpha")} == {
            job.id,
            "f" * 32,
        }


@pytest.mark.asyncio
async def test_close_is_owned_by_the_opener(tmp_path: Path) -> None:
    async with await JobStore.open(sqlite_url(tmp_path)) as owner:
        borrowed = JobStore(owner.engine)
        job = await borrowed.create("alpha", {})
        await borrowed.close()
        # The engine still works: the borrowing store did not dispose it.
        assert await owner.get("alpha", job.id) == job
    with pytest.raises(ValueError):
        JobStore(owner.engine, history_limit=-1)
