"""An answer assembled piece by piece: in memory while small, then in a temporary file."""

from __future__ import annotations

import asyncio
import tempfile
from typing import IO

from aiohttp import web

__all__ = ["Spool"]


class Spool:
    """Bytes kept in memory up to ``memory`` bytes, beyond that in an unnamed
    temporary file in ``directory`` (gone when closed, or when the host dies)."""

    def __init__(self, directory: str, memory: int = 1 << 20) -> None:
        self.directory = directory
        self.memory = memory
        self.size = 0
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._file is not None:
            await asyncio.to_thread(self._file.write, data)
            return
        self._buffer += data
        if len(self._buffer) > self.memory:
            self._file = await asyncio.to_thread(_spill, self.directory, bytes(self._buffer))
            self._buffer = bytearray()

    async def send(self, response: web.StreamResponse, chunk: int = 1 << 20) -> None:
        """Write everything to ``response`` (prepared), a chunk at a time."""
        if self._file is None:
            await response.write(bytes(self._buffer))
            return
        await asyncio.to_thread(self._file.seek, 0)
        while data := await asyncio.to_thread(self._file.read, chunk):
            await response.write(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buffer = bytearray()


def _spill(directory: str, data: bytes) -> IO[bytes]:
    file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - kept open by the spool
    file.write(data)
    return file
