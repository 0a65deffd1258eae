"""A ``multipart/form-data`` body streamed part by part.

``requests``' own ``files=`` reads every file into memory before sending; this
body reads files in chunks while the request is sent. When every size is known
(paths, seekable files) it has a length and goes out with ``Content-Length``;
otherwise it is sent chunked.
"""

from __future__ import annotations

import io
import mimetypes
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["CHUNK", "FilePart", "MultipartBody", "file_part", "is_upload"]

CHUNK = 1 << 20


@dataclass(frozen=True)
class FilePart:
    """One file: a path (opened while sent) or an open binary file (read from where it is)."""

    name: str
    filename: str
    source: Path | IO[bytes]
    content_type: str

    def size(self) -> int | None:
        if isinstance(self.source, Path):
            return self.source.stat().st_size
        try:
            if not self.source.seekable():
                return None
            here = self.source.tell()
            end = self.source.seek(0, os.SEEK_END)
            self.source.seek(here)
        except (AttributeError, OSError, ValueError):
            return None
        return end - here

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.source, Path):
            with self.source.open("rb") as fh:
                yield from _read(fh)
        else:
            yield from _read(self.source)


def _read(fh: IO[bytes]) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        if not isinstance(chunk, bytes):
            raise TypeError(f"Files must be opened in binary mode ({fh!r} gave text).")
        yield chunk


def is_upload(value: Any) -> bool:
    """Whether an argument value is sent as a file: a path object, an open binary
    file or bytes. Plain strings are values, never paths."""
    return isinstance(value, os.PathLike | bytes | bytearray) or (
        hasattr(value, "read") and not isinstance(value, str)
    )


def file_part(name: str, value: Any) -> FilePart:
    """The part for an upload value (see :func:`is_upload`)."""
    if isinstance(value, os.PathLike):
        path = Path(value).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Argument {name!r}: no such file {str(path)!r}.")
        return FilePart(name, path.name, path, _guess(path.name))
    if isinstance(value, bytes | bytearray):
        return FilePart(name, name, io.BytesIO(bytes(value)), "application/octet-stream")
    filename = Path(str(getattr(value, "name", "") or name)).name or name
    return FilePart(name, filename, value, _guess(filename))


def _guess(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _quote(value: str) -> str:
    # What browsers do: keep UTF-8, escape the quote, drop line breaks.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")


class MultipartBody:
    """Fields and files as one streamed body; iterate it or read it like a file."""

    def __init__(
        self,
        fields: Sequence[tuple[str, str]],
        files: Sequence[FilePart],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.boundary = uuid.uuid4().hex
        self.fields = list(fields)
        self.files = list(files)
        self.on_progress = on_progress
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self._sizes = [f.size() for f in self.files]

    def _field_head(self, name: str) -> bytes:
        return (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
        ).encode()

    def _file_head(self, part: FilePart) -> bytes:
        return (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{_quote(part.name)}"; '
            f'filename="{_quote(part.filename)}"\r\n'
            f"Content-Type: {part.content_type}\r\n\r\n"
        ).encode()

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    @property
    def length(self) -> int | None:
        """Total size in bytes, or ``None`` when a file's size cannot be known."""
        if any(size is None for size in self._sizes):
            return None
        total = sum(len(self._field_head(n)) + len(v.encode()) + 2 for n, v in self.fields)
        total += sum(
            len(self._file_head(part)) + (size or 0) + 2
            for part, size in zip(self.files, self._sizes, strict=True)
        )
        return total + len(self._tail())

    def __iter__(self) -> Iterator[bytes]:
        for name, value in self.fields:
            yield self._field_head(name) + value.encode() + b"\r\n"
        for part in self.files:
            yield self._file_head(part)
            for chunk in part.chunks():
                if self.on_progress is not None:
                    self.on_progress(len(chunk))
                yield chunk
            yield b"\r\n"
        yield self._tail()

    def stream(self) -> _Reader | Iterator[bytes]:
        """What to give ``requests`` as ``data``: a sized reader, or chunks."""
        length = self.length
        return iter(self) if length is None else _Reader(iter(self), length)


class _Reader:
    """File-like view of the chunks, with a length (so it goes with Content-Length)."""

    def __init__(self, chunks: Iterator[bytes], length: int) -> None:
        self._chunks = chunks
        self._length = length
        self._chunk = b""
        self._pos = 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        pieces: list[bytes] = []
        want = size
        while want != 0:
            if self._pos >= len(self._chunk):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._chunk, self._pos = nxt, 0
                continue
            end = len(self._chunk) if want < 0 else min(len(self._chunk), self._pos + want)
            pieces.append(self._chunk[self._pos : end])
            if want > 0:
                want -= end - self._pos
            self._pos = end
        return b"".join(pieces)
