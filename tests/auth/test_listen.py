"""A host listening beyond loopback needs tokens, or ``--insecure``.

These hosts listen on every address but are only ever spoken to on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from conftest import BIN, free_port

from .conftest import bearer, create_token

if TYPE_CHECKING:
    from conftest import Host


def test_refuses_to_listen_on_every_address_without_tokens(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(BIN),
            "run",
            "--model",
            "demo",
            "--listen-ip",
            "0.0.0.0",
            "--listen-port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "deepaas-host: configuration error: refusing to listen on 0.0.0.0 without access tokens"
    )
    assert "deepaas-host token create" in result.stderr
    assert "--insecure" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ready in" not in result.stderr  # no worker was started


def test_insecure_serves_without_tokens(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--listen-ip", "0.0.0.0", "--insecure"])
    assert host.post("/v2/models/demo/predict/").status_code == 200
    assert "without authentication (--insecure)" in host.log()


def test_with_a_token_it_listens_and_requires_it(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    token = create_token(tmp_path / "data", "predict")["token"]
    host = start_host(
        ["--model", "demo", "--listen-ip", "0.0.0.0"], env={"DEEPAAS_HOST_INSECURE": "false"}
    )
    assert host.get("/v2/models/").status_code == 401
    assert host.get("/v2/models/", headers=bearer(token)).status_code == 200
