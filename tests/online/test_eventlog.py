"""The event log and snapshots on a real directory: framing, torn tails, pruning."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepaas_host.online.eventlog import (
    EventLog,
    latest_snapshot,
    prune,
    snapshot_path,
    write_snapshot,
)


def _events(first: int, last: int) -> list[tuple[int, str, float, int]]:
    return [(seq, "x", 0.0, seq * 10) for seq in range(first, last + 1)]


def test_replay_returns_every_event_after_the_given_sequence(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.open_segment(1)
    log.append(_events(1, 3))
    log.append(_events(4, 4))
    log.sync()
    log.close()
    assert [e[0] for e in EventLog(tmp_path).replay(after=0)] == [1, 2, 3, 4]
    assert [e[0] for e in EventLog(tmp_path).replay(after=2)] == [3, 4]


def test_a_torn_last_frame_is_cut_off_and_appending_continues_cleanly(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.open_segment(1)
    log.append(_events(1, 2))
    log.append(_events(3, 5))
    log.close()
    segment = next(tmp_path.glob("events-*.log"))
    whole = segment.stat().st_size
    with segment.open("r+b") as fh:  # a crash in the middle of the second write
        fh.truncate(whole - 7)
    assert [e[0] for e in EventLog(tmp_path).replay(after=0)] == [1, 2]
    first_frame = segment.stat().st_size
    assert first_frame < whole - 7  # the partial frame is gone from the file
    again = EventLog(tmp_path)
    again.open_segment(1)
    again.append(_events(3, 3))
    again.close()
    assert [e[0] for e in EventLog(tmp_path).replay(after=0)] == [1, 2, 3]


def test_a_corrupted_frame_stops_the_replay_there(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.open_segment(1)
    log.append(_events(1, 1))
    log.append(_events(2, 2))
    log.close()
    segment = next(tmp_path.glob("events-*.log"))
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the second frame's body
    segment.write_bytes(bytes(data))
    assert [e[0] for e in EventLog(tmp_path).replay(after=0)] == [1]


def test_segments_are_read_in_order_and_pruned_after_a_snapshot(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.open_segment(1)
    log.append(_events(1, 5))
    write_snapshot(tmp_path, 0, {"state": 0})
    write_snapshot(tmp_path, 5, {"state": 5})
    log.open_segment(6)
    log.append(_events(6, 8))
    log.close()
    assert [e[0] for e in EventLog(tmp_path).replay(after=0)] == list(range(1, 9))
    prune(tmp_path, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events-000000000006.log",
        "snapshot-000000000005.pkl",
    ]
    assert latest_snapshot(tmp_path) == (5, {"state": 5})
    assert [e[0] for e in EventLog(tmp_path).replay(after=5)] == [6, 7, 8]


def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    write_snapshot(tmp_path, 3, {"n": 3})
    write_snapshot(tmp_path, 9, {"n": 9})
    snapshot_path(tmp_path, 9).write_bytes(b"not a pickle")
    assert latest_snapshot(tmp_path) == (3, {"n": 3})


def test_no_readable_snapshot_is_an_error_naming_the_directory(tmp_path: Path) -> None:
    snapshot_path(tmp_path, 1).write_bytes(b"junk")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        latest_snapshot(tmp_path)


def test_appending_without_an_open_segment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no open segment"):
        EventLog(tmp_path).append(_events(1, 1))
