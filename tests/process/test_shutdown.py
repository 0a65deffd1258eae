"""Stopping the host: SIGTERM drains, SIGKILL leaves no orphans."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import requests

from .conftest import is_gone, job, pool, refused, submit, wait_job, wait_until

if TYPE_CHECKING:
    from conftest import Host

SHUTDOWN_TIMEOUT = 6.0


def worker_pids(host: Host) -> list[int]:
    pools = host.health()["pools"]
    return [pid for stats in pools.values() for pid in stats["pids"]]


def test_sigterm_finishes_inflight_requests_and_exits_cleanly(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(
        ["--model", "demo", "--workers", "2"],
        env={"DEEPAAS_HOST_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)},
    )
    workers = worker_pids(host)
    assert len(workers) == 4  # two predict, one train, one online
    with ThreadPoolExecutor(3) as executor:
        inflight = [
            executor.submit(host.post, "/v2/models/demo/predict/", data={"sleep": 2, "count": n})
            for n in (1, 2, 3)
        ]
        wait_until(lambda: pool(host)["busy"] == 3, what="three calls in the workers")
        began = time.monotonic()
        host.process.send_signal(signal.SIGTERM)
        # The listening socket closes at once, while the calls are still running.
        wait_until(lambda: refused(host.url + "/v2/health"), timeout=5, what="refusal")
        assert not all(f.done() for f in inflight)
        answers = [f.result() for f in inflight]
    for n, answer in enumerate(answers, start=1):
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"]["count"] == n
    try:
        code = host.process.wait(SHUTDOWN_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the host did not exit:\n{host.log()}") from None
    assert code == 0, host.log()
    assert time.monotonic() - began < SHUTDOWN_TIMEOUT + 5
    for pid in workers:
        wait_until(lambda pid=pid: is_gone(pid), timeout=5, what=f"worker {pid} to exit")
    assert "Traceback" not in host.log()


def test_sigterm_while_idle_exits_at_once(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo"])
    workers = worker_pids(host)
    began = time.monotonic()
    assert host.stop(signal.SIGTERM) == 0
    assert time.monotonic() - began < 5
    assert all(is_gone(pid) for pid in workers)


def test_a_training_running_at_sigterm_is_interrupted(start_host: Callable[..., Host]) -> None:
    first = start_host(["--model", "demo"])
    running = submit(first, epochs=60, duration=60)
    wait_job(first, running["id"], {"running"})
    (train_pid,) = pool(first, "train")["pids"]
    assert first.stop(signal.SIGTERM) == 0, first.log()
    wait_until(lambda: is_gone(train_pid), timeout=5, what="the train worker to exit")

    second = start_host(["--model", "demo"], data_dir=first.data_dir)
    record = job(second, running["id"])
    assert record["status"] == "error"
    assert record["error"].startswith("Interrupted")
    assert record["result"] is None
    assert not (second.data_dir / "jobs" / running["id"]).exists()


def test_workers_exit_by_themselves_when_the_host_is_killed(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--workers", "2"])
    running = submit(host, epochs=60, duration=60)
    wait_job(host, running["id"], {"running"})
    with ThreadPoolExecutor(1) as executor:
        # One predict worker is busy too: it cannot notice its closed socket.
        busy = executor.submit(host.post, "/v2/models/demo/predict/", data={"sleep": 20})
        wait_until(lambda: pool(host)["busy"] == 1, what="a busy predict worker")
        workers = worker_pids(host)
        assert len(workers) == 4  # two predict, one train, one online
        host.process.send_signal(signal.SIGKILL)
        host.process.wait(10)
        for pid in workers:
            wait_until(lambda pid=pid: is_gone(pid), timeout=5, what=f"worker {pid} to exit")
        try:
            busy.result()
        except requests.ConnectionError:
            pass
        else:
            raise AssertionError("the call to a killed host answered")
