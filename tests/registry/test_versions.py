"""Model versions against real servers: upload, replace, download, load, LRU, restart."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pytest
from conftest import Host
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

DEMO = "/v2/models/demo"
IRIS = "/v2/models/iris"
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def upload(host: Host, model: str, content: bytes, **fields: Any) -> Any:
    data = {
        "engine": "custom",
        **{k: str(v).lower() if isinstance(v, bool) else v for k, v in fields.items()},
    }
    return host.post(f"{model}/versions/", data=data, files={"file": ("artifact.json", content)})


def demo_version(**content: Any) -> bytes:
    return json.dumps(content).encode()


@pytest.fixture
def demo_host(start_host: Callable[..., Host]) -> Host:
    return start_host(["--model", "demo", "--model", "legacy", "--workers", "1", "--no-train"])


def test_upload_list_get_and_conflicts(demo_host: Host) -> None:
    content = demo_version(weights=[1, 2, 3])
    first = upload(demo_host, DEMO, content, description="first")
    assert first.status_code == 201, first.text
    doc = first.json()
    assert doc["name"] == "v1"
    assert doc["source"] == "upload"
    assert doc["size"] == len(content)
    assert doc["sha256"] == hashlib.sha256(content).hexdigest()
    assert doc["description"] == "first"
    assert doc["default"] is True
    assert first.headers["Location"].endswith(f"{DEMO}/versions/v1")

    named = upload(demo_host, DEMO, demo_version(n=2), version="best", engine="pickle")
    assert named.status_code == 201
    listing = demo_host.get(f"{DEMO}/versions/").json()
    assert [v["name"] for v in listing["versions"]] == ["best", "v1"]
    assert listing["default"] == "best"  # the newest until one is set

    conflict = upload(demo_host, DEMO, demo_version(n=3), version="v1")
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "ModelAlreadyExists"
    assert "'v1'" in conflict.json()["message"] and "'demo'" in conflict.json()["message"]

    replacement = demo_version(n=4)
    replaced = upload(demo_host, DEMO, replacement, version="v1", force=True, engine="onnx")
    assert replaced.status_code == 200
    again = demo_host.get(f"{DEMO}/versions/v1").json()
    assert again["sha256"] == hashlib.sha256(replacement).hexdigest()
    assert again["engine"] == "onnx"
    assert again["description"] == "first"  # not given: kept
    assert again["created"] == doc["created"]
    assert again["id"] == doc["id"]

    missing = demo_host.get(f"{DEMO}/versions/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "VersionNotFound"
    unknown = demo_host.get("/v2/models/nope/versions/")
    assert unknown.status_code == 404 and unknown.json()["error"] == "ModelNotFound"


def test_an_artifact_the_model_cannot_load_is_refused(demo_host: Host) -> None:
    bad = upload(demo_host, DEMO, b"\x00not json")
    assert bad.status_code == 422
    assert set(bad.json()["details"]) == {"file"}
    assert "load() raised" in bad.json()["details"]["file"][0]
    assert demo_host.get(f"{DEMO}/versions/").json()["versions"] == []
    artifacts = demo_host.data_dir / "artifacts"
    assert not artifacts.exists() or not any(p.is_file() for p in artifacts.rglob("*"))
    # A model without load() stores any file; it has no load or unload route at all,
    # and predicting with a version is refused by name.
    stored = upload(demo_host, "/v2/models/legacy", b"anything")
    assert stored.status_code == 201
    for action in ("load", "unload"):
        absent = demo_host.post(f"/v2/models/legacy/versions/v1/{action}")
        assert absent.status_code == 404, absent.text
        assert absent.json()["error"] == "NotFound"
    refused = demo_host.post("/v2/models/legacy/predict/", params={"version": "v1"})
    assert refused.status_code == 422
    assert "load" in refused.json()["details"]["version"][0]


def test_download_with_checksum_and_resume(demo_host: Host, tmp_path: Path) -> None:
    content = demo_version(blob="x" * 200_000)
    upload(demo_host, DEMO, content)
    url = f"{demo_host.url}{DEMO}/versions/v1/download"
    whole = demo_host.get(f"{DEMO}/versions/v1/download")
    assert whole.status_code == 200
    assert whole.content == content
    assert whole.headers["X-Checksum-SHA256"] == hashlib.sha256(content).hexdigest()
    assert "attachment" in whole.headers["Content-Disposition"]

    partial = tmp_path / "artifact.json"
    partial.write_bytes(content[:12345])
    out = subprocess.run(
        ["curl", "-sS", "-C", "-", "-o", str(partial), "-w", "%{http_code} %{size_download}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    status, size = out.stdout.split()
    assert status == "206"
    assert int(size) == len(content) - 12345
    assert partial.read_bytes() == content


def test_load_unload_and_predict_by_version(demo_host: Host) -> None:
    upload(demo_host, DEMO, demo_version(tag="one"))
    upload(demo_host, DEMO, demo_version(tag="two"))
    by_default = demo_host.post(f"{DEMO}/predict/").json()["predictions"]
    assert by_default["version"] == {"tag": "two"}
    chosen = demo_host.post(f"{DEMO}/predict/", params={"version": "v1"}).json()["predictions"]
    assert chosen["version"] == {"tag": "one"}
    assert chosen["version_pid"] == chosen["pid"]

    assert demo_host.post(f"{DEMO}/versions/v1/default").json()["default"] is True
    assert demo_host.post(f"{DEMO}/predict/").json()["predictions"]["version"] == {"tag": "one"}
    assert demo_host.get(f"{DEMO}/versions/").json()["default"] == "v1"

    unloaded = demo_host.post(f"{DEMO}/versions/v1/unload").json()
    assert unloaded["loaded"] is False
    loaded = demo_host.post(f"{DEMO}/versions/v1/load").json()
    assert loaded["loaded"] is True
    gone = demo_host.post(f"{DEMO}/predict/", params={"version": "v7"})
    assert gone.status_code == 404 and gone.json()["error"] == "VersionNotFound"


def test_least_recently_used_versions_are_released(start_host: Callable[..., Host]) -> None:
    host = start_host(
        ["--model", "demo", "--workers", "1", "--no-train", "--max-loaded-versions", "2"]
    )
    for tag in ("a", "b", "c"):
        assert upload(host, DEMO, demo_version(tag=tag)).status_code == 201

    def loaded() -> set[str]:
        return {v["name"] for v in host.get(f"{DEMO}/versions/").json()["versions"] if v["loaded"]}

    assert loaded() == {"v2", "v3"}  # each upload was loaded to check it; v1 went first
    host.post(f"{DEMO}/predict/", params={"version": "v1"})
    assert loaded() == {"v3", "v1"}
    host.post(f"{DEMO}/predict/", params={"version": "v3"})
    host.post(f"{DEMO}/predict/", params={"version": "v2"})
    assert loaded() == {"v3", "v2"}


def test_a_corrupt_or_missing_artifact_is_a_clear_error(demo_host: Host) -> None:
    upload(demo_host, DEMO, demo_version(tag="one"))
    upload(demo_host, DEMO, demo_version(tag="two"))
    demo_host.post(f"{DEMO}/versions/v1/unload")
    (artifact,) = [
        p
        for p in (demo_host.data_dir / "artifacts" / "demo").iterdir()
        if p.read_bytes() == demo_version(tag="one")
    ]
    artifact.write_bytes(demo_version(tag="tampered"))
    corrupt = demo_host.post(f"{DEMO}/predict/", params={"version": "v1"})
    assert corrupt.status_code == 500
    body = corrupt.json()
    assert body["error"] == "VersionLoadError"
    assert "'v1'" in body["message"] and "checksum" in body["message"]
    artifact.unlink()
    missing = demo_host.post(f"{DEMO}/predict/", params={"version": "v1"})
    assert missing.status_code == 500 and "missing" in missing.json()["message"]
    # the worker is healthy: the other version still serves, from the same process
    before = demo_host.health()["pools"]["predict"]
    fine = demo_host.post(f"{DEMO}/predict/", params={"version": "v2"})
    assert fine.status_code == 200
    assert fine.json()["predictions"]["version"] == {"tag": "two"}
    assert demo_host.health()["pools"]["predict"]["restarts"] == before["restarts"] == 0


def test_delete_removes_record_and_artifact(demo_host: Host) -> None:
    upload(demo_host, DEMO, demo_version(tag="one"))
    files = list((demo_host.data_dir / "artifacts" / "demo").iterdir())
    assert len(files) == 1
    deleted = demo_host.delete(f"{DEMO}/versions/v1")
    assert deleted.status_code == 200 and deleted.json()["name"] == "v1"
    assert demo_host.get(f"{DEMO}/versions/v1").status_code == 404
    assert not files[0].exists()
    # with no version left, predict falls back to the plugin's own model
    plain = demo_host.post(f"{DEMO}/predict/").json()["predictions"]
    assert "version" not in plain


def test_training_registers_a_version_that_serves(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "iris", "--workers", "1"])
    job = host.post(f"{IRIS}/train/", data={"n_estimators": 10}).json()
    import time

    deadline = time.monotonic() + 60
    while (record := host.get(f"{IRIS}/train/{job['id']}").json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert record["status"] == "done", record
    assert record["version"] == "v1"
    version = host.get(f"{IRIS}/versions/v1").json()
    assert version["source"] == "training"
    assert version["job_id"] == job["id"]
    assert version["engine"] == "joblib"
    assert version["metrics"]["accuracy"] == record["result"]["accuracy"]
    answer = host.post(f"{IRIS}/predict/", params={**SETOSA, "version": "v1"}).json()
    assert answer["predictions"][0]["label"] == "setosa"


def test_an_uploaded_sklearn_model_serves_its_own_predictions(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    host = start_host(["--model", "iris", "--workers", "1", "--no-train"])
    iris = load_iris()
    # A deliberately one-class forest: its answers cannot come from the built-in model.
    only_virginica = RandomForestClassifier(n_estimators=3, random_state=0).fit(
        iris.data[100:], iris.target[100:]
    )
    path = tmp_path / "forest.joblib"
    joblib.dump(only_virginica, path)
    with path.open("rb") as fh:
        created = host.post(
            f"{IRIS}/versions/", data={"engine": "joblib"}, files={"file": ("forest.joblib", fh)}
        )
    assert created.status_code == 201, created.text
    answer = host.post(f"{IRIS}/predict/", params=SETOSA).json()  # default version
    assert answer["predictions"][0]["label"] == "virginica"


def test_versions_and_default_survive_a_restart(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data_dir = tmp_path / "shared"
    args = ["--model", "demo", "--workers", "1", "--no-train"]
    first = start_host(args, data_dir=data_dir)
    upload(first, DEMO, demo_version(tag="one"))
    upload(first, DEMO, demo_version(tag="two"))
    first.post(f"{DEMO}/versions/v1/default")
    before = first.get(f"{DEMO}/versions/").json()
    assert first.stop() == 0
    second = start_host(args, data_dir=data_dir)
    after = second.get(f"{DEMO}/versions/").json()
    assert after["default"] == "v1"
    strip = [
        {k: v for k, v in d.items() if k not in ("href", "download", "loaded")}
        for d in after["versions"]
    ]
    assert strip == [
        {k: v for k, v in d.items() if k not in ("href", "download", "loaded")}
        for d in before["versions"]
    ]
    assert second.post(f"{DEMO}/predict/").json()["predictions"]["version"] == {"tag": "one"}
