"""The event log and snapshots on a real directory: framing, torn tails, damage, pruning."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from deepaas_host.online.eventlog import Damage, EventLog, segments
from deepaas_host.online.files import (
    latest_snapshot,
    prune,
    read_snapshot,
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


def _write(directory: Path, frames: int) -> Path:
    log = EventLog(directory)
    log.open_segment(1)
    for seq in range(1, frames + 1):
        log.append(_events(seq, seq))
        log.sync()
    log.close()
    return segments(directory)[0]


def test_a_flipped_bit_before_acknowledged_frames_is_damage_not_a_torn_tail(
    tmp_path: Path,
) -> None:
    segment = _write(tmp_path, 10)
    data = bytearray(segment.read_bytes())
    frame = len(data) // 10
    data[frame * 4 + frame // 2] ^= 0x04  # inside the body of the fifth frame
    segment.write_bytes(bytes(data))
    with pytest.raises(Damage) as caught:
        list(EventLog(tmp_path).replay(after=0))
    assert caught.value.details() == {
        "problem": f"unreadable frame at byte {frame * 4} (a valid frame follows it)",
        "file": segment.name,
        "offset": frame * 4,
        "last_good_seq": 4,
        "frames_after": 5,
        "events_after": 5,
        "last_seq_after": 10,
    }
    assert segment.read_bytes() == bytes(data)  # nothing cut


def test_a_flipped_bit_in_a_length_field_is_damage_too(tmp_path: Path) -> None:
    segment = _write(tmp_path, 10)
    data = bytearray(segment.read_bytes())
    frame = len(data) // 10
    data[frame * 6] ^= 0x80  # the length of the seventh frame now runs past the file
    segment.write_bytes(bytes(data))
    with pytest.raises(Damage) as caught:
        list(EventLog(tmp_path).replay(after=0))
    assert (caught.value.offset, caught.value.facts["frames_after"]) == (frame * 6, 3)
    assert segment.read_bytes() == bytes(data)


def test_only_events_a_snapshot_covers_lost_is_no_damage(tmp_path: Path) -> None:
    segment = _write(tmp_path, 10)
    data = bytearray(segment.read_bytes())
    frame = len(data) // 10
    data[frame * 2 + 12] ^= 0x01  # the third frame: event 3
    segment.write_bytes(bytes(data))
    assert [e[0] for e in EventLog(tmp_path).replay(after=3)] == [4, 5, 6, 7, 8, 9, 10]
    with pytest.raises(Damage):
        list(EventLog(tmp_path).replay(after=2))


def test_a_bad_last_frame_of_an_earlier_segment_is_damage(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.open_segment(1)
    log.append(_events(1, 2))
    log.open_segment(3)
    log.append(_events(3, 4))
    log.close()
    first = segments(tmp_path)[0]
    first.write_bytes(first.read_bytes()[:-5])
    with pytest.raises(Damage, match="in a segment that is not the last") as caught:
        list(EventLog(tmp_path).replay(after=0))
    assert caught.value.facts["events_after"] == 2


@pytest.mark.parametrize("missing", [0, 1])
def test_a_missing_segment_is_a_gap(tmp_path: Path, missing: int) -> None:
    log = EventLog(tmp_path)
    for first in (1, 3, 5):
        log.open_segment(first)
        log.append(_events(first, first + 1))
    log.close()
    segments(tmp_path)[missing].unlink()
    with pytest.raises(Damage, match=r"missing|starts at event"):
        list(EventLog(tmp_path).replay(after=0))


def test_a_repeated_sequence_number_is_damage(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.open_segment(1)
    log.append(_events(1, 3))
    log.append(_events(3, 4))
    log.close()
    with pytest.raises(Damage, match="event 3 where event 4 was expected"):
        list(EventLog(tmp_path).replay(after=0))


def test_a_failed_append_is_rolled_back_to_the_last_sync(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.open_segment(1)
    log.append(_events(1, 1))
    log.sync()
    log.append(_events(2, 2))  # written, then the sync "fails"
    log.rollback()
    log.append(_events(2, 2))
    log.close()
    assert [e[0] for e in EventLog(tmp_path).replay(after=0)] == [1, 2]


def test_segments_are_read_in_order_and_two_generations_are_kept(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.open_segment(1)
    log.append(_events(1, 5))
    write_snapshot(tmp_path, 0, {"state": 0})
    log.open_segment(6)
    write_snapshot(tmp_path, 5, {"state": 5})
    log.append(_events(6, 8))
    log.open_segment(9)
    write_snapshot(tmp_path, 8, {"state": 8})
    log.append(_events(9, 9))
    log.close()
    assert [e[0] for e in EventLog(tmp_path).replay(after=0)] == list(range(1, 10))
    prune(tmp_path, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events-000000000006.log",
        "events-000000000009.log",
        "snapshot-000000000005.pkl",
        "snapshot-000000000008.pkl",
    ]
    latest = latest_snapshot(tmp_path)
    assert (latest.seq, latest.state, latest.skipped) == (8, {"state": 8}, [])
    assert [e[0] for e in EventLog(tmp_path).replay(after=8)] == [9]
    # The newest snapshot damaged: the previous one and the log after it.
    newest = snapshot_path(tmp_path, 8)
    data = bytearray(newest.read_bytes())
    data[-2] ^= 0x01
    newest.write_bytes(bytes(data))
    fallback = latest_snapshot(tmp_path)
    assert (fallback.seq, fallback.state) == (5, {"state": 5})
    assert fallback.skipped == [(newest, "the snapshot's checksum does not match", True)]
    assert [e[0] for e in EventLog(tmp_path).replay(after=5)] == [6, 7, 8, 9]


def test_a_plain_pickle_snapshot_of_before_checksums_is_read(tmp_path: Path) -> None:
    snapshot_path(tmp_path, 4).write_bytes(pickle.dumps({"n": 4}))
    assert read_snapshot(snapshot_path(tmp_path, 4)) == {"n": 4}
    write_snapshot(tmp_path, 9, {"n": 9})
    assert snapshot_path(tmp_path, 9).read_bytes().startswith(b"deepaas-host online snapshot")
    assert latest_snapshot(tmp_path).state == {"n": 9}


def test_no_readable_snapshot_is_damage_naming_each(tmp_path: Path) -> None:
    snapshot_path(tmp_path, 1).write_bytes(b"junk")
    with pytest.raises(Damage, match=r"snapshot-000000000001\.pkl: neither a snapshot"):
        latest_snapshot(tmp_path)


def test_appending_without_an_open_segment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no open segment"):
        EventLog(tmp_path).append(_events(1, 1))
