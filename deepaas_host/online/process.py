"""What the host needs to start online workers, without importing river itself.

River takes most of a second to import; the host process never needs it, so the
worker's code is imported only in the worker (see :mod:`deepaas_host.online.actor`).
"""

from __future__ import annotations

import errno
import socket
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deepaas_host.model.discovery import PluginInfo

__all__ = ["ActorConfig", "Limits", "OpFailed", "online_main", "shard_of", "storage_kind"]


class OpFailed(Exception):
    """A request the online worker refuses; ``kind`` tells the host how to report it:
    ``notfound``, ``exists``, ``label``, ``input``, ``features``, ``sample``, ``model``,
    ``damaged``, ``unrepairable``, ``nospace`` or ``storage``. ``details`` travels along
    (a damaged model's report)."""

    def __init__(self, kind: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details

    def result(self) -> tuple[str, str, str, Any]:
        """The error as the worker answers it: ``("err", kind, message, details)``."""
        return ("err", self.kind, str(self), self.details)


#: Errors of a write that mean "full": the disk, a quota, the file size limit.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_kind(exc: OSError) -> str:
    """``nospace`` (507) when the disk or a quota is full, else ``storage`` (503)."""
    return "nospace" if exc.errno in _FULL else "storage"


def shard_of(name: str, shards: int) -> int:
    """The worker that owns model ``name``: stable across restarts and processes."""
    return zlib.crc32(name.encode()) % shards


@dataclass(frozen=True)
class Limits:
    """What one model takes: predictions kept for a later label (how many, how long,
    how many bytes of features), features in one sample, distinct feature names."""

    keep_predictions: int = 10_000
    keep_seconds: float = 3600.0
    keep_bytes: int = 64 << 20
    max_features: int = 10_000
    max_feature_names: int = 100_000


@dataclass(frozen=True)
class ActorConfig:
    root: str
    shard: int
    shards: int
    fsync: bool = True
    snapshot_every: int = 10_000
    limits: Limits = field(default_factory=Limits)
    window: int = 1000


def online_main(
    sock: socket.socket, parent_pid: int, config: ActorConfig, plugins: Sequence[PluginInfo]
) -> None:
    """Entry point of an online worker process."""
    from deepaas_host.online.actor import run

    run(sock, parent_pid, config, plugins)
