"""One online model inside its worker: apply events, log them, replay them.

Every change goes through :meth:`Instance.learn_event` (live) or
:meth:`Instance.replay_event` (after a restart), which share one code path, so a
replayed model is the model that acknowledged the events. Predictions kept for a
later label are part of the state: they are logged and replayed too.
"""

from __future__ import annotations

import math
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepaas_host.online.eventlog import EventLog
from deepaas_host.online.flavors import Flavor, MetricSet, flavor_of
from deepaas_host.online.process import Limits, OpFailed

__all__ = ["Instance", "Kept", "State", "json_safe"]


@dataclass(slots=True)
class Kept:
    time: float
    x: Any
    prediction: Any
    proba: dict[Any, float] | None


@dataclass
class State:
    """What a snapshot holds."""

    model: Any
    metrics: MetricSet
    seq: int = 0
    learned: int = 0
    labelled: int = 0
    kept: OrderedDict[str, Kept] = field(default_factory=OrderedDict)


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
        self.snapshot_seq = state.seq
        self.predictions = 0
        self._pending: list[tuple[Any, ...]] = []

    @property
    def directory(self) -> Path:
        return self.log.directory

    # live events ----------------------------------------------------------------

    def predict(self, x: Any, ident: str | None, keep: bool, now: float) -> dict[str, Any]:
        prediction, proba = self.flavor.predict(self.state.model, x)
        self.predictions += 1
        result: dict[str, Any] = {"prediction": json_safe(prediction)}
        if proba is not None:
            result["probabilities"] = {k: json_safe(v) for k, v in proba.items()}
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
            state.kept[ident] = Kept(now, x, prediction, proba)
            state.kept.move_to_end(ident)
            while len(state.kept) > self.limits.keep_predictions:
                state.kept.popitem(last=False)
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
            if ident is not None:
                state.kept.pop(ident, None)
            state.learned += 1
            state.labelled += int(labelled)
        else:
            raise ValueError(f"unknown event kind {kind!r}")
        state.seq = seq

    # log --------------------------------------------------------------------------

    def flush(self) -> bool:
        """Append the queued events as one frame; True when there were any."""
        if not self._pending:
            return False
        self.log.append(self._pending)
        self._pending = []
        return True

    def expire(self, now: float) -> None:
        kept = self.state.kept
        while kept:
            first = next(iter(kept.values()))
            if now - first.time <= self.limits.keep_seconds:
                break
            kept.popitem(last=False)

    def info(self) -> dict[str, Any]:
        return {
            **self.meta,
            "seq": self.state.seq,
            "learned": self.state.learned,
            "labelled": self.state.labelled,
            "predictions_since_start": self.predictions,
            "kept": len(self.state.kept),
            "snapshot_seq": self.snapshot_seq,
        }

    def metrics(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "flavor": self.flavor.name,
            "learned": self.state.learned,
            **self.state.metrics.report(),
        }
