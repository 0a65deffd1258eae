"""The append-only event log of one online model, and its snapshots.

Layout of a model's directory::

    meta.json                       name, flavor, source, created
    snapshot-000000004000.pkl       state after event 4000
    events-000000004001.log         events 4001… (one segment per snapshot)

A log frame is ``length, crc32`` followed by a pickled list of events; one frame
holds every event of one batch, written with one ``write`` and (by default) one
``fsync`` before any of them is acknowledged. A frame cut short by a crash fails
its length or checksum: it was never acknowledged, so reading stops there and
the tail is cut off before new frames are appended.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "EventLog",
    "latest_snapshot",
    "prune",
    "snapshot_path",
    "write_snapshot",
]

_FRAME = struct.Struct("!II")
_SEQ_DIGITS = 12


def _segment_name(first_seq: int) -> str:
    return f"events-{first_seq:0{_SEQ_DIGITS}d}.log"


def snapshot_path(directory: Path, seq: int) -> Path:
    return directory / f"snapshot-{seq:0{_SEQ_DIGITS}d}.pkl"


def _seq_of(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[1])


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("events-*.log"), key=_seq_of)


def _snapshots(directory: Path) -> list[Path]:
    return sorted(directory.glob("snapshot-*.pkl"), key=_seq_of)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(directory: Path, seq: int, state: Any) -> Path:
    """Write ``state`` as the snapshot after event ``seq``: temp file, fsync, rename."""
    target = snapshot_path(directory, seq)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(target)
    fsync_dir(directory)
    return target


def latest_snapshot(directory: Path) -> tuple[int, Any]:
    """The newest readable snapshot as ``(seq, state)``; a damaged one is skipped."""
    errors = []
    for path in reversed(_snapshots(directory)):
        try:
            with path.open("rb") as fh:
                return _seq_of(path), pickle.load(fh)
        except Exception as exc:
            errors.append(f"{path.name}: {type(exc).__name__}: {exc}")
    raise FileNotFoundError(
        f"no readable snapshot in {directory}" + (f" ({'; '.join(errors)})" if errors else "")
    )


def prune(directory: Path, snapshot_seq: int) -> None:
    """Drop what the snapshot after ``snapshot_seq`` makes unnecessary."""
    for path in _snapshots(directory):
        if _seq_of(path) < snapshot_seq:
            path.unlink(missing_ok=True)
    for path in _segments(directory):
        if _seq_of(path) <= snapshot_seq:
            # A segment that starts at or before the snapshot ends before it too,
            # because a new segment is opened whenever a snapshot is taken.
            path.unlink(missing_ok=True)
    for path in directory.glob("*.tmp*"):
        path.unlink(missing_ok=True)


class EventLog:
    """Appends frames of events to the current segment of ``directory``."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        self._fd: int | None = None
        self._dirty = False

    # reading ------------------------------------------------------------------

    def replay(self, after: int) -> Iterator[tuple[Any, ...]]:
        """Every logged event with a sequence number above ``after``, in order.

        A torn final frame (a crash in the middle of a write) is cut off so the
        next append starts on a clean boundary.
        """
        for path in _segments(self.directory):
            with path.open("r+b") as fh:
                good = 0
                while True:
                    header = fh.read(_FRAME.size)
                    if len(header) < _FRAME.size:
                        break
                    length, crc = _FRAME.unpack(header)
                    body = fh.read(length)
                    if len(body) < length or zlib.crc32(body) != crc:
                        break
                    good = fh.tell()
                    for event in pickle.loads(body):
                        if event[0] > after:
                            yield event
                if good != os.fstat(fh.fileno()).st_size:
                    fh.truncate(good)

    # writing ------------------------------------------------------------------

    def open_segment(self, first_seq: int) -> None:
        """Append from now on to the segment starting at ``first_seq``."""
        self.close()
        path = self.directory / _segment_name(first_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fsync_dir(self.directory)

    def append(self, events: list[tuple[Any, ...]]) -> None:
        if self._fd is None:
            raise RuntimeError("the event log has no open segment")
        body = pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
        frame = _FRAME.pack(len(body), zlib.crc32(body)) + body
        view = memoryview(frame)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._dirty = True

    def sync(self) -> None:
        """Make what was appended durable (a no-op without fsync)."""
        if self._dirty and self._fd is not None and self.fsync:
            os.fsync(self._fd)
        self._dirty = False

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.sync()
            os.close(self._fd)
            self._fd = None
