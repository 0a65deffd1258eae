"""A model that raises or kills its worker: JSON errors, the host keeps serving."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from conftest import Host

from .conftest import assert_error, predictions, wait_until

DEMO = "/v2/models/demo/predict/"


def pool(host: Host) -> dict[str, Any]:
    response = host.get("/v2/health", timeout=10)
    body: dict[str, Any] = response.json()
    return body["pools"]["predict"] | {"http_status": response.status_code}


def test_model_exception_is_a_json_500_naming_it(host: Host) -> None:
    body = assert_error(host.post(DEMO, params={"fail": "raise"}), 500, "ModelError")
    assert body["details"]["exception"] == "ValueError"
    assert body["details"]["exception_message"] == "demo model failure requested with fail='raise'"
    assert "ValueError" in body["message"] and "demo" in body["message"]
    assert "Traceback" not in body["message"]
    # the worker survived: no restart, and the next call works
    before = pool(host)
    assert predictions(host.post(DEMO, params={"label": "bird"}))["label"] == "bird"
    assert pool(host)["pids"] == before["pids"]


def test_worker_crash_is_a_502_and_the_worker_is_replaced(host: Host) -> None:
    before = pool(host)
    assert before["ready"] == before["size"] == 2

    def normal(i: int) -> requests.Response:
        return host.post(DEMO, params={"count": i % 5 + 1, "sleep": 0.05}, timeout=90)

    with ThreadPoolExecutor(max_workers=12) as executor:
        first = [executor.submit(normal, i) for i in range(10)]
        time.sleep(0.05)
        crash = executor.submit(host.post, DEMO, params={"fail": "exit"}, timeout=90)
        rest = [executor.submit(normal, i) for i in range(10, 20)]
        normals = [f.result() for f in first + rest]
        crashed = crash.result()

    body = assert_error(crashed, 502, "WorkerCrashed")
    assert body["details"]["model"] == "demo"
    assert "13" in body["details"]["exit"]  # the demo model's exit status
    for i, response in enumerate(normals):
        assert predictions(response)["count"] == i % 5 + 1

    # the crashed worker is gone and a warmed replacement takes its place
    def replaced() -> bool:
        now = pool(host)
        return (
            now["http_status"] == 200
            and now["ready"] == 2
            and now["restarts"] == before["restarts"] + 1
            and len(set(now["pids"]) - set(before["pids"])) == 1
        )

    wait_until(replaced, 90, "a replacement worker")
    (new_pid,) = set(pool(host)["pids"]) - set(before["pids"])

    # slow calls in parallel spread over both workers; one lands on the new one
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(max_workers=4) as executor:
        while new_pid not in seen and time.monotonic() < deadline:
            calls = [executor.submit(host.post, DEMO, params={"sleep": 0.3}) for _ in range(4)]
            for call in calls:
                answer = predictions(call.result())
                seen[answer["pid"]] = answer
    assert new_pid in seen, f"no answer from the replacement worker {new_pid}: {sorted(seen)}"
    assert seen[new_pid]["warm_pid"] == new_pid  # warm() ran in the replacement
    assert seen[new_pid]["warm_count"] == 1
    assert set(seen) <= set(pool(host)["pids"])


def test_crash_of_the_only_worker_then_normal_service(small_host: Host) -> None:
    """With one worker nothing else can serve: calls wait for the replacement."""
    with ThreadPoolExecutor(max_workers=6) as executor:
        crash = executor.submit(small_host.post, DEMO, params={"fail": "exit"}, timeout=90)
        time.sleep(0.1)
        after = [
            executor.submit(small_host.post, DEMO, params={"count": 2}, timeout=90)
            for _ in range(5)
        ]
        assert_error(crash.result(), 502, "WorkerCrashed")
        answers = [predictions(f.result()) for f in after]
    assert all(a["count"] == 2 for a in answers)
    assert all(a["warm_pid"] == a["pid"] for a in answers)
