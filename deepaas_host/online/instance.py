"""One online model inside its worker: apply events, log them, replay them.

Every change goes through :meth:`Instance._record` (live) and
:meth:`Instance.replay_event` (after a restart), which share one code path, so a
replayed model is the model that acknowledged the events. Predictions kept for a
later label are part of the state: they are logged and replayed too, and held to
the limits (count, age, bytes of features) on replay as when they were made. So
is the set of feature names the model learned, bounded by ``max_feature_names``.
"""

from __future__ import annotations

import math
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepaas_host.online.eventlog import EventLog
from deepaas_host.online.features import approx_size
from deepaas_host.online.flavors import Flavor, MetricSet, flavor_of
from deepaas_host.online.process import Limits, OpFailed

__all__ = ["Instance", "Kept", "State", "json_safe"]


@dataclass(slots=True)
class Kept:
    time: float
    x: Any
    prediction: Any
    proba: dict[Any, float] | None
    #: Roughly the bytes it holds (features and probabilities).
    size: int = 0


@dataclass
class State:
    """What a snapshot holds."""

    model: Any
    metrics: MetricSet
    seq: int = 0
    learned: int = 0
    labelled: int = 0
    kept: OrderedDict[str, Kept] = field(default_factory=OrderedDict)
    kept_bytes: int = 0
    #: Every feature name the model learned from (dict features).
    feature_names: set[str] = field(default_factory=set)


def _upgrade(state: State) -> None:
    """Give a state from an older snapshot what it lacks: the names learned before
    are unknown, so counting starts now; kept predictions get their sizes."""
    attrs = vars(state)
    if "feature_names" not in attrs:
        state.feature_names = set()
    if "kept_bytes" not in attrs:
        total = 0
        for kept in state.kept.values():
            if getattr(kept, "size", None) is None:
                kept.size = _kept_size(kept.x, kept.proba)
            total += kept.size
        state.kept_bytes = total


