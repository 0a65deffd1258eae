"""One data directory, one host: a second host on a live directory leaves at once."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from conftest import cli, free_port

from deepaas_host.api import create_app
from deepaas_host.errors import DataDirectoryInUse
from deepaas_host.settings import Settings
from deepaas_host.store.lock import LOCK_FILENAME, DataDirLock

from .conftest import is_gone, job, pool, submit, wait_job, wait_until

if TYPE_CHECKING:
    from conftest import Host


def tree(directory: Path) -> dict[str, int]:
    """Every file under ``directory`` with its size."""
    return {str(p.relative_to(directory)): p.stat().st_size for p in directory.rglob("*")}


def test_a_second_host_leaves_at_once_and_the_first_keeps_working(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    # The default data directory, as a newcomer following the README gets it.
    home = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    first = start_host(
        ["--model", "demo", "--workers", "1"], data_dir=tmp_path / "xdg" / "deepaas-host"
    )
    upload = os.urandom(70_000)
    running = submit(first, files={"data": ("train.bin", upload)}, epochs=8, duration=8)
    wait_job(first, running["id"], {"running"})
    job_dir = first.data_dir / "jobs" / running["id"]
    files = tree(job_dir)
    assert files

    second = cli(
        "run",
        "--model",
        "demo",
        "--listen-port",
        str(free_port()),
        env=home,
        timeout=20,  # it used to wait about a minute for the online models' lock
    )
    assert second.returncode == 1
    assert second.stdout == ""
    (line,) = second.stderr.splitlines()
    assert f"pid {first.process.pid}" in line
    assert str(first.data_dir) in line
    assert "--data-dir" in line and "stop" in line

    # The first host lost nothing: its job, its files, its upload directory.
    assert job(first, running["id"])["status"] == "running"
    assert tree(job_dir) == files
    assert (first.data_dir / "uploads").is_dir()
    predicted = first.post("/v2/models/demo/predict/", files={"data": ("x.bin", upload)})
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["predictions"]["data"]["sha256"] == hashlib.sha256(upload).hexdigest()
    version = first.post(
        "/v2/models/demo/versions/",
        data={"engine": "custom"},
        files={"file": ("v.json", b'{"tag": "mine"}')},
    )
    assert version.status_code == 201, version.text
    done = wait_job(first, running["id"])
    assert done["status"] == "done", done
    assert done["result"]["data_sha256"] == hashlib.sha256(upload).hexdigest()

    # Token commands work next to the running host.
    created = cli("token", "create", "--scope", "predict", "--data-dir", str(first.data_dir))
    assert created.returncode == 0, created.stderr
    listed = cli("token", "list", "--data-dir", str(first.data_dir))
    assert listed.returncode == 0, listed.stderr
    assert first.health()["live"] is True


def test_no_worker_holds_the_lock_so_a_killed_host_is_replaced_at_once(
    start_host: Callable[..., Host],
) -> None:
    first = start_host(["--model", "demo", "--workers", "2"])
    lock = (first.data_dir / LOCK_FILENAME).resolve()
    assert lock.read_text().strip() == str(first.process.pid)
    workers = [pid for stats in first.health()["pools"].values() for pid in stats["pids"]]
    assert len(workers) >= 4  # predict x2, train, online

    def holds_lock(pid: int) -> bool:
        fds = Path(f"/proc/{pid}/fd")
        return any(os.path.realpath(fd) == str(lock) for fd in fds.iterdir())

    assert holds_lock(first.process.pid)
    assert not [pid for pid in workers if holds_lock(pid)]

    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    # Right away, while the killed host's workers may still be exiting.
    second = start_host(["--model", "demo"], data_dir=first.data_dir)
    assert (first.data_dir / LOCK_FILENAME).read_text().strip() == str(second.process.pid)
    assert wait_job(second, submit(second, epochs=1, duration=0)["id"])["status"] == "done"
    for pid in workers:
        wait_until(lambda pid=pid: is_gone(pid), timeout=10, what=f"worker {pid} to exit")
    assert pool(second, "train")["ready"] == 1


@pytest.mark.asyncio
async def test_an_embedded_app_takes_the_lock_first_unless_handed_one(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    live = start_host(["--model", "demo", "--workers", "1", "--no-train"])
    before = tree(live.data_dir)
    settings = Settings(data_dir=live.data_dir, models=("demo",), train=False)
    runner = web.AppRunner(create_app(settings))
    with pytest.raises(DataDirectoryInUse) as refused:
        await runner.setup()
    await runner.cleanup()
    assert refused.value.holder == live.process.pid
    assert tree(live.data_dir).keys() == before.keys()
    assert live.health()["ready"] is True

    own = tmp_path / "own"
    with DataDirLock.acquire(own) as lock:
        with pytest.raises(ValueError, match="not a held lock"):
            create_app(Settings(data_dir=tmp_path / "other", models=("demo",)), data_lock=lock)
        handed = web.AppRunner(
            create_app(Settings(data_dir=own, models=("demo",), train=False), data_lock=lock)
        )
        await handed.setup()  # would refuse if it took the lock a second time
        try:
            assert (own / "uploads").is_dir()
        finally:
            await handed.cleanup()
        assert lock.held
    assert not lock.held
    with DataDirLock.acquire(own):  # released: free for the next one
        pass
