"""A DEEPaaS-style plugin that learns online through its own ``learn(**kwargs)``.

The host gives it a ``learn`` route with the same argument handling as
``predict`` and runs both in one worker, in arrival order, so a prediction sees
every learn acknowledged before it. The plugin keeps its own state; the river
adapter (:class:`deepaas_host.model.online.OnlineModel`) is the way to get
durable events, metrics and streams from the host instead.
"""

from __future__ import annotations

import collections
import re
from typing import Any

from marshmallow import fields

__all__ = ["get_learn_args", "get_metadata", "get_predict_args", "learn", "predict"]

_WORD = re.compile(r"[a-z']+")


def _counts() -> collections.Counter[str]:
    # One counter per worker process, created on first use (no import-time state).
    state: collections.Counter[str] | None = getattr(_counts, "state", None)
    if state is None:
        state = collections.Counter()
        _counts.state = state  # type: ignore[attr-defined]
    return state


def get_metadata() -> dict[str, Any]:
    return {
        "name": "word-counts",
        "description": "Counts the words it learns; predicts how often it saw each word",
    }


def get_predict_args() -> dict[str, Any]:
    return {"text": fields.Str(required=True, metadata={"description": "Words to look up"})}


def get_learn_args() -> dict[str, Any]:
    return {"text": fields.Str(required=True, metadata={"description": "Words to learn"})}


def learn(text: str) -> dict[str, Any]:
    words = _WORD.findall(text.lower())
    counts = _counts()
    counts.update(words)
    return {"learned": len(words), "vocabulary": len(counts)}


def predict(text: str) -> dict[str, Any]:
    counts = _counts()
    return {"counts": {w: counts[w] for w in _WORD.findall(text.lower())}}
