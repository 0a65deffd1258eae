"""Running the ``deepaas-host`` command as a user would: a real process, real plugins."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from conftest import BIN
from fixtures.broken_plugins import write_distribution


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


@pytest.fixture
def broken_env(tmp_path: Path) -> dict[str, str]:
    """Environment with the broken plugins' distribution on ``PYTHONPATH``."""
    site = write_distribution(tmp_path / "site")
    inherited = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), inherited]))}
