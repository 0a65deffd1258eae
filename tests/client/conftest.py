"""Hosts for the client tests: real ``deepaas-host run`` processes on loopback.

``served`` (demo and iris) is shared by the tests that only read or predict;
``registry`` (demo) is where versions are uploaded, replaced and made default,
so predictions on ``served`` never meet a version a test left behind.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from conftest import Host, cli, launch

from deepaas_host.client import Client


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = launch(tmp_path_factory.mktemp("client-served"), ["--model", "demo", "--model", "iris"])
    yield h
    h.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = launch(tmp_path_factory.mktemp("client-registry"), ["--model", "demo", "--no-train"])
    yield h
    h.stop()


@pytest.fixture
def client(served: Host) -> Iterator[Client]:
    with Client(served.url, progress=False) as c:
        yield c


@pytest.fixture
def registry_client(registry: Host) -> Iterator[Client]:
    with Client(registry.url, progress=False) as c:
        yield c


def remote(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``deepaas-host remote *args``; text output, never raises on failure."""
    return cli("remote", *args, env=env, cwd=cwd, timeout=timeout)
