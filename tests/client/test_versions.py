"""Model versions through the client: upload, replace, download (verified, resumed),
load, unload, default, delete, predict by version."""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import Host

from deepaas_host.client import (
    ChecksumMismatch,
    Client,
    FileSystemDownloader,
    ModelAlreadyExists,
    ModelNotFound,
    VersionNotFound,
)


def version_name() -> str:
    return "t-" + uuid.uuid4().hex[:10]


def demo_version(tmp_path: Path, name: str, size: int = 0) -> Path:
    """A file the demo model loads as a version: a JSON object (padded to ``size``)."""
    content = {"name": name, "padding": ""}
    text = json.dumps(content)
    if size > len(text):
        content["padding"] = "x" * (size - len(text))
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(content))
    return path


#: (status, Range header sent, Content-Length received) of each answer.
Seen = list[tuple[int, str | None, int | None]]


class Statuses:
    """Records the status, Range and body size of every answer a client gets."""

    def __init__(self) -> None:
        self.seen: Seen = []

    def __call__(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        length = response.headers.get("Content-Length")
        self.seen.append(
            (
                response.status_code,
                response.request.headers.get("Range"),
                int(length) if length else None,
            )
        )


@pytest.fixture
def recorded(registry: Host) -> Iterator[tuple[Client, Seen]]:
    seen = Statuses()
    with Client(registry.url, progress=False, hooks={"response": [seen]}) as client:
        yield client, seen.seen


def test_upload_list_get(registry_client: Client, tmp_path: Path) -> None:
    name = version_name()
    path = demo_version(tmp_path, name)
    document = registry_client.add_model("demo", "custom", path, description="first", version=name)
    assert document["name"] == name
    assert document["engine"] == "custom"
    assert document["description"] == "first"
    assert document["source"] == "upload"
    assert document["size"] == path.stat().st_size
    assert document["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert registry_client.get_version("demo", name)["sha256"] == document["sha256"]
    assert name in [v["name"] for v in registry_client.get_versions("demo")]


def test_upload_an_open_file_with_a_generated_name(registry_client: Client, tmp_path: Path) -> None:
    payload = json.dumps({"from": "file object"}).encode()
    document = registry_client.add_model("demo", "custom", io.BytesIO(payload))
    assert document["name"]  # made up by the host
    assert document["size"] == len(payload)
    registry_client.delete_model("demo", document["name"])


def test_existing_version_needs_force(registry_client: Client, tmp_path: Path) -> None:
    name = version_name()
    registry_client.add_model("demo", "custom", demo_version(tmp_path, name), version=name)
    replacement = tmp_path / "replacement.json"
    replacement.write_text(json.dumps({"replaced": True}))
    with pytest.raises(ModelAlreadyExists) as info:
        registry_client.add_model("demo", "custom", replacement, version=name)
    assert info.value.status == 409
    assert info.value.version == name
    assert name in str(info.value)
    document = registry_client.add_model(
        "demo", "pickle", replacement, version=name, force=True, description="second"
    )
    assert document["engine"] == "pickle"
    assert document["sha256"] == hashlib.sha256(replacement.read_bytes()).hexdigest()


def test_upload_to_unknown_model(registry_client: Client, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no-such-model"):
        registry_client.add_model("no-such-model", "custom", demo_version(tmp_path, "x"))


def test_unknown_version(registry_client: Client, tmp_path: Path) -> None:
    with pytest.raises(VersionNotFound) as info:
        registry_client.get_version("demo", "no-such-version")
    assert info.value.status == 404
    assert "no-such-version" in str(info.value)
    with pytest.raises(VersionNotFound):
        registry_client.download("demo", "no-such-version", tmp_path / "x")


def test_download_is_verified(registry_client: Client, tmp_path: Path) -> None:
    name = version_name()
    source = demo_version(tmp_path, name, size=3_000_000)
    registry_client.add_model("demo", "custom", source, version=name)
    target = registry_client.download("demo", name, tmp_path / "out" / "model.json")
    assert target == tmp_path / "out" / "model.json"
    assert target.read_bytes() == source.read_bytes()
    assert not target.with_name("model.json.part").exists()
    # Into a folder: the file keeps the name it was uploaded with.
    folder = tmp_path / "folder"
    folder.mkdir()
    assert registry_client.download("demo", name, folder) == folder / source.name


def test_download_resumes_with_range(recorded: tuple[Client, Seen], tmp_path: Path) -> None:
    client, seen = recorded
    name = version_name()
    source = demo_version(tmp_path, name, size=2_000_000)
    client.add_model("demo", "custom", source, version=name)
    target = client.download("demo", name, tmp_path / "model.json")
    with target.open("r+b") as fh:
        fh.truncate(500_000)
    seen.clear()
    assert client.download("demo", name, target) == target
    assert target.read_bytes() == source.read_bytes()
    transfers = [s for s in seen if s[1] is not None or s[2] == 2_000_000]
    assert transfers == [(206, "bytes=500000-", source.stat().st_size - 500_000)]
    # Complete and verified: not fetched again.
    seen.clear()
    client.download("demo", name, target)
    assert [s for s in seen if s[0] == 206 or (s[2] or 0) > 100_000] == []


def test_download_resumes_an_interrupted_partial_file(
    recorded: tuple[Client, Seen], tmp_path: Path
) -> None:
    client, seen = recorded
    name = version_name()
    source = demo_version(tmp_path, name, size=1_000_000)
    client.add_model("demo", "custom", source, version=name)
    target = tmp_path / "model.json"
    target.with_name("model.json.part").write_bytes(source.read_bytes()[:300_000])
    seen.clear()
    client.download("demo", name, target)
    assert target.read_bytes() == source.read_bytes()
    assert (206, "bytes=300000-", 700_000) in seen


def test_corrupt_partial_file_is_detected_and_fetched_again(
    recorded: tuple[Client, Seen], tmp_path: Path
) -> None:
    client, seen = recorded
    name = version_name()
    source = demo_version(tmp_path, name, size=400_000)
    client.add_model("demo", "custom", source, version=name)
    target = tmp_path / "model.json"
    target.with_name("model.json.part").write_bytes(os.urandom(100_000))
    seen.clear()
    client.download("demo", name, target)
    assert target.read_bytes() == source.read_bytes()
    statuses = [(s[0], s[1]) for s in seen if s[2] in (300_000, 400_000)]
    assert statuses == [(206, "bytes=100000-"), (200, None)]


def test_download_without_resume_starts_over(recorded: tuple[Client, Seen], tmp_path: Path) -> None:
    client, seen = recorded
    name = version_name()
    source = demo_version(tmp_path, name, size=200_000)
    client.add_model("demo", "custom", source, version=name)
    target = tmp_path / "model.json"
    target.with_name("model.json.part").write_bytes(source.read_bytes()[:1000])
    seen.clear()
    client.download("demo", name, target, resume=False)
    assert target.read_bytes() == source.read_bytes()
    assert all(s[1] is None for s in seen)


def test_downloader_decides_the_folder(registry: Host, tmp_path: Path) -> None:
    name = version_name()
    source = demo_version(tmp_path, name)
    root = tmp_path / "models"
    with Client(registry.url, downloader=FileSystemDownloader(root), progress=False) as client:
        client.add_model("demo", "custom", source, version=name)
        path = client.download("demo", name)
        assert path == root / "demo" / name / source.name
        client.set_default("demo", name)
        model = client.get_model("demo", download_file=True)
        assert model["name"] == "demo"
        assert model["file"] == str(path)
        assert model["file_version"] == name


def test_load_unload_default_and_predict_by_version(
    registry_client: Client, tmp_path: Path
) -> None:
    first, second = version_name(), version_name()
    for name in (first, second):
        registry_client.add_model("demo", "custom", demo_version(tmp_path, name), version=name)
    loaded = registry_client.load("demo", first)
    assert loaded["name"] == first and loaded["loaded"] is True
    answer = registry_client.predict("demo", first, label="dog")
    assert answer["predictions"]["version"]["name"] == first
    assert answer["predictions"]["label"] == "dog"
    assert registry_client.unload("demo", first)["loaded"] is False
    assert registry_client.set_default("demo", second)["default"] is True
    assert registry_client.predict("demo")["predictions"]["version"]["name"] == second
    assert [v["name"] for v in registry_client.get_versions("demo") if v["default"]] == [second]
    with pytest.raises(VersionNotFound, match="no-such-version"):
        registry_client.predict("demo", "no-such-version")


def test_delete_version(registry_client: Client, tmp_path: Path) -> None:
    name = version_name()
    registry_client.add_model("demo", "custom", demo_version(tmp_path, name), version=name)
    registry_client.delete_model("demo", name)
    with pytest.raises(VersionNotFound):
        registry_client.get_version("demo", name)
    with pytest.raises(VersionNotFound):
        registry_client.delete_model("demo", name)


def test_complete_partial_file_is_renamed_without_a_request(
    recorded: tuple[Client, Seen], tmp_path: Path
) -> None:
    client, seen = recorded
    name = version_name()
    source = demo_version(tmp_path, name, size=50_000)
    client.add_model("demo", "custom", source, version=name)
    target = tmp_path / "model.json"
    target.with_name("model.json.part").write_bytes(source.read_bytes())
    seen.clear()
    assert client.download("demo", name, target) == target
    assert target.read_bytes() == source.read_bytes()
    assert [s for s in seen if (s[2] or 0) >= 50_000] == []


def test_corrupt_artifact_raises_checksum_mismatch(
    registry: Host, registry_client: Client, tmp_path: Path
) -> None:
    name = version_name()
    source = demo_version(tmp_path, name, size=20_000)
    registry_client.add_model("demo", "custom", source, version=name)
    # Damage the stored file behind the host's back (a failing disk, say).
    stored = [
        p
        for p in (registry.data_dir / "artifacts").rglob("*")
        if p.is_file() and p.read_bytes() == source.read_bytes()
    ]
    assert len(stored) == 1
    stored[0].write_bytes(source.read_bytes().replace(b"xxxx", b"yyyy", 1))
    target = tmp_path / "model.json"
    with pytest.raises(ChecksumMismatch) as info:
        registry_client.download("demo", name, target)
    assert info.value.expected == hashlib.sha256(source.read_bytes()).hexdigest()
    assert name in str(info.value)
    assert not target.exists()
    assert not target.with_name("model.json.part").exists()


def test_download_file_needs_a_default_version(client: Client) -> None:
    # Nothing uploads or trains iris on the ``served`` host: it has no versions.
    assert client.get_versions("iris") == []
    with pytest.raises(VersionNotFound, match="no default version"):
        client.get_model("iris", download_file=True)
    with pytest.raises(VersionNotFound):
        client.find_model("iris", download_file=True)
