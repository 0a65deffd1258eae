"""What the host checks and measures in a sample, in the host and in the workers.

JSON has no NaN or infinity, but Python's parser accepts ``NaN``, ``Infinity``
and ``1e999`` (which overflows to inf): one such number learned turns a model's
predictions and metrics into NaN for good, because the event stays in its log.
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["approx_size", "non_finite"]


def non_finite(value: Any, where: str = "") -> str | None:
    """Where in ``value`` a NaN or infinite number is (``""`` for ``value`` itself,
    ``"a"``, ``"a[2]"``, ``"a.b"`` inside it), or None when there is none."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, float):
                if not math.isfinite(item):
                    return f"{where}.{key}" if where else str(key)
            elif isinstance(item, dict | list):
                found = non_finite(item, f"{where}.{key}" if where else str(key))
                if found is not None:
                    return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = non_finite(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


def approx_size(value: Any) -> int:
    """Roughly the bytes ``value`` holds in memory, containers included."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        size += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
    return size
