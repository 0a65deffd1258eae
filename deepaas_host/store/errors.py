"""Storage failures as the host's errors: one mapping for the database and the disk.

::

    a failed write or read                           rendered as
    ───────────────────────────────────────────────  ─────────────────────────────
    no room: the disk, a quota, a file-size limit     InsufficientStorage (507)
      or the database itself is full
    any other failure of the database or the disk     StorageUnavailable (503)
    not a storage failure (a constraint, a query)     left as it is

What counts as "no room": ``ENOSPC``, ``EDQUOT`` and ``EFBIG`` from the operating
system; ``SQLITE_FULL`` from SQLite; SQLSTATE ``53100`` (disk full) and ``53000``
(insufficient resources) from PostgreSQL. SQLite reports most failed writes as
``SQLITE_IOERR`` without the errno behind it, so an I/O error is checked against the
database's file system and the process's file-size limit before it is called one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa

from deepaas_host.errors import HostError, InsufficientStorage, StorageUnavailable

__all__ = ["sqlite_files", "storage_error", "translating"]

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# SQLite primary result codes: the low byte of an extended code.
_SQLITE_FULL = 13
_SQLITE_IOERR = 10
_SQLITE_NO_STORAGE_FAULT = frozenset(
    {
        19,  # SQLITE_CONSTRAINT: a unique name taken, say
        1,  # SQLITE_ERROR: a bad query, a missing table
        20,  # SQLITE_MISMATCH
        25,  # SQLITE_RANGE
    }
)
_PG_FULL = frozenset({"53100", "53000"})
# SQLSTATE classes that say the database works and refused this statement.
_PG_NO_STORAGE_FAULT = frozenset({"22", "23", "42", "44"})
# A write needs at least one page (SQLite's largest is 64 KiB) of room.
_ROOM = 64 << 10


def sqlite_files(database: Path) -> tuple[Path, ...]:
    """The files of a SQLite database: the file, its write-ahead log, its journal."""
    return (database, Path(f"{database}-wal"), Path(f"{database}-journal"))


def _no_room(files: Sequence[Path]) -> bool:
    """Whether writing to ``files`` fails for lack of room rather than a broken disk."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    for path in files:
        with contextlib.suppress(OSError):
            if soft != resource.RLIM_INFINITY and path.stat().st_size + _ROOM > soft:
                return True
    for directory in {path.parent for path in files}:
        with contextlib.suppress(OSError):
            fs = os.statvfs(directory)
            if fs.f_bavail * fs.f_frsize < _ROOM:
                return True
    return False


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _full(where: str, cause: str) -> InsufficientStorage:
    return InsufficientStorage(
        f"{where} has no room left (the disk, a quota or a size limit is full): {cause}",
        details={"cause": cause},
    )


def _failed(where: str, cause: str) -> StorageUnavailable:
    return StorageUnavailable(f"{where} failed: {cause}", details={"cause": cause})


def _database_error(exc: sa.exc.DBAPIError, files: Sequence[Path]) -> HostError | None:
    orig = exc.orig
    cause = _describe(orig) if orig is not None else _describe(exc)
    if isinstance(exc, sa.exc.IntegrityError):
        return None
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF
        if primary in _SQLITE_NO_STORAGE_FAULT:
            return None
        if primary == _SQLITE_FULL or (primary == _SQLITE_IOERR and _no_room(files)):
            return _full("The database", cause)
        return _failed("The database", cause)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    if isinstance(sqlstate, str):
        if sqlstate in _PG_FULL:
            return _full("The database", cause)
        if sqlstate[:2] in _PG_NO_STORAGE_FAULT:
            return None
        return _failed("The database", cause)
    if (
        isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
        or exc.connection_invalidated
    ):
        return _failed("The database", cause)
    return None


def storage_error(
    exc: BaseException, *, where: str = "The database", files: Sequence[Path] = ()
) -> HostError | None:
    """The host error a storage failure ``exc`` stands for; None if it is none.

    ``where`` starts the message (``"The database"``, ``"The job directory /x"``);
    ``files`` are what was written, checked for room when the cause is unclear.
    """
    if isinstance(exc, HostError):
        return exc
    if isinstance(exc, sa.exc.DBAPIError):
        return _database_error(exc, files)
    if isinstance(exc, sa.exc.TimeoutError):  # no connection free in the pool
        return _failed(where, _describe(exc))
    if isinstance(exc, OSError):
        cause = _describe(exc)
        if exc.errno in _FULL_ERRNOS:
            return _full(where, cause)
        if exc.errno == errno.EIO and _no_room(files):
            return _full(where, cause)
        return _failed(where, cause)
    return None


@contextlib.contextmanager
def translating(*, where: str = "The database", files: Sequence[Path] = ()) -> Iterator[None]:
    """Raise storage failures in the block as :func:`storage_error` names them."""
    try:
        yield
    except Exception as exc:
        error = storage_error(exc, where=where, files=files)
        if error is None or error is exc:
            raise
        raise error from exc
