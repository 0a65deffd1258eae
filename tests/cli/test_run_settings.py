"""``deepaas-host run`` takes its settings from a TOML file, the environment and flags."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest
import requests
from conftest import BIN, Host, cli, free_port


class Launch(Protocol):
    def __call__(
        self, args: Sequence[str], *, env: Mapping[str, str], port: int, base_path: str
    ) -> Host: ...


@pytest.fixture
def launch_plain(tmp_path: Path) -> Iterator[Launch]:
    """Start ``deepaas-host run`` with only the given flags (no listen port added)."""
    started: list[Host] = []

    def launch(args: Sequence[str], *, env: Mapping[str, str], port: int, base_path: str) -> Host:
        log_path = tmp_path / f"host-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(BIN), "run", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,
            )
        host = Host(process, port, tmp_path / "data", base_path, log_path, list(args))
        started.append(host)
        host.wait_ready()
        return host

    yield launch
    for host in started:
        host.stop()


@pytest.fixture
def config(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / "host.toml"
    path.write_text(
        f'listen_port = {port}\nworkers = 2\nbase_path = "/from-file"\nmodels = ["demo"]\n'
        f'data_dir = "{tmp_path / "data"}"\n'
    )
    return path, port


def pool_size(host: Host) -> int:
    size: int = host.health()["pools"]["predict"]["size"]
    return size


def test_the_config_file_sets_port_workers_and_base_path(
    launch_plain: Launch, config: tuple[Path, int]
) -> None:
    path, port = config
    host = launch_plain(["--config", str(path)], env={}, port=port, base_path="/from-file")
    assert pool_size(host) == 2
    assert host.post("/v2/models/demo/predict/").json()["predictions"]["label"] == "cat"
    unprefixed = requests.get(f"http://127.0.0.1:{port}/v2/health", timeout=10)
    assert unprefixed.status_code == 404


def test_the_environment_beats_the_file(launch_plain: Launch, config: tuple[Path, int]) -> None:
    path, file_port = config
    port = free_port()
    env = {
        "DEEPAAS_HOST_CONFIG": str(path),
        "DEEPAAS_HOST_LISTEN_PORT": str(port),
        "DEEPAAS_HOST_WORKERS": "1",
        "DEEPAAS_HOST_BASE_PATH": "/from-env",
    }
    host = launch_plain([], env=env, port=port, base_path="/from-env")
    assert pool_size(host) == 1
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{file_port}/from-file/v2/health", timeout=5)


def test_flags_beat_the_environment(launch_plain: Launch, config: tuple[Path, int]) -> None:
    path, _ = config
    port = free_port()
    env = {"DEEPAAS_HOST_LISTEN_PORT": str(free_port()), "DEEPAAS_HOST_WORKERS": "1"}
    args = ["--config", str(path), "--listen-port", str(port), "--workers", "2"]
    host = launch_plain(
        [*args, "--base-path", "/from-flag"], env=env, port=port, base_path="/from-flag"
    )
    assert pool_size(host) == 2
    assert host.get("/v2/models/").json()["models"][0]["id"] == "demo"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"DEEPAAS_HOST_WORKERS": "many"}, "setting 'workers' from environment"),
        ([], {"DEEPAAS_HOST_WARM": "perhaps"}, "setting 'warm' from environment"),
        ([], {"DEEPAAS_HOST_WROKERS": "2"}, "unknown setting 'wrokers' in environment"),
        (["--workers", "0"], {}, "workers must be at least 1"),
        (["--max-body-size", "huge"], {}, "not a size: 'huge'"),
        (["--config", "/nonexistent/host.toml"], {}, "cannot read config file"),
    ],
)
def test_an_invalid_setting_exits_2_with_a_clear_message(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = cli("run", "--data-dir", str(tmp_path), *args, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("deepaas-host: configuration error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_value_in_the_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "host.toml"
    path.write_text('queue_size = "long"\n')
    result = cli("run", "--config", str(path), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"setting 'queue_size' from {path}" in result.stderr
