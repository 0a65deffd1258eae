"""The guarantees of online learning, on real hosts with real worker processes.

- One writer: concurrent learns all arrive, in one order, and the model equals a
  sequential replay of that order.
- Durability: whatever was acknowledged survives ``kill -9`` of the host (and of
  the online worker alone), through snapshots and the log after them.
- Snapshots never hold up reads.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Host
from deepaas_host_river_models.models import TrumpApproval
from fixtures.slow_pickle import SlowToPickle
from river import datasets

TESTS = Path(__file__).resolve().parents[1]
Sample = tuple[dict[str, Any], float]


def _samples(n: int) -> list[Sample]:
    stream = iter(datasets.TrumpApproval())
    return [next(stream) for _ in range(n)]


def _create(host: Host, name: str, plugin: str = "trump-approval") -> None:
    r = host.post("/v2/online/", json={"plugin": plugin, "name": name})
    assert r.status_code == 201, r.text


def _learn(url: str, name: str, x: dict[str, Any], y: Any) -> dict[str, Any]:
    r = requests.post(
        f"{url}/v2/online/{name}/learn/", json={"features": x, "ground_truth": y}, timeout=30
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _download(host: Host, name: str) -> Any:
    r = host.get(f"/v2/online/{name}/download")
    assert r.status_code == 200, r.text
    return pickle.load(io.BytesIO(r.content))


def _replay(samples: list[Sample]) -> Any:
    model = TrumpApproval().build()
    for x, y in samples:
        model.learn_one(x, y)
    return model


def _assert_same_model(served: Any, replayed: Any) -> None:
    scaler, regression = served["StandardScaler"], served["LinearRegression"]
    assert dict(scaler.means) == dict(replayed["StandardScaler"].means)
    assert dict(scaler.vars) == dict(replayed["StandardScaler"].vars)
    assert dict(regression.weights) == dict(replayed["LinearRegression"].weights)
    assert regression.intercept == replayed["LinearRegression"].intercept


def test_concurrent_learns_are_all_applied_in_one_order(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "trump-approval"])
    _create(host, "one-writer")
    samples = _samples(800)
    applied: dict[int, Sample] = {}
    lock = threading.Lock()

    def client(part: list[Sample]) -> None:
        with requests.Session() as session:
            for x, y in part:
                r = session.post(
                    f"{host.url}/v2/online/one-writer/learn/",
                    json={"features": x, "ground_truth": y},
                    timeout=30,
                )
                assert r.status_code == 200, r.text
                with lock:
                    applied[r.json()["seq"]] = (x, y)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(client, [samples[i::16] for i in range(16)]))

    assert sorted(applied) == list(range(1, len(samples) + 1))  # none lost, none twice
    info = host.get("/v2/online/one-writer").json()
    assert info["learned"] == len(samples)
    order = [applied[seq] for seq in sorted(applied)]
    assert order != samples  # the clients really did interleave
    _assert_same_model(_download(host, "one-writer"), _replay(order))


def test_acknowledged_learns_survive_kill_9_of_the_host(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "durable"
    args = ["--model", "trump-approval", "--snapshot-every", "40"]
    host = start_host(args, data_dir=data)
    _create(host, "durable")
    kept = host.post(
        "/v2/online/durable/predict/", json={"features": _samples(1)[0][0], "id": "before-kill"}
    )
    assert kept.status_code == 200
    samples = _samples(1000)
    acked = 0
    killer = threading.Timer(0.02, lambda: os.kill(host.process.pid, signal.SIGKILL))
    try:
        for x, y in samples:
            _learn(host.url, "durable", x, y)
            acked += 1
            if acked == 300:  # the kill lands while the stream goes on
                killer.start()
    except (requests.ConnectionError, AssertionError):
        pass
    killer.join()
    host.process.wait(10)
    assert 0 < acked < len(samples), "the kill must land in the middle of the stream"

    again = start_host(args, data_dir=data)
    info = again.get("/v2/online/durable").json()
    # Everything acknowledged is there; at most the one request in flight is extra.
    assert acked <= info["learned"] <= acked + 1
    assert info["snapshot_seq"] > 0  # a snapshot was taken and the tail replayed after it
    _assert_same_model(_download(again, "durable"), _replay(samples[: info["learned"]]))
    # Predictions kept for a label survive too.
    label = again.post("/v2/online/durable/label/", json={"id": "before-kill", "ground_truth": 40})
    assert label.status_code == 200, label.text
    # And it goes on learning where it stopped.
    after = _learn(again.url, "durable", *samples[info["learned"]])
    assert after["learned"] == info["learned"] + 2


def test_concurrent_acknowledged_learns_survive_kill_9(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "concurrent"
    host = start_host(["--model", "trump-approval", "--snapshot-every", "100"], data_dir=data)
    _create(host, "busy")
    samples = _samples(1000)
    acked: list[int] = []
    lock = threading.Lock()

    def client(part: list[Sample]) -> None:
        with requests.Session() as session:
            for x, y in part:
                try:
                    r = session.post(
                        f"{host.url}/v2/online/busy/learn/",
                        json={"features": x, "ground_truth": y},
                        timeout=30,
                    )
                except requests.ConnectionError:
                    return
                if r.status_code != 200:
                    return
                with lock:
                    acked.append(r.json()["seq"])
                    if len(acked) == 300:
                        os.kill(host.process.pid, signal.SIGKILL)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, [samples[i::8] for i in range(8)]))
    host.process.wait(10)
    assert 0 < len(acked) < len(samples)

    again = start_host(["--model", "trump-approval"], data_dir=data)
    learned = again.get("/v2/online/busy").json()["learned"]
    assert learned >= len(acked)
    assert max(acked) <= learned  # every acknowledged sequence number is in the model


def test_a_killed_online_worker_is_replaced_and_loses_nothing(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "trump-approval"])
    _create(host, "phoenix")
    samples = _samples(200)
    for x, y in samples[:150]:
        _learn(host.url, "phoenix", x, y)
    (pid,) = host.health()["pools"]["online"]["pids"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pools = host.health()["pools"]["online"]
        if pools["ready"] == 1 and pools["pids"] != [pid]:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the online worker was not replaced")
    assert host.get("/v2/online/phoenix").json()["learned"] == 150
    for x, y in samples[150:]:
        _learn(host.url, "phoenix", x, y)
    _assert_same_model(_download(host, "phoenix"), _replay(samples))


def test_reads_are_answered_while_a_snapshot_is_being_written(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    host = start_host(
        ["--model", "trump-approval", "--snapshot-every", "5"],
        env={"PYTHONPATH": str(TESTS)},
    )
    block = tmp_path / "hold-the-snapshot"
    model = pickle.dumps(SlowToPickle(str(block)))
    r = host.post(
        "/v2/online/",
        data={"name": "slow", "flavor": "custom"},
        files={"file": ("slow.pkl", model)},
    )
    assert r.status_code == 201, r.text
    block.touch()
    for i in range(5):
        _learn(host.url, "slow", {"i": i}, float(i))
    snapshot = host.data_dir / "online" / "slow" / "snapshot-000000000005.pkl"
    # The snapshot child is stuck pickling; the model keeps answering.
    for i in range(20):
        p = host.post("/v2/online/slow/predict/", json={"features": {"i": i}}, timeout=10)
        assert p.status_code == 200, p.text
        assert p.json()["prediction"] == pytest.approx(2.0)
    assert host.get("/v2/online/slow/metrics", timeout=10).status_code == 200
    assert _learn(host.url, "slow", {"i": 5}, 5.0)["learned"] == 6
    assert not snapshot.exists()
    block.unlink()
    deadline = time.monotonic() + 30
    while not snapshot.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert snapshot.exists()
