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
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepaas_host.jobs.messages import (
    Call,
    Progress,
    Ready,
    RemoteError,
    Reply,
    VersionRef,
    encode,
    receive,
)
from deepaas_host.jobs.proctree import kill_tree, lead_own_tree
from deepaas_host.model.discovery import PluginInfo, load_plugin, quiet_legacy_warnings
from deepaas_host.model.failures import refusal_of
from deepaas_host.model.outputs import (
    OutputError,
    dumps,
    render_output,
    response_schema_of,
)
from deepaas_host.model.v2 import reporting_progress_to, writing_artifacts_to
from deepaas_host.registry.artifacts import sha256_of

__all__ = ["worker_main"]

log = logging.getLogger(__name__)


class VersionLoadFailed(Exception):
    """A version's artifact is missing, corrupt, or the plugin's load raised."""


class _Runner:
    def __init__(self, plugins: Sequence[PluginInfo], max_loaded: int = 2) -> None:
        self.models: dict[str, Any] = {}
        self.schemas: dict[str, Any] = {}
        self.max_loaded = max(1, max_loaded)
        # (model, version, sha256) -> predictor, least recently used first
        self.loaded: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
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

    def loaded_names(self, model: str) -> tuple[str, ...]:
        return tuple(name for (m, name, _) in self.loaded if m == model)

    def _predictor(self, model_name: str, ref: VersionRef) -> Any:
        key = (model_name, ref.name, ref.sha256)
        if key in self.loaded:
            self.loaded.move_to_end(key)
            return self.loaded[key]
        # Another artifact under the same name (force-replaced) is stale now.
        for stale in [k for k in self.loaded if k[:2] == key[:2]]:
            self._release(stale)
        path = Path(ref.path)
        if not path.is_file():
            raise VersionLoadFailed(f"version {ref.name!r}: artifact file is missing")
        if sha256_of(path) != ref.sha256:
            raise VersionLoadFailed(
                f"version {ref.name!r}: artifact checksum mismatch (the file is corrupt)"
            )
        load = getattr(self.models[model_name], "load", None)
        if not callable(load):
            raise VersionLoadFailed(f"model {model_name!r} cannot load versions (no load())")
        try:
            with quiet_legacy_warnings():
                predictor = load(str(path))
        except Exception as exc:
            raise VersionLoadFailed(
                f"version {ref.name!r}: load() raised {type(exc).__name__}: {exc}"
            ) from exc
        if not callable(getattr(predictor, "predict", None)):
            raise VersionLoadFailed(
                f"version {ref.name!r}: load() returned {type(predictor).__name__}, "
                "which has no predict()"
            )
        self.loaded[key] = predictor
        while len(self.loaded) > self.max_loaded:
            self._release(next(iter(self.loaded)))
        return predictor

    def _release(self, key: tuple[str, str, str]) -> None:
        predictor = self.loaded.pop(key)
        unload = getattr(predictor, "unload", None)
        if callable(unload):
            try:
                unload()
            except Exception:
                log.exception("unload of %s %s raised", key[0], key[1])

    def _call(self, call: Call, send: Any) -> Reply:
        model = self.models[call.model]
        if call.method == "train":

            def progress(fraction: float | None, message: str) -> None:
                send(Progress(call.id, fraction, message))

            with reporting_progress_to(progress), writing_artifacts_to(call.artifact_dir):
                result = model.train(**call.kwargs)
            return Reply(call.id, value=json.loads(dumps(result)))
        if call.method == "learn":
            result = model.learn(**call.kwargs)
            return Reply(call.id, value=json.loads(dumps(result)))
        if call.method == "load":
            assert call.version is not None
            self._predictor(call.model, call.version)
            return Reply(call.id, value=True)
        if call.method == "unload":
            name = call.kwargs["version"]
            for key in [k for k in self.loaded if k[0] == call.model and k[1] == name]:
                self._release(key)
            return Reply(call.id, value=True)
        if call.version is not None:
            result = self._predictor(call.model, call.version).predict(**call.kwargs)
        else:
            result = model.predict(**call.kwargs)
        outcome = render_output(result, accept=call.accept, schema=self.schemas[call.model])
        return Reply(call.id, outcome=outcome)

    def run(self, call: Call, send: Any) -> Reply:
        try:
            reply = self._call(call, send)
        except VersionLoadFailed as exc:
            reply = Reply(call.id, error=RemoteError("version", "VersionLoadError", str(exc)))
        except OutputError as exc:
            reply = Reply(
                call.id,
                error=RemoteError("output", "OutputError", str(exc), details=exc.details),
            )
        except Exception as exc:
            refusal = refusal_of(exc, call.model)
            if refusal is not None:
                error = RemoteError(
                    "input", type(exc).__name__, refusal.message, details=refusal.details
                )
            else:
                error = RemoteError(
                    "model", type(exc).__name__, str(exc), traceback.format_exc(limit=20)
                )
            reply = Reply(call.id, error=error)
        if call.version is not None or call.method == "unload":
            reply.loaded = self.loaded_names(call.model)
        return reply


def _watch_parent(parent_pid: int) -> None:
    # A worker busy in a long training cannot notice a closed socket; this does.
    # The host is gone (killed, say): nothing the plugin started may outlive it.
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            _end_tree()


def _end_tree() -> None:
    """Kill every process this worker's plugin started, then the worker."""
    kill_tree(os.getpid(), include_root=False)
    # Its group too: a process forked after the listing is still in it.
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(70)


def worker_main(
    sock: socket.socket,
    plugins: Sequence[PluginInfo],
    warm: bool,
    parent_pid: int,
    max_loaded: int = 2,
) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # First, before any plugin code runs: what it starts stays in this tree.
    lead_own_tree()
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    lock = threading.Lock()

    def send(message: object) -> None:
        frame = encode(message)
        with lock:
            sock.sendall(frame)

    try:
        runner = _Runner(plugins, max_loaded)
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

    call: Call
    for call in receive(sock):  # ends when the host closes the pipe: shut down quietly
        try:
            reply = runner.run(call, send)
            send(reply)
        except Exception as exc:  # the reply itself failed to pickle, say
            send(Reply(call.id, error=RemoteError("host", type(exc).__name__, str(exc))))
