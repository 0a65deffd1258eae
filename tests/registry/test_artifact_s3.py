"""A host whose artifact store is an ``s3://`` URL: a real moto S3 server on loopback."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Host, free_port

from .test_versions import DEMO, demo_version, upload

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")

ARGS = ["--model", "demo", "--workers", "1", "--no-train"]
BIG = demo_version(tag="big", blob="y" * 2_500_000)
# No real account, profile or instance metadata is ever consulted.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_MAX_ATTEMPTS": "1",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """An S3 file system for the test itself, and a new empty bucket."""
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    name = f"artifacts-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return fs, name


def s3_env(endpoint: str) -> dict[str, str]:
    return {**AWS_ENV, "FSSPEC_S3_ENDPOINT_URL": endpoint}


def objects(fs: Any, prefix: str) -> dict[bytes, str]:
    fs.invalidate_cache()
    return {fs.cat_file(path): path for path in fs.find(prefix)}


def test_versions_in_s3(
    endpoint: str,
    bucket: tuple[Any, str],
    start_host: Callable[..., Host],
    tmp_path: Path,
) -> None:
    fs, name = bucket
    prefix = f"{name}/team/models"
    data_dir = tmp_path / "data"
    args = [*ARGS, "--artifact-url", f"s3://{prefix}"]
    host = start_host(args, env=s3_env(endpoint), data_dir=data_dir)
    assert upload(host, DEMO, demo_version(tag="one")).status_code == 201
    created = upload(host, DEMO, BIG)
    assert created.status_code == 201, created.text
    sha = hashlib.sha256(BIG).hexdigest()
    assert created.json()["sha256"] == sha
    stored = objects(fs, prefix)
    assert set(stored) == {demo_version(tag="one"), BIG}
    assert all(path.startswith(f"{prefix}/demo/") for path in stored.values())
    cache = data_dir / "artifact-cache"
    assert (cache / sha).read_bytes() == BIG

    url = f"{DEMO}/versions/v2/download"

    def check_downloads() -> None:
        whole = host.get(url)
        assert (whole.status_code, whole.headers["X-Checksum-SHA256"]) == (200, sha)
        assert whole.content == BIG
        part = host.get(url, headers={"Range": "bytes=1048000-2100000"})
        assert (part.status_code, part.content) == (206, BIG[1048000:2100001])
        resumed = tmp_path / "resumed.json"
        resumed.write_bytes(BIG[:99999])
        out = subprocess.run(
            ["curl", "-sS", "-C", "-", "-o", str(resumed), "-w", "%{http_code}", host.url + url],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout == "206"
        assert resumed.read_bytes() == BIG

    check_downloads()  # from the local cache
    shutil.rmtree(cache)
    check_downloads()  # streamed from S3, ranges by seeking
    assert not cache.exists()

    # workers load from the cache, filled from S3 on demand
    host.post(f"{DEMO}/versions/v1/unload")
    one = host.post(f"{DEMO}/predict/", params={"version": "v1"})
    assert one.status_code == 200, one.text
    assert one.json()["predictions"]["version"] == {"tag": "one"}
    assert [p.name for p in cache.iterdir() if p.is_file()] == [
        hashlib.sha256(demo_version(tag="one")).hexdigest()
    ]

    # a corrupt object is refused when fetched; a missing one is named
    host.post(f"{DEMO}/versions/v2/unload")
    fs.pipe_file(stored[BIG], BIG.replace(b"yyy", b"zzz", 1))
    corrupt = host.post(f"{DEMO}/predict/", params={"version": "v2"})
    assert corrupt.status_code == 500, corrupt.text
    assert corrupt.json()["error"] == "VersionLoadError"
    assert "'v2'" in corrupt.json()["message"] and "checksum" in corrupt.json()["message"]
    assert not (cache / sha).exists()

    deleted = host.delete(f"{DEMO}/versions/v2")
    assert deleted.status_code == 200
    assert set(objects(fs, prefix)) == {demo_version(tag="one")}

    # a restart (here with an empty cache, as on another machine) serves from S3
    assert host.stop() == 0
    shutil.rmtree(cache)
    again = start_host(args, env=s3_env(endpoint), data_dir=data_dir)
    answer = again.post(f"{DEMO}/predict/")
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"]["version"] == {"tag": "one"}

    fs.rm(stored[demo_version(tag="one")])
    again.post(f"{DEMO}/versions/v1/unload")
    shutil.rmtree(cache)
    missing = again.post(f"{DEMO}/predict/", params={"version": "v1"})
    assert missing.status_code == 500
    assert "'v1'" in missing.json()["message"] and "missing" in missing.json()["message"]
    download = again.get(f"{DEMO}/versions/v1/download")
    assert (download.status_code, download.json()["error"]) == (500, "ArtifactError")


def test_an_s3_store_that_cannot_be_reached_is_a_clear_error(
    start_host: Callable[..., Host],
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    host = start_host(
        [*ARGS, "--artifact-url", "s3://nowhere/artifacts"],
        env={**s3_env(closed), "FSSPEC_S3_CONNECT_TIMEOUT": "2"},
    )
    refused = upload(host, DEMO, demo_version(tag="one"))
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert body["error"] == "ArtifactStoreUnavailable"
    assert "s3://nowhere/artifacts" in body["message"]
    assert host.get(f"{DEMO}/versions/").json()["versions"] == []
    assert host.post(f"{DEMO}/predict/").status_code == 200