def _kept_size(x: Any, proba: Any) -> int:
    return approx_size(x) + (approx_size(proba) if proba else 0)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Instance:
    def __init__(
        self, name: str, meta: dict[str, Any], state: State, log: EventLog, limits: Limits
    ) -> None:
        self.name = name
        self.meta = meta
        self.state = state
        self.flavor: Flavor = flavor_of(meta["flavor"], state.model)
        self.log = log
        self.limits = limits
        _upgrade(state)
        self.snapshot_seq = state.seq
        #: The last event a snapshot was attempted at (failed ones wait a full round).
        self.snapshot_tried = state.seq
        #: Take a snapshot after the next durable batch (a long replay was needed).
        self.snapshot_due = False
        #: Identifies this model across rebuilds (not across a delete and re-create).
        self.uid = uuid.uuid4().hex
        self.predictions = 0
        self._pending: list[tuple[Any, ...]] = []

    @property
    def directory(self) -> Path:
        return self.log.directory

    # live events ----------------------------------------------------------------

    def predict(self, x: Any, ident: str | None, keep: bool, now: float) -> dict[str, Any]:
        self._check(x, learning=False)
        prediction, proba = self.flavor.predict(self.state.model, x)
        self.predictions += 1
        result: dict[str, Any] = {"prediction": json_safe(prediction)}
        if proba is not None:
            result["probabilities"] = {k: json_safe(v) for k, v in proba.items()}
        if keep and (size := _kept_size(x, proba)) > self.limits.keep_bytes:
            result["kept"] = False
            result["warning"] = (
                f"Answered but not kept: its features take about {size} bytes, more than "
                f"the {self.limits.keep_bytes} bytes (keep_bytes) this model keeps for "
                "predictions awaiting a label, so it cannot be labelled."
            )
            keep = False
        if keep:
            ident = ident or uuid.uuid4().hex
            self._record(("p", now, ident, x, prediction, proba))
            result["id"] = ident
            result["seq"] = self.state.seq
        elif ident is not None:
            result["id"] = ident
        return result

    def learn(self, x: Any, y: Any, ident: str | None, now: float) -> dict[str, Any]:
        kept = None
        if ident is not None:
            kept = self._take(ident, now, required=x is None)
        if x is None:
            assert kept is not None
            x = kept.x
        self._check(x, learning=True)
        if kept is not None:
            prediction, proba = kept.prediction, kept.proba
        elif self.state.metrics.overall:
            prediction, proba = self.flavor.predict(self.state.model, x)
        else:
            prediction, proba = None, None
        self._record(("l", now, ident, x, y, prediction, proba, kept is not None))
        result = {
            "prediction": json_safe(prediction),
            "seq": self.state.seq,
            "learned": self.state.learned,
        }
        if ident is not None:
            result["id"] = ident
        return result

    def _check(self, x: Any, *, learning: bool) -> None:
        """Refuse a sample with too many features, or (to learn) too many new names."""
        if not isinstance(x, dict):
            return
        limits = self.limits
        if len(x) > limits.max_features:
            raise OpFailed(
                "features",
                f"The sample has {len(x)} features; at most {limits.max_features} "
                "(max_features) are taken.",
            )
        if not learning:
            return
        names = self.state.feature_names
        room = limits.max_feature_names - len(names)
        if len(x) > room:
            new = sum(1 for key in x if key not in names)
            if new > room:
                raise OpFailed(
                    "features",
                    f"Online model {self.name!r} has learned {len(names)} distinct feature "
                    f"names; the {new} new ones of this sample would pass the limit of "
                    f"{limits.max_feature_names} (max_feature_names).",
                )

    def _take(self, ident: str, now: float, *, required: bool) -> Kept | None:
        kept = self.state.kept.get(ident)
        if kept is not None and now - kept.time > self.limits.keep_seconds:
            kept = None
        if kept is None and required:
            raise OpFailed(
                "label",
                f"No prediction with id {ident!r} is waiting for a label on {self.name!r}: "
                "it is unknown, was labelled already, or expired "
                f"(kept {self.limits.keep_predictions} predictions for "
                f"{self.limits.keep_seconds:g} s).",
            )
        return kept

    def _record(self, event: tuple[Any, ...]) -> None:
        """Apply ``event`` and queue it for the log (the caller flushes)."""
        seq = self.state.seq + 1
        full = (seq, *event)
        self.replay_event(full)
        self._pending.append(full)

    # replay -----------------------------------------------------------------------

    def replay_event(self, event: tuple[Any, ...]) -> None:
        seq, kind, now = event[0], event[1], event[2]
        state = self.state
        if kind == "p":
            _, _, _, ident, x, prediction, proba = event
            kept = Kept(now, x, prediction, proba, _kept_size(x, proba))
            replaced = state.kept.pop(ident, None)
            if replaced is not None:
                state.kept_bytes -= replaced.size
            state.kept[ident] = kept
            state.kept_bytes += kept.size
            limits = self.limits
            while state.kept and (
                len(state.kept) > limits.keep_predictions or state.kept_bytes > limits.keep_bytes
            ):
                _, gone = state.kept.popitem(last=False)
                state.kept_bytes -= gone.size
        elif kind == "l":
            _, _, _, ident, x, y, prediction, proba, labelled = event
            model = state.model
            if self.flavor.name == "clustering":
                # Silhouette is measured against the centers before this sample.
                state.metrics.update(model, x, y, prediction, proba)
                self.flavor.learn(model, x, y)
            else:
                self.flavor.learn(model, x, y)
                state.metrics.update(model, x, y, prediction, proba)
            if isinstance(x, dict):
                state.feature_names.update(x)
            if ident is not None:
                taken = state.kept.pop(ident, None)
                if taken is not None:
                    state.kept_bytes -= taken.size
            state.learned += 1
            state.labelled += int(labelled)
        else:
            raise ValueError(f"unknown event kind {kind!r}")
        state.seq = seq

    # log --------------------------------------------------------------------------

    def flush(self) -> bool:
        """Append the queued events as one frame; True when there were any.

        The queue is emptied either way: after a failed write the instance is
        rebuilt from what the disk holds.
        """
        if not self._pending:
            return False
        pending, self._pending = self._pending, []
        self.log.append(pending)
        return True

    @property
    def pending(self) -> list[tuple[Any, ...]]:
        """Events applied but not yet logged (this batch's)."""
        return self._pending

    def reapply(self, events: list[tuple[Any, ...]]) -> None:
        """Apply and queue again events not yet logged (after a rebuild from disk)."""
        for event in events:
            self.replay_event(event)
            self._pending.append(event)

    def expire(self, now: float) -> None:
        state = self.state
        kept = state.kept
        while kept:
            first = next(iter(kept.values()))
            if now - first.time <= self.limits.keep_seconds:
                break
            _, gone = kept.popitem(last=False)
            state.kept_bytes -= gone.size

    def info(self) -> dict[str, Any]:
        return {
            **self.meta,
            "seq": self.state.seq,
            "learned": self.state.learned,
            "labelled": self.state.labelled,
            "predictions_since_start": self.predictions,
            "kept": len(self.state.kept),
            "kept_bytes": self.state.kept_bytes,
            "feature_names": len(self.state.feature_names),
            "snapshot_seq": self.snapshot_seq,
        }

    def metrics(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "flavor": self.flavor.name,
            "learned": self.state.learned,
            **self.state.metrics.report(),
        }
