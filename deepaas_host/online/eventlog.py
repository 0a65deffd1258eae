"""The append-only event log of one online model, and what counts as its damage.

Layout of a model's directory (the other files are :mod:`deepaas_host.online.files`)::

    meta.json                       name, flavor, source, created
    snapshot-000000003000.pkl       state after event 3000 (the previous generation)
    snapshot-000000004000.pkl       state after event 4000 (the newest)
    events-000000003001.log         events 3001…4000
    events-000000004001.log         events 4001… (the current segment)
    damaged-20250102T030405Z/       files set aside by a repair, byte for byte

A log frame is ``length, crc32`` followed by a pickled list of events; one frame
holds every event of one batch, written with one ``write`` and (by default) one
``fsync`` before any of them is acknowledged. An event starts with its sequence
number. A segment is named after the number of its first event, and a new one
is opened whenever a snapshot is taken (and when a model is loaded).

Invariants:

- Sequence numbers run without a gap from the snapshot to the last frame, across
  segments (an empty segment holds nothing and is passed over).
- A segment is *covered* by a snapshot when the segment after it starts at or
  before the event after the snapshot: it is never read again and may be pruned.
- Memory never holds an acknowledged event the disk does not, nor an event the
  disk does not hold once its request was answered (a failed write is cut back
  to where the segment ended before it).

A *torn tail* is the only damage that is repaired silently: a bad final frame of
the last segment with no valid frame after it (a crash in the middle of a write;
never acknowledged). It is cut off, and the cut is synced, before anything is
appended. To tell it from damage, reading scans forward from a bad frame for a
frame whose length fits the file, whose checksum matches and whose body
unpickles as events: a flipped bit in a length field does not pass for a torn
tail when acknowledged frames follow.

*Damage* is anything else: a bad frame that a valid frame follows, or one in a
segment that is not the last; a gap or a repeat in the sequence numbers; a
missing segment. Damage is never cut off or deleted: reading stops with
:class:`Damage`, which says where, and what is still readable after it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "Damage",
    "Event",
    "EventLog",
    "covered",
    "fsync_dir",
    "read_frames",
    "segment_name",
    "segments",
    "seq_of",
]

Event = tuple[Any, ...]

_FRAME = struct.Struct("!II")
_SEQ_DIGITS = 12
#: Every frame body is a pickle of protocol 2 or later, which starts with PROTO.
_PICKLE_START = b"\x80"


class Damage(Exception):
    """Files of an online model that do not read as they were written.

    ``file`` is the file's name in the model's directory, ``offset`` the byte
    where the damage begins (None when it is not in one place), and ``facts``
    what is known besides (events intact before it, readable frames after it).
    """

    def __init__(self, problem: str, *, file: str, offset: int | None = None, **facts: Any):
        super().__init__(problem)
        self.problem = problem
        self.file = file
        self.offset = offset
        self.facts = facts

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"problem": self.problem, "file": self.file}
        if self.offset is not None:
            out["offset"] = self.offset
        out.update(self.facts)
        return out


def segment_name(first_seq: int) -> str:
    return f"events-{first_seq:0{_SEQ_DIGITS}d}.log"


def seq_of(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[1])


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("events-*.log"), key=seq_of)


def covered(paths: list[Path], seq: int) -> int:
    """How many of ``paths`` (in order) hold only events up to ``seq``."""
    count = 0
    for index in range(1, len(paths)):
        if seq_of(paths[index]) <= seq + 1:
            count = index
    return count


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# reading frames ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    offset: int
    events: list[Event]


@dataclass(frozen=True, slots=True)
class Bad:
    """Unreadable bytes from ``offset``; ``resume`` is the next valid frame, if any."""

    offset: int
    resume: int | None


def _decode(body: bytes) -> list[Event] | None:
    try:
        events = pickle.loads(body)
    except Exception:
        return None
    if not isinstance(events, list) or not events:
        return None
    for event in events:
        if not isinstance(event, tuple) or not event or type(event[0]) is not int:
            return None
    return events


def _resync(fh: BinaryIO, start: int, size: int) -> int | None:
    """The offset of the first valid frame after ``start``, or None."""
    with mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as view:
        body = start + 1 + _FRAME.size
        while True:
            body = view.find(_PICKLE_START, body)
            if body < 0:
                return None
            length, crc = _FRAME.unpack_from(view, body - _FRAME.size)
            end = body + length
            candidate = view[body:end] if end <= size else b""
            if candidate and zlib.crc32(candidate) == crc and _decode(candidate) is not None:
                return body - _FRAME.size
            body += 1


def read_frames(fh: BinaryIO) -> Iterator[Frame | Bad]:
    """Every frame of an open segment, and every unreadable stretch between them."""
    size = os.fstat(fh.fileno()).st_size
    offset = 0
    fh.seek(0)
    while offset < size:
        events = None
        header = fh.read(_FRAME.size)
        if len(header) == _FRAME.size:
            length, crc = _FRAME.unpack(header)
            end = offset + _FRAME.size + length
            if end <= size:
                body = fh.read(length)
                if zlib.crc32(body) == crc:
                    events = _decode(body)
        if events is not None:
            yield Frame(offset, events)
            offset = end
            continue
        resume = _resync(fh, offset, size)
        yield Bad(offset, resume)
        if resume is None:
            return
        offset = resume
        fh.seek(offset)


def _readable(rest: Iterator[Frame | Bad], later: list[Path]) -> dict[str, Any]:
    """What can still be read after a damage: in the rest of its file and after it."""
    frames = events = 0
    last: int | None = None

    def count(items: Iterator[Frame | Bad]) -> None:
        nonlocal frames, events, last
        for item in items:
            if isinstance(item, Frame):
                frames += 1
                events += len(item.events)
                last = item.events[-1][0]

    count(rest)
    for path in later:
        with path.open("rb") as fh:
            count(read_frames(fh))
    return {"frames_after": frames, "events_after": events, "last_seq_after": last}


class EventLog:
    """Appends frames of events to the current segment of ``directory``."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        self._fd: int | None = None
        self._dirty = False
        #: Bytes in the current segment, and where it ended at the last sync.
        self.size = 0
        self._committed = 0
        #: The file and frame being replayed (to say where an event failed).
        self.position: tuple[str, int] = ("", 0)

    # reading ------------------------------------------------------------------

    def replay(self, after: int) -> Iterator[Event]:
        """Every logged event with a sequence number above ``after``, in order.

        Raises :class:`Damage` where the log does not read as written; a torn
        tail is cut off instead (see the module's docstring).
        """
        paths = segments(self.directory)
        paths = paths[covered(paths, after) :]
        if paths and seq_of(paths[0]) > after + 1:
            raise Damage(
                f"events {after + 1} to {seq_of(paths[0]) - 1} are missing: no segment holds them",
                file=paths[0].name,
                offset=0,
                last_good_seq=after,
                **_readable(iter(()), paths),
            )
        expected: int | None = None  # the number the next event must have
        for index, path in enumerate(paths):
            later = paths[index + 1 :]
            with path.open("rb") as fh:
                if os.fstat(fh.fileno()).st_size == 0:
                    continue  # holds nothing, so it cannot break the sequence
                first = seq_of(path)
                # The first segment read may start before the snapshot; the others go on
                # exactly where the one before them ended.
                start = after + 1 if expected is None else expected
                if first > start or (expected is not None and first != expected):
                    raise Damage(
                        f"events {start} to {first - 1} are missing: no segment holds them"
                        if first > start
                        else f"the segment starts at event {first}, but the one before it "
                        f"ends at {start - 1}",
                        file=path.name,
                        offset=0,
                        last_good_seq=start - 1,
                        **_readable(read_frames(fh), later),
                    )
                expected = first
                for event in self._segment(path, fh, first, after, later):
                    expected = event[0] + 1
                    if event[0] > after:
                        yield event

    def _segment(
        self, path: Path, fh: BinaryIO, expected: int, after: int, later: list[Path]
    ) -> Iterator[Event]:
        """The events of one segment, checked to run on from ``expected``."""
        frames = read_frames(fh)
        for item in frames:
            if isinstance(item, Bad):
                if item.resume is None and not later:
                    self._cut(path, item.offset)  # a torn tail: never acknowledged
                    return
                following = next(frames, None) if item.resume is not None else None
                if not (
                    isinstance(following, Frame) and expected <= following.events[0][0] <= after + 1
                ):
                    where = "a valid frame follows it"
                    if item.resume is None:
                        where = "in a segment that is not the last"
                    rest = iter([following]) if isinstance(following, Frame) else frames
                    raise Damage(
                        f"unreadable frame at byte {item.offset} ({where})",
                        file=path.name,
                        offset=item.offset,
                        last_good_seq=expected - 1,
                        **_readable(_chain(rest, frames), later),
                    )
                # The bytes lost held only events the snapshot covers.
                item, expected = following, following.events[0][0]
            self.position = (path.name, item.offset)
            for event in item.events:
                if event[0] != expected:
                    raise Damage(
                        f"event {event[0]} where event {expected} was expected",
                        file=path.name,
                        offset=item.offset,
                        last_good_seq=expected - 1,
                        **_readable(_chain(iter([item]), frames), later),
                    )
                expected += 1
                yield event

    def _cut(self, path: Path, offset: int) -> None:
        with path.open("r+b") as fh:
            fh.truncate(offset)
            fh.flush()
            os.fsync(fh.fileno())

    # writing ------------------------------------------------------------------

    def open_segment(self, first_seq: int) -> None:
        """Append from now on to the segment starting at ``first_seq``.

        The previous segment stays current if the new one cannot be made durable.
        """
        path = self.directory / segment_name(first_seq)
        existed = path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fsync_dir(self.directory)
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            if not existed:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        self.close()
        self._fd = fd
        self.size = self._committed = size

    def append(self, events: list[Event]) -> None:
        """Write one frame; on an error, :meth:`rollback` removes what got written."""
        if self._fd is None:
            raise RuntimeError("the event log has no open segment")
        body = pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
        frame = _FRAME.pack(len(body), zlib.crc32(body)) + body
        view = memoryview(frame)
        self._dirty = True
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(frame)

    def sync(self) -> None:
        """Make what was appended durable (a no-op without fsync)."""
        if self._dirty and self._fd is not None and self.fsync:
            os.fsync(self._fd)
        self._dirty = False
        self._committed = self.size

    def rollback(self) -> None:
        """Cut the segment back to where it ended at the last :meth:`sync`."""
        if self._fd is None:
            return
        os.ftruncate(self._fd, self._committed)
        self.size = self._committed
        self._dirty = False

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.sync()
            os.close(self._fd)
            self._fd = None


def _chain(*parts: Iterator[Frame | Bad]) -> Iterator[Frame | Bad]:
    for part in parts:
        yield from part
