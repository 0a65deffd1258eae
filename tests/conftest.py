"""Shared fixtures: real ``deepaas-host run`` processes on loopback.

``host`` is one server (every example plugin, two predict workers) shared by the
session; ``start_host`` starts a private one with any flags, stopped after the test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

BIN = Path(sys.executable).with_name("deepaas-host")
EXAMPLE_MODELS = ("demo", "iris", "legacy", "legacy_class", "legacy_instance")
#: The online-learning example plugins (plugins_example/river_models).
ONLINE_MODELS = (
    "trump-approval",
    "phishing",
    "image-segments",
    "text-clusters",
    "running-mean",
    "word-counts",
)


def cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``deepaas-host *args`` to completion; text output, never raises on failure."""
    return subprocess.run(
        [str(BIN), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Host:
    """A running ``deepaas-host run`` process."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    base_path: str = ""
    log_path: Path | None = None
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return requests.delete(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/v2/health").json()
        return body

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"host exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.get("/v2/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"host not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def launch(
    tmp: Path,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
    port: int | None = None,
    wait: bool = True,
    base_path: str = "",
) -> Host:
    """Start ``deepaas-host run`` with ``args`` (listen port and data dir are added)."""
    port = port or free_port()
    data_dir = data_dir or tmp / "data"
    log_path = tmp / f"host-{port}-{time.monotonic_ns()}.log"
    full = [
        str(BIN),
        "run",
        "--listen-port",
        str(port),
        "--data-dir",
        str(data_dir),
        *args,
    ]
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            full, stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True
        )
    host = Host(process, port, data_dir, base_path, log_path, list(args))
    if wait:
        host.wait_ready()
    return host


@pytest.fixture(scope="session")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    tmp = tmp_path_factory.mktemp("host")
    args: list[str] = ["--workers", "2"]
    for name in (*EXAMPLE_MODELS, *ONLINE_MODELS):
        args += ["--model", name]
    h = launch(tmp, args)
    yield h
    h.stop()


@pytest.fixture
def start_host(tmp_path: Path) -> Iterator[Callable[..., Host]]:
    started: list[Host] = []

    def start(args: Sequence[str] = (), **kw: Any) -> Host:
        h = launch(tmp_path, args, **kw)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()
