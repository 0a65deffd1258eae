"""Predict workers: warmed where they run, replaced and warmed again when they die."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .conftest import is_gone, pool, wait_until

if TYPE_CHECKING:
    from conftest import Host

PREDICT = "/v2/models/demo/predict/"


def predict(host: Host, **args: Any) -> dict[str, Any]:
    response = host.post(PREDICT, data=args)
    assert response.status_code == 200, response.text
    prediction: dict[str, Any] = response.json()["predictions"]
    return prediction


def test_warm_runs_in_every_worker(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--workers", "2"])
    pids = set(pool(host)["pids"])
    assert len(pids) == 2
    answers: list[dict[str, Any]] = []
    with ThreadPoolExecutor(8) as executor:
        # Concurrent slow calls spread over both workers; repeat until both answered.
        def both_answered() -> bool:
            answers.extend(executor.map(lambda _: predict(host, sleep=0.1), range(8)))
            return {a["pid"] for a in answers} == pids

        wait_until(both_answered, timeout=60, what="both workers to answer")
    for answer in answers:
        assert answer["warm_pid"] == answer["pid"]
        assert answer["warm_count"] == 1


def test_no_warm_skips_warm(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--no-warm"])
    answer = predict(host)
    assert answer["pid"] in pool(host)["pids"]
    assert answer["warm_pid"] is None
    assert answer["warm_count"] == 0


def test_a_crashed_worker_is_replaced_and_warmed(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--workers", "1"])
    (old_pid,) = pool(host)["pids"]
    response = host.post(PREDICT, data={"fail": "exit"})
    assert response.status_code == 502
    error = response.json()
    assert error["error"] == "WorkerCrashed"
    assert error["details"] == {"model": "demo", "exit": "exited with status 13"}
    # Spawning and warming a replacement takes far longer than this round trip.
    health = host.get("/v2/health")
    assert health.status_code == 503
    assert health.json()["ready"] is False

    wait_until(lambda: host.health()["ready"], what="the host to be ready again")
    stats = pool(host)
    assert stats["size"] == stats["ready"] == 1
    assert stats["restarts"] == 1
    (new_pid,) = stats["pids"]
    assert new_pid != old_pid
    assert is_gone(old_pid)
    answer = predict(host)
    assert answer["pid"] == answer["warm_pid"] == new_pid


def test_a_call_queued_behind_a_crash_is_served_by_the_replacement(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--workers", "1"])
    (old_pid,) = pool(host)["pids"]
    with ThreadPoolExecutor(2) as executor:
        crash = executor.submit(host.post, PREDICT, data={"fail": "exit", "sleep": 1})
        wait_until(lambda: pool(host)["busy"] == 1, what="the crashing call to run")
        # Pipelined to the same worker, behind the call that kills it.
        behind = executor.submit(predict, host, label="bird")
        assert crash.result().status_code == 502
        answer = behind.result()
    assert answer["label"] == "bird"
    assert answer["pid"] != old_pid
    assert answer["pid"] == answer["warm_pid"]
    assert pool(host)["restarts"] == 1


def test_a_model_exception_keeps_the_worker(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--workers", "1"])
    pids = pool(host)["pids"]
    response = host.post(PREDICT, data={"fail": "raise"})
    assert response.status_code == 500
    assert response.json()["details"]["exception"] == "ValueError"
    assert predict(host)["pid"] == pids[0]
    assert pool(host)["restarts"] == 0
    assert pool(host)["pids"] == pids
