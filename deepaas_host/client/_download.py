"""Streamed, verified, resumable download of a model version's file.

The bytes go to ``<target>.part`` (``.<model>-<version>.part`` in a folder
target) and are renamed into place only once their SHA-256 matches the host's
``X-Checksum-SHA256``. A partial file left by an interrupted download, or a
target shorter than the version, is resumed with ``Range``; a target that is
already complete is not downloaded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import requests

from deepaas_host.client._multipart import CHUNK
from deepaas_host.client._progress import progress_bar
from deepaas_host.client._transport import Transport
from deepaas_host.client.downloader import safe_name
from deepaas_host.client.errors import ChecksumMismatch
from deepaas_host.registry.artifacts import sha256_of

__all__ = ["DownloadJob", "describe", "filename_of", "sha256_of"]

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _complete(path: Path, size: int | None, sha256: str | None) -> bool:
    if size is None or sha256 is None or not path.is_file():
        return False
    return path.stat().st_size == size and sha256_of(path) == sha256.lower()


def filename_of(response: requests.Response, fallback: str) -> str:
    """The file name in ``Content-Disposition``, reduced to a safe last component."""
    header = response.headers.get("Content-Disposition", "")
    message = Message()
    message["Content-Disposition"] = header
    name = message.get_filename() or ""
    name = safe_name(name.replace("\\", "/").rsplit("/", 1)[-1]) if name else ""
    return name if name and not name.startswith(".") else fallback


@dataclass
class DownloadJob:
    """One download of ``model``/``version`` to a file or into a folder."""

    transport: Transport
    model: str
    version: str
    size: int | None
    sha256: str | None
    file: Path | None = None
    folder: Path | None = None
    progress: bool | None = None

    @property
    def partial(self) -> Path:
        if self.file is not None:
            return self.file.with_name(self.file.name + ".part")
        assert self.folder is not None
        return self.folder / f".{safe_name(self.model)}-{safe_name(self.version)}.part"

    def run(self, resume: bool) -> Path:
        if self.file is not None and _complete(self.file, self.size, self.sha256):
            return self.file
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        offset = self._resume_offset() if resume else self._restart()
        if offset and self.size is not None and offset >= self.size:
            # Nothing left to ask for: a complete partial file is renamed once
            # verified; anything else starts over.
            if self.file is not None and _complete(self.partial, self.size, self.sha256):
                self.partial.replace(self.file)
                return self.file
            offset = self._restart()
        try:
            return self._fetch(offset)
        except ChecksumMismatch:
            if not offset:
                raise
            # The partial bytes were not those of this file (replaced since?): once
            # more, whole.
            return self._fetch(self._restart())

    def _restart(self) -> int:
        self.partial.unlink(missing_ok=True)
        return 0

    def _resume_offset(self) -> int:
        partial = self.partial
        if (
            not partial.exists()
            and self.file is not None
            and self.size is not None
            and self.file.is_file()
            and self.file.stat().st_size < self.size
        ):
            self.file.replace(partial)  # a short target: an interrupted download
        return partial.stat().st_size if partial.exists() else 0

    def _fetch(self, offset: int) -> Path:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        url = self.transport.url(self.model, "versions", self.version, "download")
        with self.transport.request(
            "GET",
            url,
            model=self.model,
            version=self.version,
            stream=True,
            headers=headers,
            ok=(416,) if offset else (),
        ) as response:
            if offset and (response.status_code == 416 or self._range_start(response) != offset):
                # The host cannot continue from here (the file changed?): start over.
                response.close()
                return self._fetch(self._restart())
            if response.status_code != 206:
                offset = 0  # a full answer
            target = self.file or self._folder() / filename_of(
                response, f"{safe_name(self.model)}-{safe_name(self.version)}"
            )
            expected = (response.headers.get("X-Checksum-SHA256") or self.sha256 or "").lower()
            if self.file is None and not offset and _complete(target, self.size, expected):
                return target  # already there, verified: the body is not read
            return self._write(response, target, offset, expected)

    def _folder(self) -> Path:
        assert self.folder is not None
        return self.folder

    @staticmethod
    def _range_start(response: requests.Response) -> int | None:
        if response.status_code != 206:
            return None
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        return int(match.group(1)) if match else None

    def _write(self, response: requests.Response, target: Path, offset: int, expected: str) -> Path:
        partial = self.partial
        digest = hashlib.sha256()
        if offset:
            with partial.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
        total = self.size if self.size is not None else _length(response, offset)
        bar = progress_bar(
            self.progress, total=total, initial=offset, desc=f"{self.model} {self.version}"
        )
        try:
            with partial.open("ab" if offset else "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
        actual = digest.hexdigest()
        if expected and actual != expected:
            partial.unlink(missing_ok=True)
            raise ChecksumMismatch(self.model, self.version, expected, actual)
        partial.replace(target)
        return target


def _length(response: requests.Response, offset: int) -> int | None:
    with contextlib.suppress(KeyError, ValueError):
        return offset + int(response.headers["Content-Length"])
    return None


def describe(document: dict[str, Any]) -> tuple[int | None, str | None, str | None]:
    """``size``, ``sha256`` and ``filename`` of a version document, where given."""
    size = document.get("size")
    sha256 = document.get("sha256")
    filename = document.get("filename")
    name = safe_name(Path(filename.replace("\\", "/")).name) if isinstance(filename, str) else ""
    return (
        size if isinstance(size, int) else None,
        sha256.lower() if isinstance(sha256, str) and sha256 else None,
        name if name and not name.startswith(".") else None,
    )
