"""Artifact stores in-process: a plain directory, and fsspec URLs (``memory://``, ``file://``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import pytest

from deepaas_host.errors import ArtifactError, ArtifactStoreUnavailable
from deepaas_host.registry.artifacts import (
    ArtifactStore,
    FsspecArtifactStore,
    LocalArtifactStore,
)

CONTENT = os.urandom(3 * (1 << 20) + 12345)  # more than one chunk, not a multiple of it
SHA = hashlib.sha256(CONTENT).hexdigest()


def source(tmp_path: Path, content: bytes = CONTENT) -> Path:
    path = tmp_path / f"upload-{uuid.uuid4().hex}"
    path.write_bytes(content)
    return path


def memory_store(tmp_path: Path) -> FsspecArtifactStore:
    store = ArtifactStore.at(f"memory://test-{uuid.uuid4().hex}/a", cache_dir=tmp_path / "cache")
    assert isinstance(store, FsspecArtifactStore)
    return store


async def read_all(store: ArtifactStore, key: str, start: int, end: int) -> bytes:
    reader = await store.open(key, label="version 'v1'")
    try:
        return b"".join([chunk async for chunk in reader.chunks(start, end)])
    finally:
        await reader.close()


def test_the_location_picks_the_kind_of_store(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert isinstance(ArtifactStore.at(tmp_path / "a", cache_dir=cache), LocalArtifactStore)
    assert isinstance(ArtifactStore.at(str(tmp_path / "a"), cache_dir=cache), LocalArtifactStore)
    remote = ArtifactStore.at(f"file://{tmp_path}/a", cache_dir=cache)
    assert isinstance(remote, FsspecArtifactStore)
    hidden = ArtifactStore.at("memory://user:secret@bucket/x", cache_dir=cache)
    assert "secret" not in hidden.location
    with pytest.raises(ArtifactStoreUnavailable, match="no-such-scheme"):
        ArtifactStore.at("no-such-scheme://x/y", cache_dir=cache)


@pytest.mark.asyncio
async def test_remote_put_streams_hashes_and_keeps_a_local_copy(tmp_path: Path) -> None:
    store = memory_store(tmp_path)
    upload = source(tmp_path)
    stored = await store.put("demo", upload)
    assert (stored.size, stored.sha256) == (len(CONTENT), SHA)
    assert stored.key.startswith("demo/")
    assert store.fs.cat_file(f"{store.root}/{stored.key}") == CONTENT
    assert not upload.exists()
    # the uploaded file became the cache entry: loading needs no fetch
    cached = tmp_path / "cache" / SHA
    assert cached.read_bytes() == CONTENT
    assert await store.local_path(stored.key, SHA, label="v") == cached
    assert await store.local_copy(stored.key, SHA, label="v") == cached

    other = await store.put("demo", source(tmp_path, b"small"), keep_local=False)
    assert not (tmp_path / "cache" / other.sha256).exists()
    assert await store.local_copy(other.key, other.sha256, label="v") is None


@pytest.mark.asyncio
async def test_remote_fetch_checks_the_checksum_and_is_shared(tmp_path: Path) -> None:
    store = memory_store(tmp_path)
    stored = await store.put("demo", source(tmp_path), keep_local=False)
    paths = await asyncio.gather(
        *(store.local_path(stored.key, SHA, label="version 'v1'") for _ in range(5))
    )
    assert len(set(paths)) == 1
    assert paths[0].read_bytes() == CONTENT
    assert list((tmp_path / "cache" / ".partial").iterdir()) == []

    await store.forget(SHA)
    assert not paths[0].exists()
    store.fs.pipe_file(f"{store.root}/{stored.key}", CONTENT[:-1] + b"!")
    with pytest.raises(ArtifactError, match="version 'v1': artifact checksum mismatch"):
        await store.local_path(stored.key, SHA, label="version 'v1'")
    assert not paths[0].exists()  # nothing corrupt is left in the cache

    await store.delete(stored.key)
    assert not store.fs.exists(f"{store.root}/{stored.key}")
    await store.delete(stored.key)  # twice: no error
    with pytest.raises(ArtifactError, match="version 'v1': artifact file is missing"):
        await store.local_path(stored.key, SHA, label="version 'v1'")
    with pytest.raises(ArtifactError, match="missing"):
        await store.open(stored.key, label="version 'v1'")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["local", "file", "memory"])
async def test_ranges_read_from_every_kind_of_store(tmp_path: Path, kind: str) -> None:
    store = {
        "local": lambda: ArtifactStore.at(tmp_path / "store", cache_dir=tmp_path / "cache"),
        "file": lambda: ArtifactStore.at(f"file://{tmp_path}/store", cache_dir=tmp_path / "c"),
        "memory": lambda: memory_store(tmp_path),
    }[kind]()
    stored = await store.put("demo", source(tmp_path))
    assert await read_all(store, stored.key, 0, len(CONTENT)) == CONTENT
    assert await read_all(store, stored.key, 5, 1 << 20 | 7) == CONTENT[5 : 1 << 20 | 7]
    assert await read_all(store, stored.key, len(CONTENT) - 3, len(CONTENT) + 99) == CONTENT[-3:]
    if kind != "memory":
        files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
        assert [p.read_bytes() for p in files] == [CONTENT]


@pytest.mark.asyncio
async def test_a_store_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store should be")
    for store in (
        ArtifactStore.at(blocker / "store", cache_dir=tmp_path / "cache"),
        ArtifactStore.at(f"file://{blocker}/store", cache_dir=tmp_path / "cache"),
    ):
        with pytest.raises(ArtifactStoreUnavailable, match="artifact store"):
            await store.put("demo", source(tmp_path))
