"""Shared helpers of the HTTP tests: curl, the served OpenAPI document, private hosts.

Everything runs against real ``deepaas-host run`` processes (see ``tests/conftest.py``).
``small_host`` is a second server kept for the session: it serves ``demo`` and the
``strict`` plugin below with one worker and a 1 KiB body limit, so upload clean-up,
size limits and required arguments can be checked without disturbing ``host``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Host, launch

CURL = shutil.which("curl")

#: Source of ``strict``: a module-style plugin whose every argument is required
#: (none of the example plugins has a required argument).
STRICT_SOURCE = '''
"""Every argument required: what a careful model author writes."""

import hashlib

from marshmallow import fields, validate

from deepaas_host.model.v2 import File


def get_metadata():
    return {"name": "strict", "description": "Every predict argument is required"}


def get_predict_args():
    return {
        "text": fields.Str(required=True),
        "number": fields.Int(required=True, validate=validate.Range(min=0, max=10)),
        "choice": fields.Str(required=True, validate=validate.OneOf(["a", "b"])),
        "image": File(required=True, metadata={"description": "Any file"}),
    }


def predict(text, number, choice, image):
    with open(image.filename, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    return {"text": text, "number": number, "choice": choice, "sha256": digest}
'''


def write_strict_plugin(site: Path) -> Path:
    """Install ``strict`` as a real distribution (entry point included) into ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "deepaas_api_strict.py").write_text(textwrap.dedent(STRICT_SOURCE))
    dist = site / "deepaas_api_strict-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: deepaas-api-strict\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text("[deepaas_host.model.v2]\nstrict = deepaas_api_strict\n")
    (dist / "top_level.txt").write_text("deepaas_api_strict\n")
    return site


def with_pythonpath(site: Path) -> dict[str, str]:
    inherited = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), inherited]))}


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run the curl binary; ``-sS`` is added and the exit status checked."""
    assert CURL is not None, "the curl binary is needed by these tests"
    return subprocess.run(
        [CURL, "-sS", "--max-time", str(int(timeout)), *args],
        capture_output=True,
        timeout=timeout + 10,
        check=True,
    )


def predictions(response: requests.Response) -> Any:
    """The ``predictions`` of a 200 answer of a model without response schema."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "OK"
    assert set(body) == {"status", "predictions"}
    return body["predictions"]


def assert_error(response: requests.Response, status: int, error: str | None = None) -> Any:
    """Check the one error shape; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["status"] == "error"
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    if error is not None:
        assert body["error"] == error, body
    return body


def wait_until(predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")


def uploads_of(host: Host) -> list[str]:
    return sorted(p.name for p in (host.data_dir / "uploads").iterdir())


@pytest.fixture(scope="session")
def spec(host: Host) -> dict[str, Any]:
    """The OpenAPI document of the session host."""
    response = host.get("/v2/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="session")
def small_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """demo + strict, one predict worker, request bodies up to 1 KiB."""
    tmp = tmp_path_factory.mktemp("small")
    site = write_strict_plugin(tmp / "site")
    h = launch(
        tmp,
        ["--model", "demo", "--model", "strict", "--max-body-size", "1K", "--no-train"],
        env=with_pythonpath(site),
    )
    yield h
    h.stop()


@pytest.fixture(scope="session")
def input_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """refuser and numbers (``tests/fixtures/input_plugins``), iris, legacy and
    word-counts: plugins refusing their input, numbers of every kind, one worker."""
    from fixtures.input_plugins import write_distribution

    tmp = tmp_path_factory.mktemp("input")
    site = write_distribution(tmp / "site")
    args = ["--workers", "1"]
    for name in ("refuser", "numbers", "iris", "legacy", "word-counts"):
        args += ["--model", name]
    h = launch(tmp, args, env=with_pythonpath(site))
    yield h
    h.stop()
