"""Helpers for tests that drive private hosts and watch their processes.

Everything waits on an observable state with a deadline (never a fixed sleep),
so the tests hold on a loaded machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

import psutil
import requests

if TYPE_CHECKING:
    from conftest import Host

T = TypeVar("T")

FINAL = frozenset({"done", "error", "cancelled"})


def wait_until(
    predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def is_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def pool(host: Host, name: str = "predict") -> dict[str, Any]:
    stats: dict[str, Any] = host.health()["pools"][name]
    return stats


def submit(
    host: Host, model: str = "demo", *, files: dict[str, Any] | None = None, **args: Any
) -> dict[str, Any]:
    """Start a training job; assert it was accepted."""
    response = host.post(f"/v2/models/{model}/train/", data=args, files=files)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def job(host: Host, job_id: str, model: str = "demo") -> dict[str, Any]:
    response = host.get(f"/v2/models/{model}/train/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_job(
    host: Host,
    job_id: str,
    statuses: Collection[str] = FINAL,
    *,
    model: str = "demo",
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Wait until the job is in one of ``statuses``; return its record."""

    def reached() -> dict[str, Any] | None:
        record = job(host, job_id, model)
        return record if record["status"] in statuses else None

    return wait_until(reached, timeout=timeout, what=f"job {job_id} to be {sorted(statuses)}")


def refused(url: str) -> bool:
    """True when nothing accepts connections at ``url`` any more."""
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return True
    return False
