"""The online worker process: the one writer of the models it owns.

Each online model belongs to exactly one worker (by a stable hash of its name),
and a worker handles one message at a time, so events reach a model in the
order the host sent them. A batch of events is applied, appended to each
model's log as one frame, made durable with one ``fsync``, and only then
answered. Snapshots are written by a forked child from a copy-on-write image of
the process, so predictions and metric reads never wait for one. If writing
the log fails the worker exits: the host replaces it and the replacement
replays the log, so memory never holds an event the disk does not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pickle
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepaas_host.jobs.messages import Call, Ready, RemoteError, Reply, encode, receive
from deepaas_host.model.discovery import PluginInfo, load_plugin
from deepaas_host.online.eventlog import EventLog, latest_snapshot, prune, write_snapshot
from deepaas_host.online.process import ActorConfig, OpFailed, shard_of

if TYPE_CHECKING:
    from deepaas_host.online.instance import Instance

__all__ = ["Actor", "run"]

log = logging.getLogger(__name__)

Result = tuple[Any, ...]
#: Exceptions that nearly always mean the sample does not suit the model (422).
_SAMPLE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError)


class Actor:
    def __init__(self, config: ActorConfig, plugins: Sequence[PluginInfo]) -> None:
        self.config = config
        self.root = Path(config.root)
        self.plugins = {p.name: p for p in plugins}
        self.instances: dict[str, Instance] = {}
        # pid of a snapshot child -> (instance, seq it covers)
        self.snapshots: dict[int, tuple[Instance, int]] = {}
        self.forking = hasattr(os, "fork")

    # start ------------------------------------------------------------------------

    def recover(self) -> None:
        # river (via instance) is imported only when there is a model to hold.
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in sorted(self.root.iterdir()):
            name = directory.name
            if name.startswith(".") or not directory.is_dir():
                continue
            if shard_of(name, self.config.shards) != self.config.shard:
                continue
            instance, replayed = self._load(directory)
            self.instances[name] = instance
            if replayed:
                log.info(
                    "online model %s: replayed %d events after snapshot %d",
                    name,
                    replayed,
                    instance.snapshot_seq,
                )
        shutil.rmtree(self.root / ".trash", ignore_errors=True)
        for leftover in self.root.glob(".new-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    # messages -----------------------------------------------------------------------

    def handle(self, call: Call) -> Any:
        handler: Callable[[dict[str, Any]], Any] = getattr(self, f"_on_{call.method}")
        return handler(call.kwargs)

    def _instance(self, name: str) -> Instance:
        instance = self.instances.get(name)
        if instance is None:
            raise OpFailed("notfound", f"Online model {name!r} does not exist.")
        return instance

    def _on_batch(self, kwargs: dict[str, Any]) -> list[Result]:
        now = time.time()
        results: list[Result] = []
        touched: set[str] = set()
        for op in kwargs["ops"]:
            try:
                instance = self._instance(op[0])
                kind = op[1]
                if kind == "predict":
                    value = instance.predict(op[2], op[3], op[4], now)
                elif kind == "learn":
                    value = instance.learn(op[2], op[3], op[4], now)
                elif kind == "label":
                    value = instance.learn(None, op[3], op[2], now)
                else:
                    raise OpFailed("input", f"unknown operation {kind!r}")
                touched.add(instance.name)
                results.append(("ok", value))
            except OpFailed as exc:
                results.append(("err", exc.kind, str(exc)))
            except Exception as exc:
                # Mostly a sample the model cannot use (a text where it expects
                # numbers, a missing feature): the caller's to fix.
                kind = "sample" if isinstance(exc, _SAMPLE_ERRORS) else "model"
                results.append(("err", kind, f"{type(exc).__name__}: {exc}"))
                if op[1] != "predict" and op[0] in self.instances:
                    # A learn that raised may have changed part of the model:
                    # rebuild it from what the disk holds, so memory equals log.
                    self._rebuild(self.instances[op[0]])
        try:
            current = [self.instances[n] for n in touched if n in self.instances]
            written = [i for i in current if i.flush()]
            for instance in written:
                instance.log.sync()
        except OSError:
            # Memory now holds events the disk may not: die, and let the
            # replacement worker rebuild every model from its log.
            traceback.print_exc()
            os._exit(75)
        for instance in written:
            self._maybe_snapshot(instance)
        self.reap()
        return results

    def _load(self, directory: Path) -> tuple[Instance, int]:
        """An instance from its latest snapshot and the events logged after it."""
        from deepaas_host.online.instance import Instance

        meta = json.loads((directory / "meta.json").read_text())
        seq, state = latest_snapshot(directory)
        eventlog = EventLog(directory, fsync=self.config.fsync)
        instance = Instance(directory.name, meta, state, eventlog, self.config.limits)
        instance.snapshot_seq = seq
        replayed = 0
        for event in eventlog.replay(after=state.seq):
            instance.replay_event(event)
            replayed += 1
        instance.expire(time.time())
        eventlog.open_segment(instance.state.seq + 1)
        return instance, replayed

    def _rebuild(self, instance: Instance) -> None:
        try:
            if instance.flush():
                instance.log.sync()
        except OSError:
            traceback.print_exc()
            os._exit(75)
        instance.log.close()
        fresh, replayed = self._load(instance.directory)
        fresh.predictions = instance.predictions
        self.instances[instance.name] = fresh
        if replayed >= 1000:
            self._maybe_snapshot(fresh, force=True)  # keep the next rebuild short

    def _on_create(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        from deepaas_host.online.flavors import FlavorError, flavor_of, metric_set
        from deepaas_host.online.instance import Instance, State

        name: str = kwargs["name"]
        if name in self.instances or (self.root / name).exists():
            raise OpFailed("exists", f"Online model {name!r} already exists.")
        flavor_name: str | None = kwargs.get("flavor")
        custom_metrics = None
        if kwargs.get("plugin"):
            info = self.plugins.get(kwargs["plugin"])
            if info is None:
                raise OpFailed("notfound", f"No online plugin named {kwargs['plugin']!r}.")
            plugin = load_plugin(info).model
            try:
                model = plugin.build()
                custom_metrics = plugin.metrics()
            except Exception as exc:
                raise OpFailed("model", f"{type(exc).__name__}: {exc}") from exc
            flavor_name = flavor_name or plugin.flavor
            source = {"plugin": info.name}
            kwargs["description"] = kwargs.get("description") or plugin.description
        else:
            try:
                with open(kwargs["file"], "rb") as fh:
                    model = pickle.load(fh)
            except Exception as exc:
                raise OpFailed(
                    "input", f"the file is not a loadable pickle: {type(exc).__name__}: {exc}"
                ) from exc
            source = {"upload": kwargs.get("filename") or "model.pkl"}
        assert flavor_name is not None
        try:
            flavor = flavor_of(flavor_name, model)
            metrics = metric_set(flavor, custom_metrics, self.config.window)
        except FlavorError as exc:
            raise OpFailed("input", str(exc)) from exc
        meta = {
            "name": name,
            "flavor": flavor.name,
            "estimator": _describe(model),
            "description": kwargs.get("description") or "",
            "created": kwargs["created"],
            **source,
        }
        state = State(model, metrics)
        staging = self.root / f".new-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            (staging / "meta.json").write_text(json.dumps(meta, indent=2))
            write_snapshot(staging, 0, state)
            staging.rename(self.root / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        eventlog = EventLog(self.root / name, fsync=self.config.fsync)
        eventlog.open_segment(1)
        instance = Instance(name, meta, state, eventlog, self.config.limits)
        self.instances[name] = instance
        return instance.info()

    def _on_delete(self, kwargs: dict[str, Any]) -> bool:
        instance = self._instance(kwargs["name"])
        del self.instances[instance.name]
        instance.log.close()
        trash = self.root / ".trash"
        trash.mkdir(exist_ok=True)
        target = trash / f"{instance.name}-{uuid.uuid4().hex}"
        instance.directory.rename(target)
        shutil.rmtree(target, ignore_errors=True)
        return True

    def _on_info(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return self._instance(kwargs["name"]).info()

    def _on_list(self, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        return [i.info() for i in self.instances.values()]

    def _on_metrics(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return self._instance(kwargs["name"]).metrics()

    def _on_download(self, kwargs: dict[str, Any]) -> int:
        instance = self._instance(kwargs["name"])
        with open(kwargs["path"], "wb") as fh:
            pickle.dump(instance.state.model, fh, protocol=pickle.HIGHEST_PROTOCOL)
            return fh.tell()

    # snapshots ----------------------------------------------------------------------

    def _maybe_snapshot(self, instance: Instance, force: bool = False) -> None:
        seq = instance.state.seq
        if seq == instance.snapshot_seq:
            return
        if not force and seq - instance.snapshot_seq < self.config.snapshot_every:
            return
        if any(i is instance for i, _ in self.snapshots.values()):
            return  # one at a time; the next batch tries again
        if not self.forking:
            self._snapshot_inline(instance)
            return
        pid = os.fork()
        if pid == 0:  # the child: write the copy-on-write image and leave
            code = 0
            try:
                write_snapshot(instance.directory, seq, instance.state)
            except BaseException:
                traceback.print_exc()
                code = 1
            os._exit(code)
        instance.log.open_segment(seq + 1)
        self.snapshots[pid] = (instance, seq)

    def _snapshot_inline(self, instance: Instance) -> None:
        seq = instance.state.seq
        if seq == instance.snapshot_seq:
            return
        write_snapshot(instance.directory, seq, instance.state)
        instance.log.open_segment(seq + 1)
        instance.snapshot_seq = seq
        prune(instance.directory, seq)

    def reap(self, block: bool = False) -> None:
        for pid, (instance, seq) in list(self.snapshots.items()):
            try:
                done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 1
            if done == 0:
                continue
            del self.snapshots[pid]
            if status != 0:
                log.error(
                    "snapshot of %s at %d failed; the log keeps every event", instance.name, seq
                )
                continue
            if self.instances.get(instance.name) is instance:
                instance.snapshot_seq = max(instance.snapshot_seq, seq)
                prune(instance.directory, seq)

    def close(self) -> None:
        self.reap(block=True)
        for instance in self.instances.values():
            try:
                self._snapshot_inline(instance)
            except Exception:
                log.exception(
                    "final snapshot of %s failed; its log keeps every event", instance.name
                )
            instance.log.close()


def _describe(model: Any) -> str:
    steps = getattr(model, "steps", None)
    if isinstance(steps, dict):
        return " | ".join(type(step).__name__ for step in steps.values())
    return type(model).__name__


def _lock_shard(config: ActorConfig, timeout: float = 60.0) -> None:
    """Own this shard's models alone: wait for a worker of a killed host to exit.

    The lock is released by the kernel when this process ends, however it ends.
    """
    root = Path(config.root)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f".lock-{config.shard}-of-{config.shards}", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"another process holds the online models in {root} "
                    f"(shard {config.shard}); is another host using this data dir?"
                ) from None
            time.sleep(0.05)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(70)


def run(
    sock: socket.socket,
    parent_pid: int,
    config: ActorConfig,
    plugins: Sequence[PluginInfo],
) -> None:
    """The online worker's main loop (started through ``process.online_main``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()

    def send(message: object) -> None:
        sock.sendall(encode(message))

    actor = Actor(config, plugins)
    try:
        _lock_shard(config)
        actor.recover()
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
    # Idle seconds collect finished snapshot children.
    for call in receive(sock, idle=actor.reap):
        try:
            reply = Reply(call.id, value=("ok", actor.handle(call)))
        except OpFailed as exc:
            reply = Reply(call.id, value=("err", exc.kind, str(exc)))
        except Exception as exc:
            reply = Reply(
                call.id,
                error=RemoteError(
                    "host", type(exc).__name__, str(exc), traceback.format_exc(limit=20)
                ),
            )
        with contextlib.suppress(BrokenPipeError):
            send(reply)
    actor.close()
