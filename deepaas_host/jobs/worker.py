"""The worker process: load the plugins, warm them, then run calls one at a time.

Started with the ``spawn`` context, so nothing is inherited but the arguments.
It never imports aiohttp. Calls arrive in order and are answered in order; a
reply is written before the next call starts, so when a worker dies the host
knows exactly which call killed it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

from deepaas_host.jobs.messages import (
    HEADER,
    Call,
    Progress,
    Ready,
    RemoteError,
    Reply,
    decode,
    encode,
)
from deepaas_host.model.discovery import PluginInfo, load_plugin, quiet_legacy_warnings
from deepaas_host.model.outputs import (
    OutputError,
    dumps,
    render_output,
    response_schema_of,
)
from deepaas_host.model.v2 import reporting_progress_to

__all__ = ["worker_main"]

log = logging.getLogger(__name__)


class _Runner:
    def __init__(self, plugins: Sequence[PluginInfo]) -> None:
        self.models: dict[str, Any] = {}
        self.schemas: dict[str, Any] = {}
        for info in plugins:
            model = load_plugin(info).model
            self.models[info.name] = model
            with quiet_legacy_warnings():
                self.schemas[info.name] = response_schema_of(model)

    def warm(self) -> None:
        for model in self.models.values():
            warm = getattr(model, "warm", None)
            if callable(warm):
                with quiet_legacy_warnings():
                    warm()

    def run(self, call: Call, send: Any) -> Reply:
        model = self.models[call.model]
        method = getattr(model, call.method)
        try:
            if call.method == "train":

                def progress(fraction: float | None, message: str) -> None:
                    send(Progress(call.id, fraction, message))

                with reporting_progress_to(progress):
                    result = method(**call.kwargs)
                value = json.loads(dumps(result))
                return Reply(call.id, value=value)
            result = method(**call.kwargs)
            outcome = render_output(result, accept=call.accept, schema=self.schemas[call.model])
            return Reply(call.id, outcome=outcome)
        except OutputError as exc:
            return Reply(
                call.id,
                error=RemoteError("output", "OutputError", str(exc), details=exc.details),
            )
        except Exception as exc:
            return Reply(
                call.id,
                error=RemoteError(
                    "model",
                    type(exc).__name__,
                    str(exc),
                    traceback.format_exc(limit=20),
                ),
            )


def _watch_parent(parent_pid: int) -> None:
    # A worker busy in a long training cannot notice a closed socket; this does.
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(70)


def worker_main(
    sock: socket.socket, plugins: Sequence[PluginInfo], warm: bool, parent_pid: int
) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    lock = threading.Lock()

    def send(message: object) -> None:
        frame = encode(message)
        with lock:
            sock.sendall(frame)

    try:
        runner = _Runner(plugins)
        if warm:
            runner.warm()
    except BaseException as exc:
        send(
            Ready(
                os.getpid(),
                RemoteError("host", type(exc).__name__, str(exc), traceback.format_exc()),
            )
        )
        sys.exit(3)
    send(Ready(os.getpid()))

    buffer = bytearray()
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return  # host closed the pipe: shut down quietly
        buffer += chunk
        while len(buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer)
            end = HEADER.size + size
            if len(buffer) < end:
                break
            call: Call = decode(bytes(buffer[HEADER.size : end]))
            del buffer[:end]
            try:
                reply = runner.run(call, send)
                send(reply)
            except Exception as exc:  # the reply itself failed to pickle, say
                send(Reply(call.id, error=RemoteError("host", type(exc).__name__, str(exc))))
