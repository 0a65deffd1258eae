"""Artifact files of model versions, in an artifact store.

Two kinds of store, chosen by :meth:`ArtifactStore.at`:

- :class:`LocalArtifactStore`, a plain directory (by default ``<data_dir>/artifacts``).
  Files are moved in (never copied through memory) and hashed in chunks; workers load
  the store's own file and downloads are plain file responses.
- :class:`FsspecArtifactStore`, any fsspec URL (``s3://bucket/prefix``,
  ``file:///mnt/shared/artifacts``, ``memory://…``). Uploads are streamed into the
  store in chunks and hashed as they go; downloads are streamed from it. Workers never
  read the store: the host first fills a local cache, ``<cache_dir>/<sha256>``, checking
  the checksum as it copies, and hands workers that file (which they check again).

Keys are opaque; a replaced artifact gets a new key, so a worker still reading the
old file is never handed a half-written one. All blocking I/O runs off the event loop.
A store that fails raises :class:`~deepaas_host.errors.ArtifactStoreUnavailable`; a
missing or corrupt artifact raises :class:`~deepaas_host.errors.ArtifactError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from deepaas_host.errors import (
    ArtifactError,
    ArtifactStoreUnavailable,
    HostError,
    InsufficientStorage,
)

__all__ = [
    "ArtifactReader",
    "ArtifactStore",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "StoredArtifact",
    "sha256_of",
]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Buffer of a remote file: bounds memory per transfer (s3fs would take 50 MiB), above
# S3's 5 MiB minimum part size for writes.
_WRITE_BLOCK = 8 << 20
_READ_BLOCK = 4 << 20
_T = TypeVar("_T")


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


def _new_key(model: str) -> str:
    return f"{model}/{uuid.uuid4().hex}"


def _redacted(url: str) -> str:
    """``url`` without any user name or password in it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _missing(label: str, location: str) -> ArtifactError:
    return ArtifactError(f"{label}: artifact file is missing from the artifact store {location}")


class _Guard(Protocol):
    def __call__(self, fn: Callable[[], _T], /) -> _T: ...


