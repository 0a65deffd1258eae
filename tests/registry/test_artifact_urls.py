"""Hosts whose artifact store is configured: a ``file://`` URL (a shared mount, served
through fsspec and the local cache) and a plain directory path, against real servers."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Host

from .test_versions import DEMO, demo_version, upload

ARGS = ["--model", "demo", "--workers", "1", "--no-train"]
BIG = demo_version(tag="big", blob="x" * 2_500_000)  # more than two read chunks


def location(kind: str, store: Path) -> str:
    return f"file://{store}" if kind == "file-url" else str(store)


def store_files(store: Path) -> dict[bytes, Path]:
    return {p.read_bytes(): p for p in store.rglob("*") if p.is_file()}


@pytest.fixture(params=["file-url", "plain-path"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_versions_live_in_the_configured_store(
    kind: str, start_host: Callable[..., Host], tmp_path: Path
) -> None:
    store = tmp_path / "mounted" / "artifacts"
    host = start_host([*ARGS, "--artifact-url", location(kind, store)])
    assert upload(host, DEMO, demo_version(tag="one")).status_code == 201
    created = upload(host, DEMO, BIG)
    assert created.status_code == 201, created.text
    sha = hashlib.sha256(BIG).hexdigest()
    assert created.json()["sha256"] == sha
    assert set(store_files(store)) == {demo_version(tag="one"), BIG}
    assert all(p.parent.name == "demo" for p in store_files(store).values())
    assert not (host.data_dir / "artifacts").exists()
    cache = host.data_dir / "artifact-cache"
    if kind == "file-url":  # uploads were loaded to check them: from the local cache
        assert (cache / sha).read_bytes() == BIG
    else:
        assert not cache.exists()

    one = host.post(f"{DEMO}/predict/", params={"version": "v1"})
    assert one.json()["predictions"]["version"] == {"tag": "one"}
    assert host.post(f"{DEMO}/predict/").json()["predictions"]["version"]["tag"] == "big"

    def check_downloads() -> None:
        url = f"{DEMO}/versions/v2/download"
        whole = host.get(url)
        assert whole.status_code == 200
        assert whole.content == BIG
        assert whole.headers["X-Checksum-SHA256"] == sha
        assert "attachment" in whole.headers["Content-Disposition"]
        part = host.get(url, headers={"Range": "bytes=1048570-2097160"})
        assert part.status_code == 206
        assert part.content == BIG[1048570:2097161]
        assert part.headers["Content-Range"] == f"bytes 1048570-2097160/{len(BIG)}"
        tail = host.get(url, headers={"Range": "bytes=-7"})
        assert (tail.status_code, tail.content) == (206, BIG[-7:])
        beyond = host.get(url, headers={"Range": f"bytes={len(BIG)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["Content-Range"] == f"bytes */{len(BIG)}"
        resumed = tmp_path / "resumed.json"
        resumed.write_bytes(BIG[:12345])
        out = subprocess.run(
            ["curl", "-sS", "-C", "-", "-o", str(resumed), "-w", "%{http_code}", host.url + url],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout == "206"
        assert resumed.read_bytes() == BIG

    check_downloads()
    if kind == "file-url":  # now streamed from the store itself, ranges by seeking
        shutil.rmtree(cache)
        check_downloads()
        assert not cache.exists()  # a download does not fill the cache

    deleted = host.delete(f"{DEMO}/versions/v2")
    assert deleted.status_code == 200
    assert set(store_files(store)) == {demo_version(tag="one")}
    assert not (cache / sha).exists()
    assert host.get(f"{DEMO}/versions/v2/download").status_code == 404


def test_a_corrupt_or_missing_artifact_in_the_store_is_a_clear_error(
    kind: str, start_host: Callable[..., Host], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    host = start_host([*ARGS, "--artifact-url", location(kind, store)])
    upload(host, DEMO, demo_version(tag="one"))
    upload(host, DEMO, demo_version(tag="two"))
    host.post(f"{DEMO}/versions/v1/unload")
    artifact = store_files(store)[demo_version(tag="one")]
    artifact.write_bytes(demo_version(tag="tampered"))
    shutil.rmtree(host.data_dir / "artifact-cache", ignore_errors=True)  # as on another host

    corrupt = host.post(f"{DEMO}/predict/", params={"version": "v1"})
    assert corrupt.status_code == 500, corrupt.text
    body = corrupt.json()
    assert body["error"] == "VersionLoadError"
    assert "'v1'" in body["message"] and "checksum" in body["message"]
    one = hashlib.sha256(demo_version(tag="one")).hexdigest()
    assert not (host.data_dir / "artifact-cache" / one).exists()  # nothing corrupt cached

    artifact.unlink()
    missing = host.post(f"{DEMO}/predict/", params={"version": "v1"})
    assert missing.status_code == 500
    assert missing.json()["error"] == "VersionLoadError"
    assert "missing" in missing.json()["message"]
    download = host.get(f"{DEMO}/versions/v1/download")
    assert download.status_code == 500
    assert download.json()["error"] == "ArtifactError"
    assert "'v1'" in download.json()["message"] and "missing" in download.json()["message"]

    # the other version still serves, from the same worker process
    fine = host.post(f"{DEMO}/predict/", params={"version": "v2"})
    assert fine.status_code == 200
    assert fine.json()["predictions"]["version"] == {"tag": "two"}
    assert host.health()["pools"]["predict"]["restarts"] == 0


def test_versions_survive_a_restart_with_an_empty_cache(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    store = tmp_path / "shared-mount"
    data_dir = tmp_path / "data"
    args = [*ARGS, "--artifact-url", f"file://{store}"]
    first = start_host(args, data_dir=data_dir)
    upload(first, DEMO, demo_version(tag="one"))
    upload(first, DEMO, demo_version(tag="two"))
    first.post(f"{DEMO}/versions/v1/default")
    assert first.stop() == 0
    cache = data_dir / "artifact-cache"
    shutil.rmtree(cache)
    (cache / ".partial").mkdir(parents=True)
    (cache / ".partial" / "leftover").write_bytes(b"half a file")

    second = start_host(args, data_dir=data_dir)
    assert not (cache / ".partial" / "leftover").exists()
    answer = second.post(f"{DEMO}/predict/")
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"]["version"] == {"tag": "one"}
    one = hashlib.sha256(demo_version(tag="one")).hexdigest()
    assert sorted(p.name for p in cache.iterdir() if p.is_file()) == [one]
    two = second.post(f"{DEMO}/predict/", params={"version": "v2"}).json()
    assert two["predictions"]["version"] == {"tag": "two"}


@pytest.mark.parametrize("scheme", ["file://", ""])
def test_a_store_that_cannot_be_written_is_a_clear_error(
    scheme: str, start_host: Callable[..., Host], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's parent should be")
    host = start_host([*ARGS, "--artifact-url", f"{scheme}{blocker}/store"])
    refused = upload(host, DEMO, demo_version(tag="one"))
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert body["error"] == "ArtifactStoreUnavailable"
    assert str(blocker) in body["message"]
    assert host.get(f"{DEMO}/versions/").json()["versions"] == []
    assert host.post(f"{DEMO}/predict/").status_code == 200  # the host itself is fine
