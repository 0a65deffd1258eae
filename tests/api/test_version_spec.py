"""The OpenAPI document says what the version routes enforce, and they send what it says."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import EXAMPLE_MODELS, Host

from .test_spec_conformance import Conformance

LOADABLE = {"demo", "iris"}
NAMES_OK = ["v1", "best", "2024.01.31+cpu", "a_b-c", "x" * 128]
NAMES_BAD = ["", ".hidden", "-x", "a/b", "a b", "v1\n", "é", "x" * 129]


def version_parameters(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "version":
                    found.append((f"{method.upper()} {path}", parameter))
    return found


def test_every_version_name_in_the_spec_carries_the_enforced_pattern(
    spec: dict[str, Any],
) -> None:
    found = version_parameters(spec)
    paths = [where for where, p in found if p["in"] == "path"]
    # get, delete, download, default, pin, unpin of every model (word-counts too); load, unload
    assert len(paths) == 6 * (len(EXAMPLE_MODELS) + 1) + 2 * len(LOADABLE)
    patterns = {p["schema"]["pattern"] for _, p in found}
    upload = spec["paths"]["/v2/models/demo/versions/"]["post"]["requestBody"]
    field = upload["content"]["multipart/form-data"]["schema"]["properties"]["version"]
    patterns.add(field["pattern"])
    assert spec["components"]["schemas"]["Version"]["properties"]["name"]["pattern"] in patterns
    (pattern,) = patterns
    for name in NAMES_OK:
        assert re.search(pattern, name), name
    for name in NAMES_BAD:
        # ECMA-262's $ matches only at the very end; Python's \Z is that.
        assert not re.search(pattern.replace("$", r"\Z"), name), name


@pytest.mark.parametrize("name", [*EXAMPLE_MODELS, "word-counts"])
def test_only_models_that_load_versions_have_load_unload_and_version(
    spec: dict[str, Any], name: str
) -> None:
    base = f"/v2/models/{name}/versions/{{version}}"
    predict = spec["paths"][f"/v2/models/{name}/predict/"]["post"]
    query = [p for p in predict.get("parameters", []) if p["name"] == "version"]
    for action in ("pin", "unpin", "default"):
        assert set(spec["paths"][f"{base}/{action}"]) == {"post"}
    if name in LOADABLE:
        assert {f"{base}/load", f"{base}/unload"} <= set(spec["paths"])
        assert [p["in"] for p in query] == ["query"]
    else:
        assert f"{base}/load" not in spec["paths"]
        assert f"{base}/unload" not in spec["paths"]
        assert query == []


def test_the_version_document_states_its_nullable_fields(spec: dict[str, Any]) -> None:
    version = spec["components"]["schemas"]["Version"]
    nullable = {k for k, v in version["properties"].items() if v.get("nullable")}
    assert nullable == {"description", "job_id", "metrics"}
    assert set(version["required"]) == set(version["properties"])
    assert version["properties"]["source"]["enum"] == ["upload", "training"]
    assert version["properties"]["pinned"]["type"] == "boolean"


def test_version_routes_answer_what_the_spec_documents(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--model", "legacy", "--workers", "1"])
    check = Conformance(host.get("/v2/openapi.json").json())
    base = "/v2/models/demo/versions/"
    item = base + "{version}"

    def upload(model: str, content: bytes, **fields: str) -> Any:
        return host.post(
            f"/v2/models/{model}/versions/",
            data={"engine": "custom", **fields},
            files={"file": ("v.json", content)},
        )

    created = check.check(upload("demo", b'{"a": 1}', version="one"), base, "post")
    assert created["name"] == "one" and created["job_id"] is None and created["pinned"] is False
    check.check(upload("demo", b'{"a": 2}', version="one"), base, "post")  # 409
    for bad in ("a/b", "v1\n", ".x"):
        refused = upload("demo", b"{}", version=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert set(refused.json()["details"]) == {"version"}
        check.check(refused, base, "post")
    listing = check.check(host.get(base), base)
    assert [v["name"] for v in listing["versions"]] == ["one"]
    for action in ("pin", "unpin", "default", "load", "unload"):
        path = f"{item}/{action}"
        answered = check.check(host.post(f"{base}one/{action}"), path, "post")
        assert answered["pinned"] is (action == "pin")
        check.check(host.post(f"{base}nope/{action}"), path, "post")  # 404
    check.check(host.get(f"{base}one"), item)
    got = host.get(f"{base}one/download")
    assert got.status_code == 200 and got.content == b'{"a": 1}'

    # A segment that is no version name matches no route.
    for path in (f"{base}.x", f"{base}a%20b/pin", f"{base}v1%0A", f"{base}{'x' * 129}/default"):
        missing = host.post(path) if path.endswith(("/pin", "/default")) else host.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["error"] == "NotFound"

    # A trained version: a job id and metrics.
    job = host.post("/v2/models/demo/train/", data={"epochs": 1, "duration": 0}).json()
    deadline = time.monotonic() + 60
    while (record := host.get(f"/v2/models/demo/train/{job['id']}").json())["status"] != "done":
        assert time.monotonic() < deadline, record
        time.sleep(0.05)
    trained = check.check(host.get(f"{base}{record['version']}"), item)
    assert trained["source"] == "training" and trained["job_id"] == job["id"]
    assert trained["metrics"]["epochs"] == 1

    # legacy has no load(): it stores versions, and has no load or unload route.
    stored = check.check(
        upload("legacy", json.dumps([1]).encode()), "/v2/models/legacy/versions/", "post"
    )
    assert stored["description"] is None
    assert host.post(f"/v2/models/legacy/versions/{stored['name']}/load").status_code == 404
    deleted = check.check(host.delete(f"{base}one"), item, "delete")
    assert deleted["name"] == "one"
    check.check(host.delete(f"{base}one"), item, "delete")  # 404
