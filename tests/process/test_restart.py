"""Training jobs outlive the host process: same ``--data-dir``, new process."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .conftest import is_gone, job, pool, submit, wait_job, wait_until

if TYPE_CHECKING:
    from conftest import Host


def test_finished_jobs_survive_a_restart(start_host: Callable[..., Host]) -> None:
    first = start_host(["--model", "demo"])
    done = wait_job(first, submit(first, epochs=2, duration=0)["id"])
    failed = wait_job(first, submit(first, epochs=1, duration=0, fail="true")["id"])
    assert first.stop() == 0

    second = start_host(["--model", "demo"], data_dir=first.data_dir)
    after = job(second, done["id"])
    assert after["href"].endswith(f":{second.port}/v2/models/demo/train/{done['id']}")
    assert {k: v for k, v in after.items() if k != "href"} == {
        k: v for k, v in done.items() if k != "href"
    }
    assert job(second, failed["id"])["error"] == failed["error"]
    listed = [j["id"] for j in second.get("/v2/models/demo/train/").json()]
    assert listed == [failed["id"], done["id"]]


def test_a_host_killed_mid_training(start_host: Callable[..., Host]) -> None:
    first = start_host(["--model", "demo", "--train-workers", "1"])
    running = submit(first, epochs=60, duration=60)
    content = os.urandom(50_000)
    queued = submit(first, files={"data": ("later.bin", content)}, epochs=1, duration=0)
    wait_job(first, running["id"], {"running"})
    assert job(first, queued["id"])["status"] == "queued"
    workers = pool(first, "predict")["pids"] + pool(first, "train")["pids"]
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    for pid in workers:
        wait_until(lambda pid=pid: is_gone(pid), timeout=10, what=f"worker {pid} to exit")

    second = start_host(["--model", "demo", "--train-workers", "1"], data_dir=first.data_dir)
    interrupted = job(second, running["id"])
    assert interrupted["status"] == "error"
    assert interrupted["error"].startswith("Interrupted")
    assert "running" in interrupted["error"]
    assert interrupted["finished"] is not None
    assert not (second.data_dir / "jobs" / running["id"]).exists()

    # The queued job ran after the restart, its upload intact.
    done = wait_job(second, queued["id"])
    assert done["status"] == "done", done
    assert done["result"]["data_bytes"] == len(content)
    assert done["result"]["data_sha256"] == hashlib.sha256(content).hexdigest()
    assert done["result"]["pid"] in pool(second, "train")["pids"]
    assert not (second.data_dir / "jobs" / queued["id"]).exists()


#: Jobs queued behind a slow one: enough that a reordering would show.
QUEUED = 16


def moment(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def started_in_order(host: Host, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wait for ``jobs`` (in creation order) to end; assert each started after the last."""
    done = [wait_job(host, queued["id"]) for queued in jobs]
    assert [d["status"] for d in done] == ["done"] * len(jobs), done
    starts = [moment(d["started"]) for d in done]
    assert starts == sorted(starts), [d["id"] for d in done]
    for before, after in itertools.pairwise(done):
        assert moment(after["started"]) >= moment(before["finished"])
    return done


def test_queued_jobs_start_in_creation_order_after_a_restart(
    start_host: Callable[..., Host],
) -> None:
    args = ["--model", "demo", "--train-workers", "1", "--workers", "1"]
    first = start_host(args)
    slow = submit(first, epochs=60, duration=60)
    wait_job(first, slow["id"], {"running"})
    # Uploads of different sizes: their directories take different times to handle.
    queued = [
        submit(
            first,
            files={"data": (f"{i}.bin", os.urandom(5_000 * (QUEUED - i)))},
            epochs=1,
            duration=0.02,
        )
        for i in range(QUEUED)
    ]
    assert [job(first, q["id"])["status"] for q in queued] == ["queued"] * QUEUED
    assert first.stop() == 0

    second = start_host(args, data_dir=first.data_dir)
    assert job(second, slow["id"])["error"].startswith("Interrupted")
    done = started_in_order(second, queued)
    assert [d["result"]["data_bytes"] for d in done] == [
        5_000 * (QUEUED - i) for i in range(QUEUED)
    ]


def test_jobs_queued_behind_a_running_one_start_in_creation_order(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--train-workers", "1", "--workers", "1"])
    slow = submit(host, epochs=60, duration=60)
    wait_job(host, slow["id"], {"running"})
    queued = [
        submit(
            host,
            files={"data": (f"{i}.bin", os.urandom(5_000 * (QUEUED - i)))},
            epochs=1,
            duration=0.02,
        )
        for i in range(QUEUED)
    ]
    assert host.delete(f"/v2/models/demo/train/{slow['id']}").status_code == 200
    started_in_order(host, queued)
