"""Helpers for the access-token tests: the ``deepaas-host token`` command and headers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import cli


def token_cli(data_dir: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``deepaas-host token *args --data-dir data_dir``; never raises on failure."""
    where = [] if data_dir is None else ["--data-dir", str(data_dir)]
    return cli("token", *args, *where)


def create_token(data_dir: Path, scope: str, name: str = "") -> dict[str, Any]:
    """Create a token with the command; its record with ``token``."""
    result = token_cli(data_dir, "create", "--scope", scope, "--name", name, "--json")
    assert result.returncode == 0, result.stderr
    created: dict[str, Any] = json.loads(result.stdout)
    return created


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
