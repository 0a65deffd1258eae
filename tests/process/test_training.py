"""Training jobs on a private host serving the demo model."""

from __future__ import annotations

import datetime
import hashlib
import os
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from .conftest import is_gone, job, pool, submit, wait_job, wait_until

if TYPE_CHECKING:
    from conftest import Host

TRAIN = "/v2/models/demo/train/"


def moment(text: str) -> datetime.datetime:
    assert text.endswith("Z")
    return datetime.datetime.fromisoformat(text)


def test_a_job_is_accepted_reports_progress_and_ends_done(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo"])
    response = host.post(TRAIN, data={"epochs": 4, "duration": 2})
    assert response.status_code == 202
    accepted = response.json()
    job_id = accepted["id"]
    assert accepted["status"] in ("queued", "running")
    assert accepted["arguments"] == {
        "epochs": 4,
        "duration": 2.0,
        "fail": False,
        "data": None,
        "helper_process": False,
    }
    assert response.headers["Location"].endswith(f"{TRAIN}{job_id}")
    assert job_id in [j["id"] for j in host.get(TRAIN).json()]

    seen: list[float] = []

    def finished() -> dict[str, Any] | None:
        record = job(host, job_id)
        if record["status"] == "running" and record["progress"] is not None:
            seen.append(record["progress"])
            assert record["duration"] >= 0
        return record if record["status"] == "done" else None

    done = wait_until(finished, timeout=60, what="the job to finish")
    assert seen == sorted(seen)
    assert any(0 < p < 1 for p in seen), seen
    assert done["progress"] == 1.0
    assert done["progress_message"].startswith("epoch 4/4")
    assert done["error"] is None
    result = done["result"]
    assert result["epochs"] == 4
    assert 0 < result["loss"] < 1
    assert result["accuracy"] == 1 - result["loss"] / 2
    assert result["pid"] in pool(host, "train")["pids"]
    created, started, ended = (moment(done[k]) for k in ("created", "started", "finished"))
    assert created <= started <= ended
    # The timestamps are shown to the millisecond.
    assert done["duration"] == pytest.approx((ended - started).total_seconds(), abs=0.002)
    assert done["duration"] >= result["elapsed"] >= 2.0


def test_an_uploaded_file_lives_until_the_job_ran(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    content = os.urandom(300_000)
    accepted = submit(host, files={"data": ("train.bin", content)}, epochs=1, duration=0.5)
    assert accepted["arguments"]["data"] == {
        "file": "train.bin",
        "content_type": "application/octet-stream",
    }
    done = wait_job(host, accepted["id"])
    assert done["status"] == "done", done
    assert done["result"]["data_bytes"] == len(content)
    assert done["result"]["data_sha256"] == hashlib.sha256(content).hexdigest()
    assert not (host.data_dir / "jobs" / accepted["id"]).exists()
    assert list((host.data_dir / "uploads").iterdir()) == []


def test_a_failing_job_ends_in_error_with_the_message(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    accepted = submit(host, files={"data": ("d.txt", b"x")}, epochs=2, duration=0, fail="true")
    failed = wait_job(host, accepted["id"])
    assert failed["status"] == "error"
    assert failed["result"] is None
    assert "RuntimeError: demo training failure requested with fail=True" in failed["error"]
    assert failed["finished"] is not None
    assert not (host.data_dir / "jobs" / accepted["id"]).exists()
    # The worker that raised keeps serving.
    assert wait_job(host, submit(host, epochs=1, duration=0)["id"])["status"] == "done"
    assert pool(host, "train")["restarts"] == 0


def test_one_train_worker_runs_jobs_in_order(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--train-workers", "1"])
    first = submit(host, epochs=2, duration=2)
    second = submit(host, files={"data": ("later.bin", b"12345")}, epochs=1, duration=0)
    wait_job(host, first["id"], {"running"})
    waiting = job(host, second["id"])
    assert waiting["status"] == "queued"
    assert waiting["started"] is None
    assert [f.name for f in (host.data_dir / "jobs" / second["id"]).iterdir()] != []

    a = wait_job(host, first["id"])
    b = wait_job(host, second["id"])
    assert a["status"] == b["status"] == "done"
    assert moment(b["started"]) >= moment(a["finished"])
    assert b["result"]["data_bytes"] == 5
    listed = [j["id"] for j in host.get(TRAIN).json()]
    assert listed == [second["id"], first["id"]]


def test_two_train_workers_run_two_jobs_at_once(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--train-workers", "2"])
    assert pool(host, "train")["size"] == 2
    jobs = [submit(host, epochs=2, duration=2) for _ in range(2)]

    def both_running() -> bool:
        return all(job(host, j["id"])["status"] == "running" for j in jobs)

    wait_until(both_running, timeout=20, what="both jobs to run")
    a, b = (wait_job(host, j["id"]) for j in jobs)
    assert a["status"] == b["status"] == "done"
    assert moment(a["started"]) < moment(b["finished"])
    assert moment(b["started"]) < moment(a["finished"])
    assert a["result"]["pid"] != b["result"]["pid"]


def test_cancelling_a_running_job_kills_its_worker(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    accepted = submit(
        host, files={"data": ("d.bin", b"abc")}, epochs=60, duration=60, helper_process="true"
    )
    wait_job(host, accepted["id"], {"running"})
    (old_pid,) = pool(host, "train")["pids"]
    wait_until(
        lambda: "helper_pid=" in job(host, accepted["id"])["progress_message"],
        what="the training's helper process",
    )
    helper_pid = int(job(host, accepted["id"])["progress_message"].rsplit("helper_pid=", 1)[1])
    tree = [old_pid, *(c.pid for c in psutil.Process(old_pid).children(recursive=True))]
    # The worker runs a child of its own: cancelling must stop it as well.
    assert helper_pid in tree

    response = host.delete(f"{TRAIN}{accepted['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    for pid in tree:
        wait_until(lambda pid=pid: is_gone(pid), timeout=10, what=f"pid {pid} to exit")
    cancelled = job(host, accepted["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["result"] is None
    assert cancelled["progress"] < 1

    wait_until(lambda: host.health()["ready"], what="a new train worker")
    stats = pool(host, "train")
    assert stats["ready"] == stats["size"] == 1
    assert stats["restarts"] == 1
    (new_pid,) = stats["pids"]
    assert new_pid != old_pid
    wait_until(
        lambda: not (host.data_dir / "jobs" / accepted["id"]).exists(),
        timeout=10,
        what="the job directory to be removed",
    )
    following = wait_job(host, submit(host, epochs=1, duration=0)["id"])
    assert following["status"] == "done"
    assert following["result"]["pid"] == new_pid
    assert job(host, accepted["id"])["status"] == "cancelled"


def test_cancelling_a_queued_job(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--train-workers", "1"])
    running = submit(host, epochs=60, duration=60)
    queued = submit(host, files={"data": ("d.bin", b"abc")}, epochs=1, duration=0)
    wait_job(host, running["id"], {"running"})
    (train_pid,) = pool(host, "train")["pids"]

    response = host.delete(f"{TRAIN}{queued['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    wait_until(
        lambda: not (host.data_dir / "jobs" / queued["id"]).exists(),
        timeout=10,
        what="the queued job's directory to be removed",
    )
    # The running job and its worker are untouched.
    assert job(host, running["id"])["status"] == "running"
    assert pool(host, "train")["pids"] == [train_pid]
    assert pool(host, "train")["restarts"] == 0

    assert host.delete(f"{TRAIN}{running['id']}").json()["status"] == "cancelled"
    wait_until(lambda: host.health()["ready"], what="a new train worker")
    never = job(host, queued["id"])
    assert never["status"] == "cancelled"
    assert never["started"] is None
    # Cancelling again changes nothing.
    again = host.delete(f"{TRAIN}{queued['id']}")
    assert again.status_code == 200
    assert again.json()["finished"] == never["finished"]


def test_a_long_training_does_not_delay_predictions(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    accepted = submit(host, epochs=5, duration=5)
    wait_job(host, accepted["id"], {"running"})
    latencies = []
    for _ in range(20):
        began = time.perf_counter()
        assert host.post("/v2/models/demo/predict/", data={"count": 2}).status_code == 200
        latencies.append(time.perf_counter() - began)
    assert job(host, accepted["id"])["status"] == "running"
    assert statistics.median(latencies) < 0.5, latencies
    assert wait_job(host, accepted["id"])["status"] == "done"


def test_the_history_is_bounded(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"], env={"DEEPAAS_HOST_HISTORY_LIMIT": "3"})
    ids = []
    for _ in range(5):
        ids.append(submit(host, epochs=1, duration=0)["id"])
        assert wait_job(host, ids[-1])["status"] == "done"
    assert [j["id"] for j in host.get(TRAIN).json()] == ids[:1:-1]
    for pruned in ids[:2]:
        response = host.get(f"{TRAIN}{pruned}")
        assert response.status_code == 404
        assert response.json()["error"] == "JobNotFound"


def test_an_unknown_job(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    for response in (host.get(f"{TRAIN}{'0' * 32}"), host.delete(f"{TRAIN}{'0' * 32}")):
        assert response.status_code == 404
        assert response.json()["error"] == "JobNotFound"
