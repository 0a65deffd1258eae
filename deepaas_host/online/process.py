"""What the host needs to start online workers, without importing river itself.

River takes most of a second to import; the host process never needs it, so the
worker's code is imported only in the worker (see :mod:`deepaas_host.online.actor`).
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from deepaas_host.model.discovery import PluginInfo

__all__ = ["ActorConfig", "Limits", "OpFailed", "online_main", "shard_of"]


class OpFailed(Exception):
    """A request the online worker refuses; ``kind`` tells the host how to report it:
    ``notfound``, ``exists``, ``label``, ``input``, ``sample`` or ``model``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def shard_of(name: str, shards: int) -> int:
    """The worker that owns model ``name``: stable across restarts and processes."""
    return zlib.crc32(name.encode()) % shards


@dataclass(frozen=True)
class Limits:
    """How many predictions are kept for a later label, and for how long."""

    keep_predictions: int = 10_000
    keep_seconds: float = 3600.0


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
