"""One data directory, one host: an exclusive lock held for the host's lifetime.

::

    <data_dir>/deepaas-host.lock     "<pid of the holder>\\n"

The lock is an ``flock`` on that file, taken before anything else touches the
directory and held until the host ends. The kernel releases it when the process
ends, however it ends (``kill -9`` included), and the descriptor is not inherited
by any process the host starts, so a worker that outlives a killed host never keeps
the next host out. The file itself stays; its content only names the holder for
the message a second host prints. Commands that only read or add a row (``deepaas-host
token …``) do not take the lock: the database takes care of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from deepaas_host.errors import DataDirectoryInUse
from deepaas_host.store.errors import storage_error

__all__ = ["LOCK_FILENAME", "DataDirLock"]

LOCK_FILENAME = "deepaas-host.lock"


class DataDirLock:
    """The held lock of one data directory; :meth:`acquire` takes it.

    ::

        with DataDirLock.acquire(settings.data_dir):
            ...  # this process alone uses the directory
    """

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: Path) -> DataDirLock:
        """Take the lock of ``directory`` (created if missing), without waiting.

        Raises ``DataDirectoryInUse`` naming the holder's pid when another process
        has it, or a storage error when the directory cannot be created or written.
        """
        directory = Path(directory).expanduser().absolute()
        path = directory / LOCK_FILENAME
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # O_CLOEXEC (and Python's non-inheritable default): no child keeps it.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _storage(exc, directory) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DataDirectoryInUse(str(directory), holder) from None
        except OSError as exc:
            os.close(fd)
            raise _storage(exc, directory) from exc
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the lock holds all the same; only the message lacks the pid
        return cls(directory, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the directory up (a second call does nothing)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # still ours: nobody else can be the holder named here
        os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _storage(exc: OSError, directory: Path) -> Exception:
    return storage_error(exc, where=f"The data directory {directory}") or exc
