"""What the damage, storage and bounds tests share: samples, a hard kill, the files."""

from __future__ import annotations

import io
import os
import pickle
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests
from conftest import Host
from deepaas_host_river_models.models import TrumpApproval
from river import datasets

T = TypeVar("T")
Sample = tuple[dict[str, Any], float]


def samples(n: int) -> list[Sample]:
    stream = iter(datasets.TrumpApproval())
    return [next(stream) for _ in range(n)]


def create(host: Host, name: str, plugin: str = "trump-approval") -> None:
    r = host.post("/v2/online/", json={"plugin": plugin, "name": name})
    assert r.status_code == 201, r.text


def learn(host: Host, name: str, x: dict[str, Any], y: Any) -> dict[str, Any]:
    r = host.post(f"/v2/online/{name}/learn/", json={"features": x, "ground_truth": y})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def error(response: requests.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == name, body
    return body


def download(host: Host, name: str) -> Any:
    r = host.get(f"/v2/online/{name}/download")
    assert r.status_code == 200, r.text
    return pickle.load(io.BytesIO(r.content))


def replay(learned: list[Sample]) -> Any:
    model = TrumpApproval().build()
    for x, y in learned:
        model.learn_one(x, y)
    return model


def assert_same_model(served: Any, replayed: Any) -> None:
    scaler, regression = served["StandardScaler"], served["LinearRegression"]
    assert dict(scaler.means) == dict(replayed["StandardScaler"].means)
    assert dict(scaler.vars) == dict(replayed["StandardScaler"].vars)
    assert dict(regression.weights) == dict(replayed["LinearRegression"].weights)
    assert regression.intercept == replayed["LinearRegression"].intercept


def wait_until(predicate: Callable[[], T], *, timeout: float = 30.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.05)


def online_pid(host: Host) -> int:
    pids: list[int] = host.health()["pools"]["online"]["pids"]
    assert len(pids) == 1
    return pids[0]


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def kill_hard(host: Host) -> None:
    """The host and its online worker die at once, as in a power cut: no final
    snapshot (a worker that outlives its host snapshots on the way out), the files
    as the crash left them."""
    worker = online_pid(host)
    os.kill(host.process.pid, signal.SIGSTOP)  # no replacement worker is started
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: _gone(worker), what="the online worker to exit")
    os.kill(host.process.pid, signal.SIGKILL)
    host.process.wait(10)


def model_dir(host: Host, name: str) -> Path:
    return host.data_dir / "online" / name


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("events-*.log"))


def frame_offsets(data: bytes) -> list[int]:
    """Where each frame of a segment starts (``length, crc32`` headers)."""
    offsets, at = [], 0
    while at + 8 <= len(data):
        offsets.append(at)
        at += 8 + int.from_bytes(data[at : at + 4], "big")
    return offsets


def flip(path: Path, offset: int, mask: int = 0x01) -> bytes:
    """Flip bits of one byte of ``path``; the damaged contents."""
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))
    return bytes(data)
