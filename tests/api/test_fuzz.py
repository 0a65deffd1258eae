"""Property-based fuzzing of private hosts with schemathesis, from their own OpenAPI document.

Every operation of the document is fuzzed, the online-learning and version
routes included, on three runs: a host without tokens; a host with a ``manage``
token, with that token; and the same host without it, where every protected
operation must answer 401 JSON. No run may see a 5xx or a response the
document does not describe.

The hosts serve the example plugins, two online plugins (so the online routes
have something to create), and the ``refuser`` and ``numbers`` plugins of
``tests/fixtures/input_plugins`` (a model refusing its input, arguments of
every numeric kind, nested ones included).

What is excluded, and why:

* the two server-sent event streams (``/v2/online/{name}/stream/…``): a stream
  lasts until the client leaves, and the fuzzer waits for the end of every
  body (``tests/online`` follows them);
* demo's ``fail`` and ``sleep`` arguments and refuser's ``value-error`` mode
  are removed from the document given to the fuzzer: they make the model raise,
  kill its worker or stall on purpose (``test_model_errors.py`` and
  ``test_plugin_input.py`` test them);
* without a token, the ``unsupported_method`` check: a method no route
  declares needs a token as well (nobody without one may probe the API), so
  the answer is 401 where the check wants 405;
* the fuzzer gets lower maximums for iris's trees and for the seconds demo
  and legacy sleep while training (``CHEAPER``): big values only cost time;
* the ``negative_data_rejection``/``positive_data_acceptance`` checks: form
  fields are text, so ``"0"`` is a valid bool and ``"null"`` no null; and
  ``use_after_free``: DELETE on a job cancels it and keeps its record.

Example counts keep the three runs near two minutes on two cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, EXAMPLE_MODELS, Host
from fixtures.input_plugins import write_distribution

from .conftest import predictions, wait_until, with_pythonpath

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
#: Operations the fuzzer cannot call (see above), as ``st --exclude-path-regex``.
EXCLUDED_PATHS = r"/stream/"
MODELS = (*EXAMPLE_MODELS, "refuser", "numbers", "running-mean", "trump-approval")
#: Argument values that fail on purpose, per route: (argument, values or None for all).
ON_PURPOSE: dict[str, list[tuple[str, list[str] | None]]] = {
    "/v2/models/demo/predict/": [("fail", None), ("sleep", None)],
    "/v2/models/refuser/predict/": [("mode", ["value-error"])],
    "/v2/models/refuser/learn/": [("mode", ["value-error"])],
    "/v2/models/refuser/train/": [("mode", ["value-error"])],
}


#: Narrower bounds given to the fuzzer where the real ones only cost time: training
#: forests of hundreds of trees, or sleeping, teaches nothing about the API.
CHEAPER: dict[str, dict[str, float]] = {
    "/v2/models/iris/train/": {"n_estimators": 5},
    "/v2/models/demo/train/": {"duration": 0.5, "epochs": 5},
    "/v2/models/legacy/train/": {"sleep": 0.01, "epochs": 3},
}


def without_failures_on_purpose(spec: dict[str, Any]) -> dict[str, Any]:
    for path, bounds in CHEAPER.items():
        for media in spec["paths"][path]["post"]["requestBody"]["content"].values():
            for name, maximum in bounds.items():
                media["schema"]["properties"][name]["maximum"] = maximum
    for path, removals in ON_PURPOSE.items():
        body = spec["paths"][path]["post"]["requestBody"]
        for media in body["content"].values():
            properties = media["schema"]["properties"]
            for name, values in removals:
                if values is None:
                    del properties[name]
                else:
                    properties[name]["enum"] = [
                        v for v in properties[name]["enum"] if v not in values
                    ]
    return spec


def start_fuzz_host(
    start_host: Callable[..., Host], tmp_path: Path, data_dir: Path | None = None
) -> Host:
    site = write_distribution(tmp_path / "site")
    args = ["--workers", "2"]
    for name in MODELS:
        args += ["--model", name]
    return start_host(args, env=with_pythonpath(site), data_dir=data_dir)


def fuzz(
    host: Host,
    workdir: Path,
    *,
    examples: int,
    headers: Sequence[str] = (),
    checks: Sequence[str] = CHECKS,
    phases: str = "examples,coverage,fuzzing,stateful",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``st`` over the host's whole document (as the fuzzer gets it, which is returned)."""
    token = [h for h in headers if h.startswith("Authorization:")]
    response = host.get(
        "/v2/openapi.json", headers=dict([token[0].split(": ", 1)]) if token else {}
    )
    assert response.status_code == 200, response.text
    spec = without_failures_on_purpose(response.json())
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = workdir / "openapi.json"
    spec_file.write_text(json.dumps(spec))
    command = [
        str(ST),
        "run",
        str(spec_file),
        "--url",
        host.url,
        "--checks",
        ",".join(checks),
        "--max-examples",
        str(examples),
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--generation-database",
        "none",
        "--no-color",
        "--phases",
        phases,
        "--exclude-path-regex",
        EXCLUDED_PATHS,
    ]
    for header in headers:
        command += ["-H", header]
    run = subprocess.run(
        command,
        cwd=workdir,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    operations = sum(
        len(ops) for path, ops in spec["paths"].items() if not re.search(EXCLUDED_PATHS, path)
    )
    assert f"Tested: {operations}" in output, output[-5000:]
    assert " generated, " in output
    return spec


def assert_unharmed(host: Host, before: dict[str, Any], headers: dict[str, str]) -> None:
    """Healthy, no predict worker died, and it never failed unexpectedly."""
    # a cancelled running job takes its train worker with it: wait for the new one
    wait_until(lambda: host.get("/v2/health").json()["ready"] is True, 60, "a ready host")
    health = host.get("/v2/health").json()
    assert health["pools"]["predict"]["restarts"] == before["restarts"]
    assert sorted(health["pools"]["predict"]["pids"]) == sorted(before["pids"])
    answer = host.post("/v2/models/demo/predict/", params={"count": 2}, headers=headers)
    assert predictions(answer)["count"] == 2
    assert "unhandled error" not in host.log()


@pytest.mark.timeout(300)
def test_fuzzing_an_open_host_finds_no_server_error_and_no_spec_mismatch(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    host = start_fuzz_host(start_host, tmp_path)
    before = host.health()["pools"]["predict"]
    fuzz(host, tmp_path / "open", examples=15)
    assert_unharmed(host, before, {})


def create_token(data_dir: Path, scope: str) -> str:
    created = subprocess.run(
        [str(BIN), "token", "create", "--scope", scope, "--json", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token: str = json.loads(created.stdout)["token"]
    return token


@pytest.mark.timeout(400)
def test_fuzzing_a_host_with_tokens_with_and_without_the_token(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    token = create_token(data_dir, "manage")
    host = start_fuzz_host(start_host, tmp_path, data_dir)
    authorization = {"Authorization": f"Bearer {token}"}
    before = host.get("/v2/health").json()["pools"]["predict"]

    fuzz(host, tmp_path / "with-token", examples=10, headers=[f"Authorization: Bearer {token}"])
    assert_unharmed(host, before, authorization)

    # without the token: every protected operation answers 401 JSON, nothing else
    # (an undeclared method needs a token too, so nobody can probe the API: 401, not 405)
    checks = [c for c in CHECKS if c != "unsupported_method"]
    refused = tmp_path / "refused.txt"
    spec = fuzz(
        host,
        tmp_path / "without-token",
        examples=3,
        checks=[*checks, "protected_operations_refuse"],
        # every answer is a 401: no resource is created, so no sequence to follow
        phases="examples,coverage,fuzzing",
        env={"DEEPAAS_FUZZ_REFUSED": str(refused)},
    )
    protected = {
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, op in operations.items()
        if op.get("security") and not re.search(EXCLUDED_PATHS, path)
    }
    assert len(protected) > 80
    assert set(refused.read_text().splitlines()) == protected
    assert_unharmed(host, before, authorization)
