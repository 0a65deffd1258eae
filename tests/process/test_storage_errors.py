"""Training while the disk is full: the host's own file-size limit makes its writes fail.

``prlimit(RLIMIT_FSIZE)`` on the host process (Python ignores SIGXFSZ) makes every
write past a few KiB fail with ``EFBIG``, as a full disk or quota would: SQLite's
writes fail, small uploads still fit. Worker processes started before keep their
own limit, so trainings go on; lifting the limit is the disk freed again.
"""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .conftest import job, pool, submit, wait_job, wait_until

if TYPE_CHECKING:
    from conftest import Host

#: Bytes a file of the host may grow to while "the disk is full".
LIMIT = 4096
SAVE_FAILED = "but its state could not be saved (InsufficientStorage"


@contextlib.contextmanager
def disk_full(host: Host) -> Iterator[None]:
    pid = host.process.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (LIMIT, hard))
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # stopped meanwhile
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))


def job_dirs(host: Host) -> set[str]:
    jobs = host.data_dir / "jobs"
    return {p.name for p in jobs.iterdir()} if jobs.is_dir() else set()


def test_a_full_disk_refuses_new_jobs_and_running_ones_end_when_it_is_freed(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--workers", "1"])
    running = submit(host, epochs=40, duration=4)
    wait_job(host, running["id"], {"running"})
    (worker,) = pool(host, "train")["pids"]

    with disk_full(host):
        refused = host.post(
            "/v2/models/demo/train/",
            data={"epochs": 1, "duration": 0},
            files={"data": ("d.bin", b"x" * 100)},
        )
        assert refused.status_code == 507, refused.text
        body = refused.json()
        assert body["error"] == "InsufficientStorage"
        assert "no room" in body["message"]
        assert job_dirs(host) == {running["id"]}
        assert list((host.data_dir / "uploads").iterdir()) == []
        # An upload of a version: its record cannot be written, its file is not kept.
        version = host.post(
            "/v2/models/demo/versions/",
            data={"engine": "custom"},
            files={"file": ("v.json", b'{"a": 1}')},
        )
        assert version.status_code == 507, version.text
        assert version.json()["error"] == "InsufficientStorage"
        stored = host.data_dir / "artifacts"
        assert not stored.exists() or not [p for p in stored.rglob("*") if p.is_file()]

        # The running job goes on although its progress cannot be saved; once it
        # ends it reads error from memory, saying why.
        def ended() -> dict[str, object] | None:
            record = job(host, running["id"])
            return record if record["status"] != "running" else None

        unsaved = wait_until(ended, timeout=60, what="the training to end")
        assert unsaved["status"] == "error"
        assert SAVE_FAILED in unsaved["error"], unsaved["error"]
        # Registering its version needed the database too.
        assert "version could not be registered" in unsaved["error"]
        listed = host.get("/v2/models/demo/train/").json()
        assert [j["error"] for j in listed if j["id"] == running["id"]] == [unsaved["error"]]
        assert pool(host, "train")["pids"] == [worker]

    # Room again: the retried write lands, and the job reads what it ended as.
    def saved() -> dict[str, object] | None:
        record = job(host, running["id"])
        return record if SAVE_FAILED not in str(record["error"]) else None

    stored = wait_until(saved, timeout=30, what="the final state to be saved")
    assert stored["status"] == "error"
    assert str(stored["error"]).startswith("Training finished, but its version could not")
    assert "InsufficientStorage" not in str(stored["error"])  # the cause, in words
    assert "no room" in str(stored["error"])
    assert stored["result"]["epochs"] == 40  # type: ignore[index]
    assert stored["version"] is None
    assert host.get("/v2/models/demo/versions/").json()["versions"] == []
    assert job_dirs(host) == set()

    # The same worker trains the next job, which registers its version.
    following = wait_job(host, submit(host, epochs=1, duration=0)["id"])
    assert following["status"] == "done", following
    assert following["result"]["pid"] == worker
    assert following["version"] == "v1"
    assert pool(host, "train")["restarts"] == 0


def test_an_unsaved_ending_is_saved_later_or_interrupted_by_a_restart(
    start_host: Callable[..., Host],
) -> None:
    # legacy's training writes no artifact: no version, so the ending is the only write.
    args = ["--model", "legacy", "--workers", "1"]
    host = start_host(args)
    base = "/v2/models/legacy/train/"
    first = submit(host, "legacy", epochs=3, sleep=1)
    wait_job(host, first["id"], {"running"}, model="legacy")
    with disk_full(host):
        unsaved = wait_job(host, first["id"], {"error"}, model="legacy")
        assert unsaved["error"].startswith("This job ended (done), " + SAVE_FAILED)
        assert unsaved["result"] is None
    done = wait_until(
        lambda: (r := job(host, first["id"], "legacy"))["status"] == "done" and r,
        timeout=30,
        what="the job to be saved as done",
    )
    assert done["result"]["losses"] == [1 / 2, 1 / 3, 1 / 4]
    assert done["error"] is None
    assert done["started"] is not None and done["finished"] is not None

    second = submit(host, "legacy", epochs=2, sleep=1)
    wait_job(host, second["id"], {"running"}, model="legacy")
    with disk_full(host):
        wait_job(host, second["id"], {"error"}, model="legacy")
        # Stopped before the disk is freed: the state never reaches the database.
        assert host.stop(signal.SIGTERM) == 0

    again = start_host(args, data_dir=host.data_dir)
    interrupted = job(again, second["id"], "legacy")
    assert interrupted["status"] == "error"
    assert interrupted["error"].startswith("Interrupted")
    assert job(again, first["id"], "legacy")["status"] == "done"
    assert again.get(base).status_code == 200
