"""``deepaas-host predict|train|openapi``: the example plugins run in the command itself."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from conftest import cli
from fixtures.input_plugins import write_distribution
from openapi_spec_validator import validate
from PIL import Image


def test_predict_prints_json() -> None:
    result = cli("predict", "demo", "--label", "dog", "--count", "3")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "OK"
    prediction = answer["predictions"]
    assert prediction["label"] == "dog"
    assert prediction["count"] == 3
    assert prediction["values"] == pytest.approx([1 / 3, 2 / 3, 1.0])
    # The model was warmed in the command's own process.
    assert prediction["warm_pid"] == prediction["pid"] != os.getpid()


def test_predict_accepts_equals_and_repeats_and_flags() -> None:
    result = cli("predict", "demo", "--tags=a", "--tags", "b", "--flag", "--scale=2")
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)["predictions"]
    assert prediction["tags"] == ["a", "b"]
    assert prediction["flag"] is True
    assert prediction["values"] == [2.0]


def test_predict_without_warm() -> None:
    result = cli("predict", "demo", "--no-warm")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"]["warm_pid"] is None


def test_predict_uploads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(os.urandom(150_000))
    result = cli("predict", "demo", "--data", f"@{path}")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["predictions"]["data"]
    assert data["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data["size"] == path.stat().st_size
    assert data["original_filename"] == "photo.jpg"
    assert data["content_type"] == "image/jpeg"


def test_predict_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = cli("predict", "demo", "--accept", "image/png", "--count", "4", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"wrote {out.stat().st_size} bytes (image/png) to {out}" in result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG"
        image.verify()


def test_predict_writes_json_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "answer.json"
    result = cli("predict", "demo", "--label", "bird", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["predictions"]["label"] == "bird"


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (["--count", "0"], "count", "greater than or equal to 1"),
        (["--count", "three"], "count", "Not a valid integer."),
        (["--label", "horse"], "label", "Must be one of: cat, dog, bird."),
        (["--accept", "text/html"], "accept", "Must be one of"),
        (["--bogus", "1"], "bogus", "Unknown field."),
        (["--data", "photo.jpg"], "data", "Give a file as @path"),
        (["--data", "@/nonexistent/photo.jpg"], "data", "No such file"),
    ],
)
def test_a_bad_argument_exits_2_naming_the_field(args: list[str], field: str, message: str) -> None:
    result = cli("predict", "demo", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"deepaas-host: Invalid arguments: {field}."
    assert lines[1].startswith(f"  {field}: ")
    assert message in lines[1]


def test_a_model_error_exits_1_naming_the_exception() -> None:
    result = cli("predict", "demo", "--fail", "raise")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "deepaas-host: Model 'demo' raised ValueError: "
        "demo model failure requested with fail='raise'"
    )


def test_an_unknown_model_exits_1() -> None:
    result = cli("predict", "nope")
    assert result.returncode == 1
    assert "Plugin 'nope' (package not installed)" in result.stderr


def test_train_prints_metrics_and_progress(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_bytes(b"x,y\n" * 100)
    result = cli("train", "demo", "--epochs", "2", "--duration", "0.2", "--data", f"@{data}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["epochs"] == 2
    assert metrics["data_bytes"] == 400
    assert 0 < metrics["loss"] < 1
    assert metrics["elapsed"] >= 0.2
    progress = re.findall(r"^progress (\d+)% (.*)$", result.stderr, re.MULTILINE)
    assert [pct for pct, _ in progress] == ["0", "50", "100"]
    assert progress[1][1].startswith("epoch 1/2")
    assert progress[2][1].startswith("epoch 2/2")


def test_train_failure_exits_1() -> None:
    result = cli("train", "demo", "--epochs", "1", "--duration", "0", "--fail")
    assert result.returncode == 1
    assert "Model 'demo' raised RuntimeError: demo training failure" in result.stderr


def test_predict_iris_from_four_measurements() -> None:
    # The first flower of the iris data set, a setosa.
    args = ["--sepal-length", "5.1", "--sepal_width", "3.5"]
    args += ["--petal_length", "1.4", "--petal-width", "0.2"]
    result = cli("predict", "iris", *args)
    assert result.returncode == 0, result.stderr
    (prediction,) = json.loads(result.stdout)["predictions"]
    assert prediction["label"] == "setosa"
    assert set(prediction["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    assert prediction["probability"] == max(prediction["probabilities"].values())


def test_openapi_prints_a_valid_spec() -> None:
    result = cli("openapi", "--model", "demo", "--model", "legacy", "--base-path", "/m")
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    validate(spec)
    assert spec["openapi"].startswith("3.")
    paths = set(spec["paths"])
    assert {
        "/m/v2/models/demo/predict/",
        "/m/v2/models/demo/train/",
        "/m/v2/models/legacy/predict/",
    } <= paths
    assert not any("iris" in path for path in paths)


def test_openapi_without_training_routes() -> None:
    result = cli("openapi", "--model", "demo", "--no-train")
    assert result.returncode == 0, result.stderr
    paths = json.loads(result.stdout)["paths"]
    assert "/v2/models/demo/predict/" in paths
    assert not any("/train/" in path for path in paths)


def test_an_incomplete_flower_exits_2_naming_the_missing_measurements() -> None:
    result = cli("predict", "iris", "--sepal-length", "5.1", "--petal-width", "0.2")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        "deepaas-host: Model 'iris' refused the input: missing measurement(s) "
        "sepal_width, petal_length"
    )
    assert [line.split(":")[0] for line in lines[1:]] == ["  sepal_width", "  petal_length"]


@pytest.mark.parametrize(
    ("mode", "status", "first_line"),
    [
        ("validation", 2, "deepaas-host: Model 'refuser' refused the input: text: Too short."),
        ("invalid-whole", 2, "deepaas-host: Model 'refuser' refused the input: nothing to work"),
        ("overflow", 2, "deepaas-host: The values sent are out of range for model 'refuser'"),
        ("value-error", 1, "deepaas-host: Model 'refuser' raised ValueError: the model broke"),
    ],
)
def test_a_refusal_of_the_plugin_exits_2_and_its_failure_1(
    tmp_path: Path, mode: str, status: int, first_line: str
) -> None:
    site = write_distribution(tmp_path / "site")
    inherited = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), inherited]))}
    result = cli("predict", "refuser", "--mode", mode, "--scale", "3", env=env)
    assert result.returncode == status, result.stderr
    assert result.stderr.splitlines()[0].startswith(first_line)
