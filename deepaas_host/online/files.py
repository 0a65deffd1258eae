"""The files of an online model's directory besides its log: snapshots and meta.json.

(The directory's layout and the log are drawn in :mod:`deepaas_host.online.eventlog`.)

A snapshot is a magic line, ``length, crc32`` of the body (8 and 4 bytes, big
endian), and the body: a pickle of the model's state. Snapshots written before
the checksum existed are plain pickles and are still read. A snapshot is
written to a temporary file, fsynced, renamed into place, the directory
fsynced, and read back; only then is anything pruned, and only what the
*previous* snapshot covers: a damaged newest snapshot falls back to the previous
one and the log after it.

``meta.json`` is replaced the same way (temporary file, fsync, rename, fsync of
the directory), so it is always the old or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pickle
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from deepaas_host.online.eventlog import Damage, fsync_dir, segments, seq_of

__all__ = [
    "META",
    "Snapshot",
    "latest_snapshot",
    "prune",
    "read_meta",
    "read_snapshot",
    "set_aside",
    "snapshot_path",
    "snapshots",
    "write_meta",
    "write_snapshot",
]

META = "meta.json"
_MAGIC = b"deepaas-host online snapshot 1\n"
_HEADER = struct.Struct("!QI")
_SEQ_DIGITS = 12
_CHUNK = 1 << 20


def snapshot_path(directory: Path, seq: int) -> Path:
    return directory / f"snapshot-{seq:0{_SEQ_DIGITS}d}.pkl"


def snapshots(directory: Path) -> list[Path]:
    return sorted(directory.glob("snapshot-*.pkl"), key=seq_of)


def _temporary(target: Path) -> Path:
    return target.with_name(f"{target.name}.tmp{os.getpid()}")


class _Checksummed:
    """A file that keeps the length and crc32 of what is written to it."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.length = 0
        self.crc = 0

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)
        return self.fh.write(data)


def write_snapshot(directory: Path, seq: int, state: Any) -> Path:
    """Write ``state`` as the snapshot after event ``seq`` and read it back."""
    target = snapshot_path(directory, seq)
    tmp = _temporary(target)
    try:
        with tmp.open("wb") as fh:
            fh.write(_MAGIC + _HEADER.pack(0, 0))
            body = _Checksummed(fh)
            pickle.dump(state, body, protocol=pickle.HIGHEST_PROTOCOL)
            fh.seek(len(_MAGIC))
            fh.write(_HEADER.pack(body.length, body.crc))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(directory)
    try:
        with target.open("rb") as fh:
            _check(fh, target.name)
    except Damage:
        target.unlink()  # ours, just written and wrong: the previous one stays newest
        fsync_dir(directory)
        raise
    return target


def _check(fh: BinaryIO, name: str) -> bool:
    """True when ``fh`` is a checksummed snapshot whose checksum holds, False when it
    is a plain pickle; :class:`Damage` otherwise. Leaves ``fh`` at the pickle."""
    head = fh.read(len(_MAGIC))
    if head != _MAGIC:
        if head[:1] != b"\x80":
            raise Damage("neither a snapshot nor a pickle", file=name, offset=0)
        fh.seek(0)
        return False
    raw = fh.read(_HEADER.size)
    if len(raw) < _HEADER.size:
        raise Damage("the snapshot's header is cut short", file=name, offset=len(_MAGIC))
    length, crc = _HEADER.unpack(raw)
    start = len(_MAGIC) + _HEADER.size
    size = os.fstat(fh.fileno()).st_size
    if size != start + length:
        raise Damage(
            f"the snapshot has {size - start} bytes of state where its header says {length}",
            file=name,
            offset=start,
        )
    running = 0
    while chunk := fh.read(_CHUNK):
        running = zlib.crc32(chunk, running)
    if running != crc:
        raise Damage("the snapshot's checksum does not match", file=name, offset=start)
    fh.seek(start)
    return True


def read_snapshot(path: Path) -> Any:
    """The state in ``path``: :class:`Damage` if its bytes are wrong; any other
    exception if they are right but do not load (a module that is gone)."""
    with path.open("rb") as fh:
        _check(fh, path.name)
        return pickle.load(fh)


@dataclass
class Snapshot:
    seq: int
    state: Any
    path: Path
    #: Newer snapshots that did not load: (path, why, whether their bytes are damaged).
    skipped: list[tuple[Path, str, bool]] = field(default_factory=list)


def latest_snapshot(directory: Path) -> Snapshot:
    """The newest snapshot that loads; :class:`Damage` if none does."""
    skipped: list[tuple[Path, str, bool]] = []
    found = snapshots(directory)
    for path in reversed(found):
        try:
            state = read_snapshot(path)
        except Damage as exc:
            skipped.append((path, exc.problem, True))
        except Exception as exc:
            skipped.append((path, f"{type(exc).__name__}: {exc}", False))
        else:
            return Snapshot(seq_of(path), state, path, skipped)
    if not found:
        raise Damage("the model has no snapshot", file="snapshot-*.pkl")
    raise Damage(
        "no snapshot loads: " + "; ".join(f"{p.name}: {why}" for p, why, _ in skipped),
        file=found[-1].name,
        snapshots={p.name: why for p, why, _ in skipped},
    )


def prune(directory: Path, snapshot_seq: int) -> None:
    """Drop what the snapshot *before* the one after ``snapshot_seq`` covers.

    Two generations stay: the newest snapshot, the previous one, and the log
    from the previous one on.
    """
    older = [p for p in snapshots(directory) if seq_of(p) < snapshot_seq]
    if older:
        previous = seq_of(older[-1])
        for path in older[:-1]:
            path.unlink(missing_ok=True)
        logs = segments(directory)
        for index, path in enumerate(logs[:-1]):
            if seq_of(logs[index + 1]) <= previous + 1:
                path.unlink(missing_ok=True)
    for path in directory.glob("*.tmp*"):
        path.unlink(missing_ok=True)


# meta.json -----------------------------------------------------------------------


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    target = directory / META
    tmp = _temporary(target)
    try:
        with tmp.open("wb") as fh:
            fh.write(json.dumps(meta, indent=2).encode())
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(directory)


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META
    try:
        meta = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise Damage("meta.json is missing", file=META) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Damage(f"meta.json is not valid JSON: {exc}", file=META) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("flavor"), str):
        raise Damage("meta.json does not name the model's flavor", file=META)
    return meta


# damage --------------------------------------------------------------------------


def set_aside(directory: Path, paths: Iterable[Path], *, into: Path | None = None) -> Path:
    """Move ``paths`` into ``damaged-<UTC time>/`` of ``directory``, as they are."""
    if into is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        into = directory / f"damaged-{stamp}"
        suffix = 1
        while into.exists():
            suffix += 1
            into = directory / f"damaged-{stamp}-{suffix}"
    into.mkdir(exist_ok=True)
    fsync_dir(directory)
    for path in paths:
        path.rename(into / path.name)
    fsync_dir(into)
    fsync_dir(directory)
    return into
