"""Where downloaded model files go.

A downloader decides the folder of each model version; the file name is the one
the host sends. :class:`FileSystemDownloader` is the default (the current folder)::

    >>> FileSystemDownloader("/srv/models").directory("iris", "v2")
    PosixPath('/srv/models/iris/v2')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["Downloader", "FileSystemDownloader", "safe_name"]


@runtime_checkable
class Downloader(Protocol):
    """Decides the folder a version's file is downloaded into."""

    def directory(self, model: str, version: str) -> Path: ...


def safe_name(name: str) -> str:
    """``name`` usable as one path component (no separators, never ``.`` or ``..``)."""
    cleaned = "".join("_" if c in "/\\\0" or not c.isprintable() else c for c in name)
    return cleaned if cleaned not in ("", ".", "..") else "_" * max(len(cleaned), 1)


class FileSystemDownloader:
    """Files go to ``<path>/<model>/<version>/<file name>``; ``~`` in ``path`` is expanded."""

    def __init__(self, path: str | os.PathLike[str] = ".") -> None:
        self.path = Path(path).expanduser()

    def directory(self, model: str, version: str) -> Path:
        return self.path / safe_name(model) / safe_name(version)

    def __repr__(self) -> str:
        return f"FileSystemDownloader({str(self.path)!r})"
