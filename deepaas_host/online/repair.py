"""Repair of a damaged online model: keep every readable event, set the rest aside.

The operator accepts the loss explicitly (``POST /v2/online/{name}/repair``).
Each step leaves a directory that a restart loads, or that a repair takes up
again, without losing what the step before kept:

1. Read, changing nothing: ``meta.json`` (rebuilt from the snapshot if it does
   not read), the newest snapshot that loads (or, if none does, a fresh model
   from the plugin the model came from), then every readable frame of every
   segment, in order, applying each event after the snapshot once and counting
   the sequence numbers that are missing.
2. Set aside, into ``damaged-<UTC time>/``, the snapshots that do not load and
   the segments past the new state (nothing in them was readable).
3. Write the new state as a snapshot and open the segment after it: from here on
   the old segments are covered and never read again.
4. Replace a damaged ``meta.json``, and set aside the old segments and snapshots
   too, so that the folder holds every file of the model as it was.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepaas_host.model.discovery import PluginInfo, load_plugin
from deepaas_host.online.eventlog import (
    Bad,
    Damage,
    Event,
    EventLog,
    read_frames,
    segments,
    seq_of,
)
from deepaas_host.online.files import (
    META,
    latest_snapshot,
    read_meta,
    set_aside,
    snapshots,
    write_meta,
    write_snapshot,
)
from deepaas_host.online.process import ActorConfig, OpFailed

if TYPE_CHECKING:
    from deepaas_host.online.instance import Instance, State

__all__ = ["repair"]

#: Missing ranges listed in a repair's answer (the count is always exact).
_RANGES_SHOWN = 100
#: Events that fail to replay before a repair gives up.
_MAX_SKIPPED = 100


def _utc(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _fresh_state(
    meta: Mapping[str, Any] | None, plugins: Mapping[str, PluginInfo], config: ActorConfig
) -> State | None:
    """A new model from the plugin the damaged one was created from, if installed."""
    from deepaas_host.online.flavors import flavor_of, metric_set
    from deepaas_host.online.instance import State

    info = plugins.get(str((meta or {}).get("plugin")))
    if meta is None or info is None:
        return None
    plugin = load_plugin(info).model
    model = plugin.build()
    metrics = metric_set(flavor_of(meta["flavor"], model), plugin.metrics(), config.window)
    return State(model, metrics)


def _rebuilt_meta(name: str, state: State, directory: Path) -> dict[str, Any]:
    from deepaas_host.online.flavors import describe

    return {
        "name": name,
        "flavor": state.metrics.flavor,
        "estimator": describe(state.model),
        "description": "",
        "created": _utc(directory.stat().st_mtime),
        "meta_rebuilt": _utc(time.time()),
    }


def _readable_events(directory: Path, unreadable: set[str]) -> Iterator[Event]:
    """Every event of every readable frame, in the order of the files."""
    for path in segments(directory):
        with path.open("rb") as fh:
            for item in read_frames(fh):
                if isinstance(item, Bad):
                    unreadable.add(path.name)
                else:
                    yield from item.events


def _load(
    directory: Path,
    name: str,
    *,
    config: ActorConfig,
    plugins: Mapping[str, PluginInfo],
    skip: set[int],
) -> tuple[Instance, dict[str, Any]]:
    from deepaas_host.online.instance import Instance

    try:
        meta: dict[str, Any] | None = read_meta(directory)
        meta_damaged = False
    except Damage:
        meta, meta_damaged = None, True
    try:
        snapshot = latest_snapshot(directory)
    except Damage as exc:
        snapshot, why = None, exc.problem
    else:
        why = ""
    if snapshot is not None:
        state = snapshot.state
    else:
        fresh = _fresh_state(meta, plugins, config)
        if fresh is None:
            raise OpFailed(
                "unrepairable",
                f"Online model {name!r} cannot be repaired: {why}, and it was not created "
                "from an installed plugin to start afresh from. Delete it (its files are "
                "kept in the trash only until the next start).",
                {"problem": why},
            )
        state = fresh
    if meta is None:
        meta = _rebuilt_meta(name, state, directory)
    instance = Instance(name, meta, state, EventLog(directory, fsync=config.fsync), config.limits)
    base = last = state.seq
    kept = 0
    missing: list[list[int]] = []
    unreadable: set[str] = set()
    for event in _readable_events(directory, unreadable):
        seq = event[0]
        if seq <= last or seq in skip:
            continue
        try:
            instance.replay_event(event)
        except Exception as exc:
            # It may have changed part of the model: start over without it.
            raise _Unreplayable(seq) from exc
        if seq > last + 1:
            missing.append([last + 1, seq - 1])
        last = seq
        kept += 1
    instance.expire(time.time())
    facts = {
        "kept": kept,
        "lost": sum(b - a + 1 for a, b in missing),
        "lost_ranges": missing[:_RANGES_SHOWN],
        "seq": last,
        "from_snapshot": None if snapshot is None else base,
        "unreadable": sorted(unreadable),
        "meta_rebuilt": meta_damaged,
    }
    if snapshot is not None:
        facts["snapshots_set_aside"] = [p.name for p, _, _ in snapshot.skipped]
    else:
        facts["snapshots_set_aside"] = [p.name for p in snapshots(directory)]
    return instance, facts


class _Unreplayable(Exception):
    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq


def repair(
    directory: Path,
    name: str,
    *,
    config: ActorConfig,
    plugins: Mapping[str, PluginInfo],
) -> tuple[Instance, dict[str, Any]]:
    """Serve ``directory``'s model again from what is readable; a report of the loss."""
    skip: set[int] = set()
    while True:
        try:
            instance, facts = _load(directory, name, config=config, plugins=plugins, skip=skip)
            break
        except _Unreplayable as exc:
            skip.add(exc.seq)
            if len(skip) > _MAX_SKIPPED:
                raise OpFailed(
                    "unrepairable",
                    f"Online model {name!r} cannot be repaired: more than {_MAX_SKIPPED} of "
                    "its readable events fail to replay.",
                ) from exc
    seq = instance.state.seq
    first = [directory / n for n in facts["snapshots_set_aside"]]
    first += [p for p in segments(directory) if seq_of(p) > seq]
    into = set_aside(directory, first)
    if facts["from_snapshot"] != seq:  # else the snapshot it loaded is the new state
        write_snapshot(directory, seq, instance.state)
    instance.log.open_segment(seq + 1)
    instance.snapshot_seq = instance.snapshot_tried = seq
    rest = [p for p in segments(directory) if seq_of(p) != seq + 1]
    rest += [p for p in snapshots(directory) if seq_of(p) != seq]
    if facts["meta_rebuilt"] and (directory / META).exists():
        rest.append(directory / META)
    set_aside(directory, rest, into=into)
    if facts["meta_rebuilt"]:
        write_meta(directory, instance.meta)
    moved = sorted(p.name for p in into.iterdir())
    return instance, {"model": name, **facts, "moved_to": into.name, "moved": moved}
