"""``deepaas-host remote …`` run as a user would: a real process against a real host."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import Host, free_port
from PIL import Image

from .conftest import remote


def test_models_table_and_json(served: Host) -> None:
    result = remote("models", "--url", served.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "DESCRIPTION"]
    assert {line.split()[0] for line in lines[1:]} == {"demo", "iris"}
    result = remote("models", "--json", "--url", served.url)
    assert {m["name"] for m in json.loads(result.stdout)} == {"demo", "iris"}


def test_predict_with_arguments_and_a_file(served: Host, tmp_path: Path) -> None:
    data = tmp_path / "sample.bin"
    data.write_bytes(b"\x00\x01" * 5000)
    result = remote(
        "predict",
        "demo",
        "--url",
        served.url,
        "--label",
        "dog",
        "--count=2",
        "--tags",
        "a",
        "--tags",
        "b",
        "--flag",
        "--data",
        f"@{data}",
    )
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)["predictions"]
    assert prediction["label"] == "dog"
    assert prediction["count"] == 2
    assert prediction["tags"] == ["a", "b"]
    assert prediction["flag"] is True
    assert prediction["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()


def test_predict_binary_to_a_file(served: Host, tmp_path: Path) -> None:
    out = tmp_path / "bars.png"
    result = remote("predict", "demo", "--accept", "image/png", "-o", str(out), "--url", served.url)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG"


def test_predict_validation_error(served: Host) -> None:
    result = remote("predict", "demo", "--label", "zebra", "--url", served.url)
    assert result.returncode == 2
    assert "label: Must be one of: cat, dog, bird." in result.stderr


def test_unknown_model_and_unreachable_host(served: Host) -> None:
    result = remote("versions", "no-such-model", "--url", served.url)
    assert result.returncode == 1
    assert "no-such-model" in result.stderr
    result = remote("models", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "Cannot reach" in result.stderr


def test_train_and_wait(served: Host) -> None:
    result = remote(
        "train", "demo", "--epochs", "2", "--duration", "0.2", "--wait", "--url", served.url
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "done"
    assert job["result"]["epochs"] == 2
    shown = remote("job", "demo", job["id"], "--url", served.url)
    assert json.loads(shown.stdout)["status"] == "done"


def test_train_and_cancel(served: Host) -> None:
    started = remote("train", "demo", "--epochs", "50", "--duration", "60", "--url", served.url)
    job = json.loads(started.stdout)
    result = remote("cancel", "demo", job["id"], "--url", served.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "cancelled"


def test_profile_upload_versions_download(registry: Host, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.ini"
    profiles.write_text(f"[local]\nurl = {registry.url}\ndownload_path = {tmp_path / 'models'}\n")
    source = tmp_path / "cli-version.json"
    source.write_text(json.dumps({"via": "cli"}))
    common = ["--profile", "local", "--profiles-file", str(profiles)]
    upload = remote(
        "upload", "demo", str(source), "--engine", "custom", "--version", "cli-1", *common
    )
    assert upload.returncode == 0, upload.stderr
    assert json.loads(upload.stdout)["name"] == "cli-1"
    again = remote(
        "upload", "demo", str(source), "--engine", "custom", "--version", "cli-1", *common
    )
    assert again.returncode == 1
    assert "cli-1" in again.stderr and "409" in again.stderr
    listing = remote("versions", "demo", *common)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split()[:3] == ["VERSION", "ENGINE", "SIZE"]
    assert "cli-1" in listing.stdout
    download = remote("download", "demo", "cli-1", *common)
    assert download.returncode == 0, download.stderr
    path = Path(download.stdout.strip())
    assert path == tmp_path / "models" / "demo" / "cli-1" / source.name
    assert path.read_bytes() == source.read_bytes()
    predict = remote("predict", "demo", "--version", "cli-1", *common)
    assert json.loads(predict.stdout)["predictions"]["version"] == {"via": "cli"}


def test_default_profile_from_the_current_folder(served: Host, tmp_path: Path) -> None:
    (tmp_path / "deepaas-host.ini").write_text(f"[default]\nurl = {served.url}\n")
    result = remote("models", "--json", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr


def test_missing_profile_and_bad_arguments(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    result = remote("models", "--profile", "nope", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "Profile 'nope' not found" in result.stderr
    result = remote("models", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "--url or --profile" in result.stderr
    result = remote("models", "--url", "http://127.0.0.1:9", "--bogus", "1")
    assert result.returncode == 2
    result = remote("predict", "demo", "stray", "--url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "Unexpected argument 'stray'" in result.stderr
