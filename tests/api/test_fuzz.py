"""Property-based fuzzing of a private host with schemathesis, from its own OpenAPI document.

What is excluded, and why:

* demo's ``fail`` and ``sleep`` arguments are removed from the document given to
  the fuzzer: they make the model raise, kill its worker or stall on purpose
  (tested in ``test_model_errors.py``);
* iris raising ``ValueError`` for an incomplete input is its own validation and
  the host's documented ModelError (see ``fuzz_hooks.py``);
* the ``negative_data_rejection``/``positive_data_acceptance`` checks: form
  fields are text, so ``"0"`` is a valid bool and ``"null"`` no null; and
  ``use_after_free``: DELETE on a job cancels it and keeps its record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EXAMPLE_MODELS, Host

from .conftest import predictions

ST = Path(sys.executable).with_name("st")
HOOKS = Path(__file__).with_name("fuzz_hooks.py")
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
    "ensure_resource_availability",
]


@pytest.mark.timeout(300)
def test_fuzzing_finds_no_server_error_and_no_spec_mismatch(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    args = ["--workers", "2"]
    for name in EXAMPLE_MODELS:
        args += ["--model", name]
    host = start_host(args)
    spec = host.get("/v2/openapi.json").json()
    body = spec["paths"]["/v2/models/demo/predict/"]["post"]["requestBody"]
    for media in body["content"].values():
        for on_purpose in ("fail", "sleep"):
            del media["schema"]["properties"][on_purpose]
    spec_file = tmp_path / "openapi.json"
    spec_file.write_text(json.dumps(spec))
    before = host.health()["pools"]["predict"]

    run = subprocess.run(
        [
            str(ST),
            "run",
            str(spec_file),
            "--url",
            host.url,
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            "30",
            "--workers",
            "1",
            "--request-timeout",
            "60",
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    operations = sum(len(ops) for ops in spec["paths"].values())
    assert f"Tested: {operations}" in output, output[-5000:]
    assert " generated, " in output

    # the host is healthy, no predict worker died, and it never failed unexpectedly
    health = host.health()
    assert health["ready"] is True
    assert health["pools"]["predict"]["restarts"] == before["restarts"]
    assert sorted(health["pools"]["predict"]["pids"]) == sorted(before["pids"])
    assert predictions(host.post("/v2/models/demo/predict/", params={"count": 2}))["count"] == 2
    assert "unhandled error" not in host.log()
