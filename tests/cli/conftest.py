"""Running the ``deepaas-host`` command as a user would: a real process, real plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures.broken_plugins import write_distribution


@pytest.fixture
def broken_env(tmp_path: Path) -> dict[str, str]:
    """Environment with the broken plugins' distribution on ``PYTHONPATH``."""
    site = write_distribution(tmp_path / "site")
    inherited = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), inherited]))}
