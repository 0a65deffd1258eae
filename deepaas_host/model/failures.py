"""What an exception raised by a plugin's ``predict``, ``train`` or ``learn`` means.

Some exceptions say the caller sent something wrong; they are answered as bad
arguments (422 ``ArgumentError``), everything else is the model's own failure
(500 ``ModelError``)::

    InvalidInput (deepaas_host.model.v2)   {argument: [message]}, or {"_input": [message]}
    marshmallow.ValidationError            its own messages (DEEPaaS-era plugins raise it)
    OverflowError, decimal.Overflow        {"_input": [...]}: the values are out of range
    anything else                          not an input problem

Runs where the plugin runs (a worker process, ``deepaas-host predict``); the
:class:`InputRefusal` it returns is plain data, so it crosses a process boundary
as it is.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow

from deepaas_host.model.v2 import InvalidInput

__all__ = ["InputRefusal", "refusal_of"]

#: Longest message of a refusal; a plugin's error text is not a place for a payload.
_MAX_MESSAGE = 2000
#: Keys under which marshmallow and the host put messages about the input as a whole.
_WHOLE = ("_schema", "_input")


@dataclass(frozen=True, slots=True)
class InputRefusal:
    """A plugin refused its input: the 422's message and its ``details``."""

    message: str
    #: Argument name (or ``_input``, ``_schema``) → messages; JSON types only.
    details: dict[str, Any]


def refusal_of(exc: BaseException, model: str) -> InputRefusal | None:
    """The refusal ``exc`` stands for, or None when it is the model's own failure."""
    if isinstance(exc, InvalidInput):
        return InputRefusal(_refused(model, exc.message), _jsonable(exc.messages()))
    if isinstance(exc, marshmallow.ValidationError):
        return _from_validation_error(exc, model)
    if isinstance(exc, OverflowError | decimal.Overflow):
        text = str(exc) or type(exc).__name__
        return InputRefusal(
            _clip(f"The values sent are out of range for model {model!r}: {text}"),
            {"_input": [_clip(f"Out of range for the model: {text}")]},
        )
    return None


def _refused(model: str, text: str) -> str:
    return _clip(f"Model {model!r} refused the input: {text}")


def _from_validation_error(exc: marshmallow.ValidationError, model: str) -> InputRefusal:
    try:
        messages: Any = exc.normalized_messages()  # type: ignore[no-untyped-call]
    except Exception:  # a plugin's odd messages must not turn a 422 into a 500
        messages = {"_schema": [str(exc)]}
    if not isinstance(messages, Mapping):
        messages = {"_schema": messages if isinstance(messages, list) else [messages]}
    details = _jsonable(messages)
    summary = "; ".join(
        " ".join(_flatten(value)) if name in _WHOLE else f"{name}: {' '.join(_flatten(value))}"
        for name, value in details.items()
    )
    return InputRefusal(_refused(model, summary or str(exc)), details)


def _flatten(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [f"{key}: {' '.join(_flatten(inner))}" for key, inner in value.items()]
    if isinstance(value, list):
        return [text for item in value for text in _flatten(item)]
    return [str(value)]


def _jsonable(value: Any) -> dict[str, Any]:
    # Keys such as list indexes become strings, anything unusual its text.
    try:
        result = json.loads(json.dumps(value, default=str, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        result = {"_input": [str(value)]}
    return result if isinstance(result, dict) else {"_input": [result]}


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
