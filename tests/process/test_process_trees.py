"""Nothing a plugin starts outlives its worker: not a child, not a double-forked daemon."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from fixtures.tree_plugin import NAME, write_distribution

from .conftest import is_gone, job, pool, submit, wait_job, wait_until

if TYPE_CHECKING:
    from conftest import Host


@pytest.fixture
def tree_env(tmp_path: Path) -> dict[str, str]:
    """Environment with the ``tree`` plugin's distribution on ``PYTHONPATH``."""
    site = write_distribution(tmp_path / "site")
    inherited = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), inherited]))}


def start_training(host: Host, pid_file: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Start the tree training; its record and the pids it wrote."""
    accepted = submit(host, NAME, pid_file=str(pid_file))

    def written() -> dict[str, int] | None:
        return json.loads(pid_file.read_text()) if pid_file.exists() else None

    pids = wait_until(written, what="the training to write its pids")
    return accepted, pids


def assert_adopted(pids: dict[str, int]) -> None:
    """The daemon left the worker's session and group, yet the worker is its parent."""
    worker = pids["worker"]
    assert os.getpgid(worker) == worker  # the worker heads its own group
    assert psutil.Process(pids["child"]).ppid() == worker
    daemon = psutil.Process(pids["daemon"])
    assert os.getsid(daemon.pid) != os.getsid(worker)
    assert os.getpgid(daemon.pid) != worker
    assert daemon.ppid() == worker  # re-parented to the worker (a subreaper), not init


def test_a_killed_host_leaves_no_process_of_its_training(
    start_host: Callable[..., Host], tree_env: dict[str, str], tmp_path: Path
) -> None:
    host = start_host(["--model", NAME, "--workers", "1"], env=tree_env)
    predict_workers = pool(host, "predict")["pids"]
    for pid in predict_workers:
        assert os.getpgid(pid) == pid
    accepted, pids = start_training(host, tmp_path / "pids.json")
    assert job(host, accepted["id"], NAME)["status"] == "running"
    assert_adopted(pids)

    # The host alone: the harness gave it a session of its own, and its group is
    # not what must stop the rest (the workers lead groups of their own anyway).
    os.kill(host.process.pid, signal.SIGKILL)
    assert host.process.wait(10) == -signal.SIGKILL
    for role, pid in [*pids.items(), *(("predict", p) for p in predict_workers)]:
        wait_until(lambda pid=pid: is_gone(pid), timeout=10, what=f"the {role} ({pid}) to exit")


def test_cancelling_kills_the_adopted_daemon_too(
    start_host: Callable[..., Host], tree_env: dict[str, str], tmp_path: Path
) -> None:
    host = start_host(["--model", NAME, "--workers", "1"], env=tree_env)
    accepted, pids = start_training(host, tmp_path / "pids.json")
    assert_adopted(pids)

    cancelled = host.delete(f"/v2/models/{NAME}/train/{accepted['id']}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    for role, pid in pids.items():
        wait_until(lambda pid=pid: is_gone(pid), timeout=10, what=f"the {role} ({pid}) to exit")

    # A new worker takes its place and trains again.
    wait_until(lambda: host.health()["ready"], what="a new train worker")
    again, fresh = start_training(host, tmp_path / "again.json")
    assert fresh["worker"] != pids["worker"]
    assert_adopted(fresh)
    host.delete(f"/v2/models/{NAME}/train/{again['id']}")
    assert wait_job(host, again["id"], model=NAME)["status"] == "cancelled"