class ArtifactReader:
    """An open artifact file, read in chunks off the event loop."""

    def __init__(self, fh: IO[bytes], guard: _Guard) -> None:
        self._fh = fh
        self._guard = guard

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive), in chunks; stops early if the file does."""
        await asyncio.to_thread(self._guard, functools.partial(self._fh.seek, start))
        remaining = end - start
        while remaining > 0:
            size = min(_CHUNK, remaining)
            chunk = await asyncio.to_thread(self._guard, functools.partial(self._fh.read, size))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        try:
            self._fh.close()
        except Exception:
            log.warning("closing an artifact file failed", exc_info=True)


class ArtifactStore(ABC):
    """Where version artifacts live; keys look like ``<model>/<random hex>``."""

    #: Where the store is, for messages (no credentials in it).
    location: str

    @staticmethod
    def at(location: str | Path, *, cache_dir: Path) -> ArtifactStore:
        """The store at ``location``: a directory path, or any fsspec URL (``scheme://…``).

        ``cache_dir`` holds local copies of a remote store's artifacts for workers.
        """
        if isinstance(location, Path) or "://" not in location:
            return LocalArtifactStore(Path(location).expanduser())
        return FsspecArtifactStore(location, cache_dir=cache_dir)

    @abstractmethod
    async def put(self, model: str, source: Path, *, keep_local: bool = True) -> StoredArtifact:
        """Take ``source`` into the store (it is gone afterwards); its key, size and checksum.

        ``keep_local``: the artifact will be loaded soon, keep a local copy if the store
        is remote.
        """

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove an artifact; a failure is logged, never raised."""

    @abstractmethod
    async def local_path(self, key: str, sha256: str, *, label: str) -> Path:
        """A local file with the artifact's content, for a worker to load.

        A remote artifact is fetched into the cache first, its checksum checked.
        ``label`` (e.g. ``version 'v1'``) starts the message of any error.
        """

    @abstractmethod
    async def local_copy(self, key: str, sha256: str, *, label: str) -> Path | None:
        """A local file already holding the artifact, if there is one (nothing is fetched)."""

    @abstractmethod
    async def open(self, key: str, *, label: str) -> ArtifactReader:
        """The artifact, open for reading in ranges."""

    async def forget(self, sha256: str) -> None:  # noqa: B027 - a no-op unless cached
        """Drop the local copy of content ``sha256``, if the store keeps one."""


class LocalArtifactStore(ArtifactStore):
    """Artifacts under the directory ``root``: ``<model>/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def path(self, key: str) -> Path:
        return self.root / key

    async def put(self, model: str, source: Path, *, keep_local: bool = True) -> StoredArtifact:
        def move() -> StoredArtifact:
            key = _new_key(model)
            target = self.path(key)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), target)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    target.unlink(missing_ok=True)
                raise _put_failed(self.location, exc) from exc
            return StoredArtifact(key, target.stat().st_size, sha256_of(target))

        return await asyncio.to_thread(move)

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.path(key).unlink, True)
        except OSError:
            log.warning("cannot delete artifact %s from %s", key, self.location, exc_info=True)

    async def local_path(self, key: str, sha256: str, *, label: str) -> Path:
        # The worker checks existence and checksum itself: no I/O on the predict path.
        return self.path(key)

    async def local_copy(self, key: str, sha256: str, *, label: str) -> Path:
        path = self.path(key)
        if not await asyncio.to_thread(path.is_file):
            raise _missing(label, self.location)
        return path

    async def open(self, key: str, *, label: str) -> ArtifactReader:
        try:
            fh = await asyncio.to_thread(self.path(key).open, "rb")
        except FileNotFoundError as exc:
            raise _missing(label, self.location) from exc
        return ArtifactReader(fh, _call)


def _put_failed(location: str, exc: OSError) -> HostError:
    """A file the store cannot take: no room (507), else the store is unavailable."""
    # Imported here: workers import this module, and the store package pulls in SQLAlchemy.
    from deepaas_host.store.errors import storage_error

    error = storage_error(exc, where=f"The artifact store {location}")
    if isinstance(error, InsufficientStorage):
        return error
    return ArtifactStoreUnavailable(f"The artifact store {location} cannot take the file: {exc}")


def _call(fn: Callable[[], _T]) -> _T:
    return fn()


class FsspecArtifactStore(ArtifactStore):
    """Artifacts at an fsspec URL, with a local checksum-named cache for workers."""

    def __init__(self, url: str, *, cache_dir: Path, **storage_options: Any) -> None:
        import fsspec  # type: ignore[import-untyped]

        self.url = url
        self.location = _redacted(url)
        self.cache_dir = cache_dir
        self._partial = cache_dir / ".partial"
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except Exception as exc:  # unknown scheme, its package not installed, bad options
            raise ArtifactStoreUnavailable(
                f"The artifact store {self.location} cannot be used: {type(exc).__name__}: {exc}"
            ) from exc
        self.root = str(root).rstrip("/")
        # Fills in progress, by checksum: concurrent loads of one artifact fetch it once.
        self._fills: dict[str, asyncio.Future[Path]] = {}
        shutil.rmtree(self._partial, ignore_errors=True)  # leftovers of a killed host

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def _cached(self, sha256: str) -> Path:
        return self.cache_dir / sha256

    def _unavailable(self, exc: BaseException) -> ArtifactStoreUnavailable:
        return ArtifactStoreUnavailable(
            f"The artifact store {self.location} cannot be reached: {type(exc).__name__}: {exc}",
        )

    def _guard(self, fn: Callable[[], _T]) -> _T:
        """Call ``fn`` against the store: its failures become ArtifactStoreUnavailable."""
        try:
            return fn()
        except (HostError, FileNotFoundError):
            raise
        except Exception as exc:
            raise self._unavailable(exc) from exc

    @contextlib.contextmanager
    def _partial_file(self) -> Iterator[Path]:
        self._partial.mkdir(parents=True, exist_ok=True)
        part = self._partial / uuid.uuid4().hex
        try:
            yield part
        finally:
            part.unlink(missing_ok=True)

    async def put(self, model: str, source: Path, *, keep_local: bool = True) -> StoredArtifact:
        return await asyncio.to_thread(self._put, model, source, keep_local)

    def _open_remote(self, key: str) -> IO[bytes]:
        fh: IO[bytes] = self.fs.open(self._path(key), "rb", block_size=_READ_BLOCK)
        return fh

    def _put(self, model: str, source: Path, keep_local: bool) -> StoredArtifact:
        key = _new_key(model)
        target = self._path(key)
        digest = hashlib.sha256()
        size = 0
        try:
            self.fs.makedirs(target.rpartition("/")[0], exist_ok=True)
            with (
                source.open("rb") as src,
                self.fs.open(target, "wb", block_size=_WRITE_BLOCK) as dst,
            ):
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
        except BaseException as exc:
            self._remove(target)
            if isinstance(exc, Exception):
                raise self._unavailable(exc) from exc
            raise
        stored = StoredArtifact(key, size, digest.hexdigest())
        if keep_local:
            try:
                self._adopt(source, stored.sha256)
            except OSError:  # the cache is filled from the store when needed instead
                log.warning("cannot keep %s in the artifact cache", key, exc_info=True)
        source.unlink(missing_ok=True)
        return stored

    def _adopt(self, source: Path, sha256: str) -> None:
        """Move ``source``, whose content hashes to ``sha256``, into the cache."""
        target = self._cached(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            source.replace(target)
        except OSError:  # another file system: copy, then rename into place
            with self._partial_file() as part:
                shutil.copyfile(source, part)
                part.replace(target)

    def _remove(self, path: str) -> None:
        try:
            self.fs.rm(path)
        except FileNotFoundError:
            pass
        except Exception:
            log.warning("cannot delete %s from %s", path, self.location, exc_info=True)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._remove, self._path(key))

    async def forget(self, sha256: str) -> None:
        await asyncio.to_thread(self._cached(sha256).unlink, True)

    async def local_copy(self, key: str, sha256: str, *, label: str) -> Path | None:
        cached = self._cached(sha256)
        return cached if await asyncio.to_thread(cached.is_file) else None

    async def local_path(self, key: str, sha256: str, *, label: str) -> Path:
        cached = self._cached(sha256)
        if cached.is_file():  # one local stat: cheap enough for the predict path
            return cached
        fill = self._fills.get(sha256)
        if fill is None:
            fill = asyncio.ensure_future(asyncio.to_thread(self._fill, key, sha256, label))
            self._fills[sha256] = fill
            fill.add_done_callback(lambda done: self._filled(sha256, done))
        # A caller that gives up does not cancel the fetch others may be waiting on.
        return await asyncio.shield(fill)

    def _filled(self, sha256: str, done: asyncio.Future[Path]) -> None:
        self._fills.pop(sha256, None)
        if not done.cancelled():
            done.exception()  # retrieved: no "never retrieved" warning if nobody waits

    def _fill(self, key: str, sha256: str, label: str) -> Path:
        target = self._cached(sha256)
        if target.is_file():
            return target
        digest = hashlib.sha256()
        with self._partial_file() as part:
            try:
                src = self._guard(functools.partial(self._open_remote, key))
            except FileNotFoundError as exc:
                raise _missing(label, self.location) from exc
            try:
                with part.open("wb") as dst:
                    while chunk := self._guard(functools.partial(src.read, _CHUNK)):
                        digest.update(chunk)
                        dst.write(chunk)
            finally:
                with contextlib.suppress(Exception):
                    src.close()
            if digest.hexdigest() != sha256:
                raise ArtifactError(
                    f"{label}: artifact checksum mismatch in the artifact store "
                    f"{self.location} (the file is corrupt)"
                )
            part.replace(target)
        log.info("fetched %s of %s into the artifact cache", key, self.location)
        return target

    async def open(self, key: str, *, label: str) -> ArtifactReader:
        try:
            fh = await asyncio.to_thread(self._guard, functools.partial(self._open_remote, key))
        except FileNotFoundError as exc:
            raise _missing(label, self.location) from exc
        return ArtifactReader(fh, self._guard)
