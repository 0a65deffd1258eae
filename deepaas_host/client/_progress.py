"""Progress bars on standard error, only when it is a terminal."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(
    enabled: bool | None, *, total: float | None, desc: str, unit: str = "B", initial: float = 0
) -> Any:
    """A tqdm bar; ``enabled=None`` shows it when standard error is a terminal.

    A disabled bar accepts every call and prints nothing.
    """
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    scaled = unit == "B"
    # A job's percentage has no meaningful rate: show the elapsed time and message.
    fmt = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}" if unit == "%" else None
    return tqdm(
        bar_format=fmt,
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        unit_scale=scaled,
        unit_divisor=1024 if scaled else 1000,
        disable=not enabled,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )
