"""What crosses the boundary between the host and its worker processes.

Every message is a small picklable dataclass, sent as a length-prefixed pickle
frame over a socket pair. Exceptions never cross as themselves: a worker sends a
:class:`RemoteError` naming the original type, so a reply always unpickles.
"""

from __future__ import annotations

import pickle
import select
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from deepaas_host.model.outputs import Outcome

__all__ = [
    "HEADER",
    "Call",
    "Progress",
    "Ready",
    "RemoteError",
    "Reply",
    "VersionRef",
    "decode",
    "encode",
    "receive",
]

HEADER = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A version's artifact as a worker needs it: where, and what it must hash to."""

    name: str
    path: str
    sha256: str


@dataclass(slots=True)
class Call:
    """Run ``method`` of ``model`` with ``kwargs``.

    Methods: ``predict`` (with ``version``: the version's loaded predictor),
    ``train`` (writing artifacts to ``artifact_dir``), ``learn``, ``load`` and ``unload``.
    """

    id: int
    model: str
    method: str
    kwargs: dict[str, Any]
    accept: str | None = None
    version: VersionRef | None = None
    artifact_dir: str | None = None


@dataclass(slots=True)
class RemoteError:
    """An exception raised in a worker. ``kind`` is ``model`` (the plugin
    raised), ``input`` (the plugin refused its input: ``message`` and ``details``
    are the 422's), ``output`` (its result broke the response schema),
    ``version`` (a version could not be loaded) or ``host``."""

    kind: str
    type: str
    message: str
    traceback: str = ""
    details: Any = None


@dataclass(slots=True)
class Reply:
    id: int
    outcome: Outcome | None = None
    value: Any = None
    error: RemoteError | None = None
    #: Versions of the call's model loaded in this worker after the call.
    loaded: tuple[str, ...] | None = None


@dataclass(slots=True)
class Progress:
    id: int
    fraction: float | None
    message: str


@dataclass(slots=True)
class Ready:
    """Sent once the worker has loaded and warmed every plugin (``error`` if not)."""

    pid: int
    error: RemoteError | None = None


def encode(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def decode(data: bytes) -> Any:
    return pickle.loads(data)


def receive(
    sock: socket.socket, *, idle: Callable[[], None] | None = None, every: float = 1.0
) -> Iterator[Any]:
    """Messages from ``sock`` until the other end closes it.

    With ``idle``, it is called whenever ``every`` seconds pass without data.
    """
    buffer = bytearray()
    while True:
        if idle is not None:
            readable, _, _ = select.select([sock], [], [], every)
            if not readable:
                idle()
                continue
        chunk = sock.recv(1 << 20)
        if not chunk:
            return
        buffer += chunk
        offset = 0
        while len(buffer) - offset >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer, offset)
            end = offset + HEADER.size + size
            if len(buffer) < end:
                break
            message = decode(bytes(buffer[offset + HEADER.size : end]))
            offset = end
            yield message
        del buffer[:offset]
