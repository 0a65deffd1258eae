"""Artifact files of model versions, in a directory under the data dir.

Files are moved in (never copied through memory) and hashed in chunks, off the
event loop. Keys are opaque; a replaced artifact gets a new key, so a worker
still reading the old file is never handed a half-written one.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ArtifactStore", "StoredArtifact", "sha256_of"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredArtifact:
    key: str
    size: int
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """Artifacts under ``root``: ``<model>/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key

    async def put(self, model: str, source: Path) -> StoredArtifact:
        """Move ``source`` into the store and return its key, size and checksum."""

        def move() -> StoredArtifact:
            key = f"{model}/{uuid.uuid4().hex}"
            target = self.path(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), target)
            return StoredArtifact(key, target.stat().st_size, sha256_of(target))

        return await asyncio.to_thread(move)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)
