"""The online worker process: the one writer of the models it owns.

Each online model belongs to exactly one worker (by a stable hash of its name),
and a worker handles one message at a time, so events reach a model in the
order the host sent them. A batch of events is applied, appended to each
model's log as one frame, made durable with one ``fsync``, and only then
answered. Snapshots are written by a forked child from a copy-on-write image of
the process, so predictions and metric reads never wait for one.

When a model's log cannot be written (a full disk, a failing one), its segment
is cut back to where it ended before the batch, the model is rebuilt from its
files, and the batch's operations on it are answered as a storage error; the
worker stays up and serves the rest. Only if the cut fails too does the worker
exit: the host replaces it and the replacement replays the log, so memory never
holds an event the disk does not. A model whose files are damaged is refused,
with a report of where, until it is repaired or deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
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
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepaas_host.jobs.messages import Call, Ready, RemoteError, Reply, encode, receive
from deepaas_host.model.discovery import PluginInfo, load_plugin
from deepaas_host.online.eventlog import Damage, EventLog, fsync_dir, segment_name
from deepaas_host.online.files import (
    latest_snapshot,
    prune,
    read_meta,
    set_aside,
    write_meta,
    write_snapshot,
)
from deepaas_host.online.process import ActorConfig, OpFailed, shard_of, storage_kind

if TYPE_CHECKING:
    from deepaas_host.online.instance import Instance

__all__ = ["Actor", "run"]

log = logging.getLogger(__name__)

Result = tuple[Any, ...]
#: Exceptions that nearly always mean the sample does not suit the model (422).
_SAMPLE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError)
#: A snapshot is due as well when the current segment grows past this many bytes,
#: which bounds the log on disk and the replay after a restart.
_SEGMENT_BYTES = 64 << 20
#: Exit status of a worker whose memory may hold what its disk does not.
_EXIT_STORAGE = 75


def _storage_error(name: str, exc: OSError) -> Result:
    kind = storage_kind(exc)
    cause = exc.strerror or str(exc)
    if kind == "nospace":
        message = (
            f"Online model {name!r} could not write its log ({cause}): nothing of this "
            "request was applied; retry once the disk has room."
        )
    else:
        message = (
            f"Online model {name!r} could not write its log ({cause}): nothing of this "
            "request was applied."
        )
    return ("err", kind, message, None)


class Actor:
    def __init__(self, config: ActorConfig, plugins: Sequence[PluginInfo]) -> None:
        self.config = config
        self.root = Path(config.root)
        self.plugins = {p.name: p for p in plugins}
        self.instances: dict[str, Instance] = {}
        #: Models refused because their files are damaged: name -> what and where.
        self.damaged: dict[str, dict[str, Any]] = {}
        #: What the host should log (the worker's own log may be on the full disk).
        self.notices: deque[str] = deque(maxlen=200)
        # pid of a snapshot child -> (name, uid of the instance, seq it covers)
        self.snapshots: dict[int, tuple[str, str, int]] = {}
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
            try:
                instance, replayed = self._load(directory, recovering=True)
            except Exception as exc:
                self._refuse(name, exc)
                continue
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

    def _refuse(self, name: str, exc: BaseException) -> None:
        if isinstance(exc, Damage):
            details = exc.details()
        else:
            details = {"problem": f"{type(exc).__name__}: {exc}", "file": None}
        self.damaged[name] = details

    # messages -----------------------------------------------------------------------

    def handle(self, call: Call) -> Any:
        handler: Callable[[dict[str, Any]], Any] = getattr(self, f"_on_{call.method}")
        return handler(call.kwargs)

    def _instance(self, name: str) -> Instance:
        instance = self.instances.get(name)
        if instance is None:
            damage = self.damaged.get(name)
            if damage is not None:
                raise OpFailed(
                    "damaged",
                    f"Online model {name!r} is damaged and refused: {damage['problem']}.",
                    damage,
                )
            raise OpFailed("notfound", f"Online model {name!r} does not exist.")
        return instance

    def _on_batch(self, kwargs: dict[str, Any]) -> list[Result]:
        now = time.time()
        results: list[Result] = []
        touched: dict[str, list[int]] = {}
        for op in kwargs["ops"]:
            name = op[0]
            try:
                instance = self._instance(name)
                kind = op[1]
                if kind == "predict":
                    value = instance.predict(op[2], op[3], op[4], now)
                elif kind == "learn":
                    value = instance.learn(op[2], op[3], op[4], now)
                elif kind == "label":
                    value = instance.learn(None, op[3], op[2], now)
                else:
                    raise OpFailed("input", f"unknown operation {kind!r}")
                results.append(("ok", value))
            except OpFailed as exc:
                results.append(exc.result())
            except Exception as exc:
                # Mostly a sample the model cannot use (a text where it expects
                # numbers, a missing feature, a number that overflows): the caller's.
                kind = "sample" if isinstance(exc, _SAMPLE_ERRORS) else "model"
                results.append(("err", kind, f"{type(exc).__name__}: {exc}", None))
                if op[1] != "predict" and name in self.instances:
                    # A learn that raised may have changed part of the model:
                    # rebuild it from what the disk holds and this batch's events.
                    self._rebuild(self.instances[name], keep_pending=True)
            if name in self.instances:
                touched.setdefault(name, []).append(len(results) - 1)
        for name, error in self._commit(touched).items():
            for index in touched[name]:
                if results[index][0] == "ok":
                    results[index] = error
        self.reap()
        return results

    def _commit(self, names: Iterable[str]) -> dict[str, Result]:
        """Log and sync the queued events of ``names``; the errors of those that failed."""
        names = [n for n in names if n in self.instances]
        failed: dict[str, OSError] = {}
        written: list[Instance] = []
        for name in names:
            instance = self.instances[name]
            try:
                if instance.flush():
                    written.append(instance)
            except OSError as exc:
                failed[name] = exc
        for instance in written:
            try:
                instance.log.sync()
            except OSError as exc:
                failed[instance.name] = exc
        errors: dict[str, Result] = {}
        for name, cause in failed.items():
            instance = self.instances[name]
            try:
                instance.log.rollback()
            except OSError:
                # The frame may stay on disk while memory drops it: die, and let
                # the replacement worker rebuild every model from its log.
                traceback.print_exc()
                os._exit(_EXIT_STORAGE)
            self.notices.append(
                f"online model {name}: writing its log failed ({cause}); the segment is cut "
                "back and the batch's operations on it are refused"
            )
            self._rebuild(instance, keep_pending=False)
            errors[name] = _storage_error(name, cause)
        for name in names:
            current = self.instances.get(name)
            if name not in failed and current is not None:
                self._maybe_snapshot(current)
        return errors

    def _load(
        self, directory: Path, *, log: EventLog | None = None, recovering: bool = False
    ) -> tuple[Instance, int]:
        """An instance from its newest snapshot that loads and the events logged after it.

        ``log`` (the open log of the instance being rebuilt) is reused as it is.
        """
        from deepaas_host.online.instance import Instance

        meta = read_meta(directory)
        snapshot = latest_snapshot(directory)
        eventlog = log if log is not None else EventLog(directory, fsync=self.config.fsync)
        instance = Instance(directory.name, meta, snapshot.state, eventlog, self.config.limits)
        replayed = 0
        for event in eventlog.replay(after=instance.state.seq):
            try:
                instance.replay_event(event)
            except Exception as exc:
                file, offset = eventlog.position
                raise Damage(
                    f"event {event[0]} does not replay: {type(exc).__name__}: {exc}",
                    file=file,
                    offset=offset,
                    last_good_seq=event[0] - 1,
                ) from exc
            replayed += 1
        if recovering and snapshot.skipped:
            self._fell_back(directory, snapshot.path.name, snapshot.skipped)
        instance.expire(time.time())
        if log is None:
            eventlog.open_segment(instance.state.seq + 1)
        return instance, replayed

    def _fell_back(self, directory: Path, used: str, skipped: list[tuple[Path, str, bool]]) -> None:
        damaged = [path for path, _, bad in skipped if bad]
        where = ""
        if damaged:
            try:
                where = f"; set aside in {set_aside(directory, damaged).name}/"
            except OSError as exc:
                where = f"; could not be set aside: {exc}"
        why = "; ".join(f"{path.name}: {problem}" for path, problem, _ in skipped)
        self.notices.append(
            f"online model {directory.name}: newer snapshots do not load ({why}){where}; "
            f"serving from {used} and the log after it"
        )

    def _rebuild(self, instance: Instance, *, keep_pending: bool) -> None:
        """Make ``instance`` what its files say again (plus this batch's unlogged
        events when ``keep_pending``)."""
        name = instance.name
        pending = list(instance.pending) if keep_pending else []
        try:
            fresh, replayed = self._load(instance.directory, log=instance.log)
            fresh.reapply(pending)
        except OSError:
            traceback.print_exc()
            os._exit(_EXIT_STORAGE)
        except Exception as exc:
            # The files no longer read as they were written: refuse the model.
            del self.instances[name]
            instance.log.close()
            self._refuse(name, exc)
            return
        fresh.predictions = instance.predictions
        fresh.uid = instance.uid
        fresh.snapshot_tried = max(instance.snapshot_tried, fresh.snapshot_tried)
        # A long replay now makes the next rebuild short, once the batch is durable.
        fresh.snapshot_due = instance.snapshot_due or replayed >= 1000
        self.instances[name] = fresh

    def _on_create(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        from deepaas_host.online.flavors import FlavorError, describe, flavor_of, metric_set
        from deepaas_host.online.instance import Instance, State

        name: str = kwargs["name"]
        target = self.root / name
        if name in self.instances or name in self.damaged or target.exists():
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
            "estimator": describe(model),
            "description": kwargs.get("description") or "",
            "created": kwargs["created"],
            **source,
        }
        state = State(model, metrics)
        staging = self.root / f".new-{uuid.uuid4().hex}"
        placed = False
        try:
            staging.mkdir(parents=True)
            write_meta(staging, meta)
            write_snapshot(staging, 0, state)
            os.close(os.open(staging / segment_name(1), os.O_WRONLY | os.O_CREAT, 0o644))
            fsync_dir(staging)
            staging.rename(target)
            placed = True
            fsync_dir(self.root)
            eventlog = EventLog(target, fsync=self.config.fsync)
            eventlog.open_segment(1)
        except BaseException as exc:
            # Nothing half-made stays: the model exists whole, or not at all.
            shutil.rmtree(target if placed else staging, ignore_errors=True)
            if isinstance(exc, OSError):
                raise OpFailed(
                    storage_kind(exc),
                    f"Online model {name!r} could not be written ({exc.strerror or exc}); "
                    "nothing was created.",
                ) from exc
            raise
        instance = Instance(name, meta, state, eventlog, self.config.limits)
        self.instances[name] = instance
        return instance.info()

    def _on_delete(self, kwargs: dict[str, Any]) -> bool:
        name: str = kwargs["name"]
        instance = self.instances.get(name)
        if instance is None and name not in self.damaged:
            self._instance(name)  # raises: not found
        self._wait_for_snapshot(name)
        trash = self.root / ".trash"
        target = trash / f"{name}-{uuid.uuid4().hex}"
        try:
            trash.mkdir(exist_ok=True)
            (self.root / name).rename(target)
        except OSError as exc:
            raise OpFailed(
                storage_kind(exc), f"Online model {name!r} could not be deleted: {exc}"
            ) from exc
        try:
            fsync_dir(self.root)
        except OSError:
            self.notices.append(f"online model {name}: its delete may not survive a crash")
        if instance is not None:
            del self.instances[name]
            instance.log.close()
        self.damaged.pop(name, None)
        shutil.rmtree(target, ignore_errors=True)
        return True

    def _on_repair(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        from deepaas_host.online.repair import repair

        name: str = kwargs["name"]
        if name in self.instances:
            raise OpFailed("exists", f"Online model {name!r} is not damaged: nothing to repair.")
        if name not in self.damaged:
            raise OpFailed("notfound", f"Online model {name!r} does not exist.")
        instance, report = repair(self.root / name, name, config=self.config, plugins=self.plugins)
        self.instances[name] = instance
        del self.damaged[name]
        return {**report, "info": instance.info()}

    def _on_status(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        notices = list(self.notices)
        self.notices.clear()
        return {"damaged": dict(self.damaged), "notices": notices}

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

    def _snapshotting(self, name: str) -> bool:
        return any(n == name for n, _, _ in self.snapshots.values())

    def _maybe_snapshot(self, instance: Instance) -> None:
        seq = instance.state.seq
        if seq == instance.snapshot_seq or seq <= instance.snapshot_tried:
            return
        due = (
            instance.snapshot_due
            or seq - instance.snapshot_tried >= self.config.snapshot_every
            or instance.log.size >= _SEGMENT_BYTES
        )
        if not due or self._snapshotting(instance.name):
            return  # one at a time; the next batch tries again
        instance.snapshot_tried = seq
        instance.snapshot_due = False
        try:
            # First the segment after the snapshot, so that nothing written from
            # now on lands in a segment the snapshot is taken to cover.
            instance.log.open_segment(seq + 1)
        except OSError as exc:
            self.notices.append(f"snapshot of {instance.name} at {seq} not started: {exc}")
            return
        if not self.forking:
            self._write_snapshot(instance, seq)
            return
        try:
            pid = os.fork()
        except OSError as exc:
            self.notices.append(f"snapshot of {instance.name} at {seq} not started: {exc}")
            return
        if pid == 0:  # the child: write the copy-on-write image and leave, whatever happens
            code = 1
            try:
                write_snapshot(instance.directory, seq, instance.state)
                code = 0
            except BaseException:
                with contextlib.suppress(BaseException):  # stderr may be on the full disk
                    traceback.print_exc()
            finally:
                os._exit(code)
        self.snapshots[pid] = (instance.name, instance.uid, seq)

    def _write_snapshot(self, instance: Instance, seq: int) -> None:
        try:
            write_snapshot(instance.directory, seq, instance.state)
        except Exception as exc:
            self._snapshot_failed(instance.name, seq, f"{type(exc).__name__}: {exc}")
            return
        self._snapshot_done(instance, seq)

    def _snapshot_failed(self, name: str, seq: int, why: str) -> None:
        message = f"snapshot of {name} at {seq} failed ({why}); the log keeps every event"
        self.notices.append(message)

    def _snapshot_done(self, instance: Instance, seq: int) -> None:
        instance.snapshot_seq = max(instance.snapshot_seq, seq)
        try:
            prune(instance.directory, seq)
        except OSError as exc:
            self.notices.append(f"pruning {instance.name} after snapshot {seq} failed: {exc}")

    def _wait_for_snapshot(self, name: str) -> None:
        for pid, (owner, _, _) in list(self.snapshots.items()):
            if owner == name:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                del self.snapshots[pid]

    def reap(self, block: bool = False) -> None:
        for pid, (name, uid, seq) in list(self.snapshots.items()):
            try:
                done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done, status = pid, -1
            if done == 0:
                continue
            del self.snapshots[pid]
            if status != 0:
                why = "its exit status is lost" if status < 0 else _exit_status(status)
                self._snapshot_failed(name, seq, f"the writer {why}")
                continue
            instance = self.instances.get(name)
            if instance is not None and instance.uid == uid:
                self._snapshot_done(instance, seq)

    def close(self) -> None:
        self.reap(block=True)
        for instance in self.instances.values():
            seq = instance.state.seq
            if seq != instance.snapshot_seq:
                try:
                    instance.log.open_segment(seq + 1)
                except OSError:
                    log.exception(
                        "final snapshot of %s not taken; its log keeps every event",
                        instance.name,
                    )
                else:
                    self._write_snapshot(instance, seq)
            instance.log.close()
        for notice in self.notices:  # nobody asks for them any more
            log.error("%s", notice)
        self.notices.clear()


def _exit_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


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
            reply = Reply(call.id, value=exc.result())
        except OSError as exc:
            # A download to a full disk, a repair on a failing one.
            message = f"{call.method} failed: {exc.strerror or exc}"
            reply = Reply(call.id, value=("err", storage_kind(exc), message, None))
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
