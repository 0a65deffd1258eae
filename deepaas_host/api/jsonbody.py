"""JSON in request bodies: decoded with a bound on nesting.

Every JSON document a client sends (predict, train and learn arguments, the
online routes, each line of a bulk body) is decoded by :func:`decode_json`. A
document nested deeper than :data:`MAX_DEPTH` is a 400 ``MalformedBody``: no
model argument needs more, and deeper values make every later recursive step
(validation, pickling for a worker, rendering) risk a ``RecursionError``.
"""

from __future__ import annotations

import json
from typing import Any

from deepaas_host.errors import MalformedBody

__all__ = ["MAX_DEPTH", "decode_json", "too_deep"]

#: Deepest nesting of objects and arrays accepted; ``{"a": [1]}`` has depth 2.
MAX_DEPTH = 64


def too_deep(what: str = "The body") -> MalformedBody:
    return MalformedBody(
        f"{what} nests objects and arrays deeper than {MAX_DEPTH} levels.",
        details={"max_depth": MAX_DEPTH},
    )


def decode_json(data: bytes | str, what: str = "The body") -> Any:
    """The value of a JSON document; MalformedBody when broken or too deep."""
    try:
        value = json.loads(data)
    except RecursionError:  # the decoder's own guard, around a thousand levels
        raise too_deep(what) from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise MalformedBody(f"{what} is not valid JSON: {exc}") from None
    if _deeper_than(value, MAX_DEPTH):
        raise too_deep(what)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Level by level, without recursion; scalars are skipped at C speed."""
    level = [value] if type(value) in (list, dict) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            kinds = set(map(type, items))
            if list in kinds or dict in kinds:
                below.extend(item for item in items if type(item) in (list, dict))
        level = below
    return False
