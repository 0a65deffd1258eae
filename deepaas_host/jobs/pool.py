"""A pool of warmed worker processes with a bounded FIFO queue.

Each worker is a ``spawn``-ed process connected by a socket pair. Calls are
pipelined up to ``depth`` per worker and answered in order, so when a worker
dies the first unanswered call is the one it was running: that call fails,
the others go back to the head of the queue, and a new worker is spawned and
warmed in its place.

A call is encoded for the worker when it is queued (in a thread when the
caller says it is large; it keeps its place in line meanwhile). A call whose
client has gone (its ``gone`` says so) is dropped when its turn comes, and
counted, instead of keeping a worker busy for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepaas_host.errors import (
    ArgumentError,
    ClientGone,
    HostError,
    ModelError,
    Overloaded,
    ResponseValidationError,
    ShuttingDown,
    VersionLoadError,
    WorkerCrashed,
)
from deepaas_host.jobs.messages import (
    HEADER,
    Call,
    Progress,
    Ready,
    Reply,
    VersionRef,
    decode,
    encode,
)
from deepaas_host.jobs.proctree import kill_tree
from deepaas_host.jobs.worker import worker_main
from deepaas_host.model.discovery import PluginInfo

__all__ = ["CallCancelled", "PoolStats", "WorkerPool", "kill_process_tree"]

log = logging.getLogger(__name__)

ProgressHandler = Callable[[float | None, str], None]


class CallCancelled(HostError):
    """The call was cancelled before it finished."""

    status = 409


@dataclass(eq=False)
class _Pending:
    call: Call
    future: asyncio.Future[Reply]
    tag: str | None = None
    on_start: Callable[[], None] | None = None
    on_progress: ProgressHandler | None = None
    #: True once whoever is waiting for the answer has gone.
    gone: Callable[[], bool] | None = None
    #: The encoded call; None while it is being encoded.
    frame: bytes | None = None


@dataclass(eq=False)
class _Worker:
    slot: int
    process: multiprocessing.process.BaseProcess
    transport: asyncio.Transport
    ready: asyncio.Future[Ready]
    inflight: deque[_Pending] = field(default_factory=deque)
    loaded: dict[str, frozenset[str]] = field(default_factory=dict)
    cancelled: _Pending | None = None
    exited: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    @property
    def serving(self) -> bool:
        return self.ready.done() and not self.ready.cancelled() and self.ready.exception() is None


@dataclass(frozen=True)
class PoolStats:
    name: str
    size: int
    ready: int
    busy: int
    queued: int
    restarts: int
    pids: list[int]
    #: Calls dropped unrun because their client had gone.
    dropped: int = 0


def kill_process_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a worker, every descendant of it (orphans it adopted included) and its
    process group, frozen first so that none escapes (see ``jobs.proctree``)."""
    kill_tree(pid, sig)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class WorkerPool:
    """``size`` warmed workers serving ``plugins``."""

    def __init__(
        self,
        plugins: Sequence[PluginInfo],
        *,
        name: str = "predict",
        size: int = 1,
        depth: int = 2,
        max_queue: int | None = 256,
        warm: bool = True,
        ready_timeout: float = 120.0,
        max_loaded: int = 2,
        main: Callable[..., None] | None = None,
        main_args: tuple[Any, ...] = (),
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        self.name = name
        self.size = size
        self._plugins = list(plugins)
        self._depth = max(1, depth)
        self._max_queue = max_queue
        self._warm = warm
        self._ready_timeout = ready_timeout
        self._max_loaded = max_loaded
        # Another worker program: called as main(socket, host_pid, *main_args).
        self._main = main
        self._main_args = main_args
        self._ctx = multiprocessing.get_context("spawn")
        self._ids = itertools.count(1)
        self._queue: deque[_Pending] = deque()
        self._workers: dict[int, _Worker] = {}
        self._closing = False
        self._restarts = 0
        self._dropped = 0
        self._respawns: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()

    # life cycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Spawn every worker and wait until all are warmed."""
        workers = await asyncio.gather(*(self._spawn(i) for i in range(self.size)))
        try:
            await asyncio.wait_for(asyncio.gather(*(w.ready for w in workers)), self._ready_timeout)
        except BaseException:
            await self.close(grace=0)
            raise

    async def close(self, grace: float = 10.0) -> None:
        """Stop taking calls, let running ones finish within ``grace``, stop workers."""
        self._closing = True
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(ShuttingDown("The host is shutting down."))
        deadline = time.monotonic() + grace
        while self._busy() and time.monotonic() < deadline:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), deadline - time.monotonic())
        for task in list(self._respawns):
            task.cancel()
        workers = list(self._workers.values())
        for w in workers:
            w.transport.close()
        loop = asyncio.get_running_loop()
        for w in workers:
            await loop.run_in_executor(None, w.process.join, 2.0)
            if w.process.is_alive():
                kill_process_tree(w.pid)
                await loop.run_in_executor(None, w.process.join, 2.0)
            if w.exited is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await w.exited
            for pending in w.inflight:
                if not pending.future.done():
                    pending.future.set_exception(ShuttingDown("The host is shutting down."))
        self._workers.clear()

    @property
    def ready(self) -> bool:
        return not self._closing and sum(w.serving for w in self._workers.values()) == self.size

    def stats(self) -> PoolStats:
        workers = list(self._workers.values())
        return PoolStats(
            self.name,
            self.size,
            sum(w.serving for w in workers),
            sum(len(w.inflight) for w in workers),
            len(self._queue),
            self._restarts,
            sorted(w.pid for w in workers),
            self._dropped,
        )

    def count_dropped(self, count: int) -> None:
        """Count calls dropped before they reached the pool (members of a batch)."""
        self._dropped += count

    def pids(self) -> list[int]:
        return [w.pid for w in self._workers.values()]

    # calls --------------------------------------------------------------------

    async def call(
        self,
        model: str,
        method: str,
        kwargs: dict[str, Any],
        *,
        accept: str | None = None,
        tag: str | None = None,
        on_start: Callable[[], None] | None = None,
        on_progress: ProgressHandler | None = None,
        version: VersionRef | None = None,
        artifact_dir: str | None = None,
        large: bool = False,
        gone: Callable[[], bool] | None = None,
    ) -> Reply:
        """Run one call in a worker; raises a HostError when it fails.

        ``large``: encode the call in a thread. ``gone``: tells whether the
        caller's client has left; such a call is dropped unrun (``ClientGone``).
        """
        if self._closing:
            raise ShuttingDown("The host is shutting down.")
        if self._max_queue is not None and len(self._queue) >= self._max_queue:
            self._sweep()
            if len(self._queue) >= self._max_queue:
                raise Overloaded(
                    f"The {self.name} queue is full ({self._max_queue} waiting); retry shortly."
                )
        loop = asyncio.get_running_loop()
        call = Call(next(self._ids), model, method, kwargs, accept, version, artifact_dir)
        pending = _Pending(call, loop.create_future(), tag, on_start, on_progress, gone)
        if not large:
            pending.frame = encode(call)
        self._queue.append(pending)
        try:
            if large:
                pending.frame = await asyncio.to_thread(encode, call)
            self._pump()
            reply = await pending.future
        except BaseException:
            with contextlib.suppress(ValueError):
                self._queue.remove(pending)
            if large and pending.frame is None:
                self._pump()  # the calls queued behind it may go now
            raise
        if reply.error is not None:
            raise _as_host_error(reply, model)
        return reply

    async def broadcast(
        self, model: str, method: str, kwargs: dict[str, Any], *, version: VersionRef | None = None
    ) -> None:
        """Run one call in every serving worker (load/unload); raise the first failure."""
        if self._closing:
            raise ShuttingDown("The host is shutting down.")
        loop = asyncio.get_running_loop()
        pendings = []
        for w in list(self._workers.values()):
            if not w.serving:
                continue
            pending = _Pending(
                Call(next(self._ids), model, method, kwargs, None, version), loop.create_future()
            )
            pending.frame = encode(pending.call)
            w.inflight.append(pending)
            w.transport.write(pending.frame)
            pendings.append(pending)
        replies = await asyncio.gather(*(p.future for p in pendings), return_exceptions=True)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
            if reply.error is not None:
                raise _as_host_error(reply, model)

    def loaded_versions(self, model: str) -> set[str]:
        """Versions of ``model`` loaded in at least one worker."""
        names: set[str] = set()
        for w in self._workers.values():
            names |= w.loaded.get(model, frozenset())
        return names

    def cancel(self, tag: str) -> bool:
        """Cancel the call carrying ``tag``: drop it if queued, kill its worker if running."""
        for pending in self._queue:
            if pending.tag == tag:
                self._queue.remove(pending)
                pending.future.set_exception(CallCancelled("Cancelled before it started."))
                return True
        for w in self._workers.values():
            for pending in w.inflight:
                if pending.tag == tag:
                    w.cancelled = pending
                    kill_process_tree(w.pid)
                    return True
        return False

    # internals ----------------------------------------------------------------

    def _busy(self) -> bool:
        return any(w.inflight for w in self._workers.values())

    def _pump(self) -> None:
        queue = self._queue
        while queue:
            head = queue[0]
            if head.future.done():
                queue.popleft()
                continue
            frame = head.frame
            if frame is None:
                return  # still being encoded: the calls behind it keep their order
            candidates = [
                w for w in self._workers.values() if w.serving and len(w.inflight) < self._depth
            ]
            if not candidates:
                return
            pending = queue.popleft()
            if pending.gone is not None and pending.gone():
                self._drop(pending)
                continue
            w = min(candidates, key=lambda c: len(c.inflight))
            w.inflight.append(pending)
            w.transport.write(frame)
            if pending.on_start is not None:
                # After the wake-up of whoever awaited the reply that freed this
                # slot: the previous call is seen to end before this one starts.
                asyncio.get_running_loop().call_soon(pending.on_start)

    def _drop(self, pending: _Pending) -> None:
        self._dropped += 1
        log.debug(
            "%s call %d (%s %s) dropped: its client has gone",
            self.name,
            pending.call.id,
            pending.call.model,
            pending.call.method,
        )
        pending.future.set_exception(ClientGone("The client went away before its call ran."))

    def _sweep(self) -> None:
        """Drop the waiting calls whose clients have gone (the queue is full)."""
        kept: deque[_Pending] = deque()
        for pending in self._queue:
            if pending.future.done():
                continue
            if pending.gone is not None and pending.gone():
                self._drop(pending)
            else:
                kept.append(pending)
        self._queue = kept

    async def _spawn(self, slot: int) -> _Worker:
        loop = asyncio.get_running_loop()
        parent_sock, child_sock = socket.socketpair()
        if self._main is not None:
            target: Callable[..., None] = self._main
            args: tuple[Any, ...] = (child_sock, os.getpid(), *self._main_args)
        else:
            target = worker_main
            args = (child_sock, self._plugins, self._warm, os.getpid(), self._max_loaded)
        process = self._ctx.Process(
            target=target, args=args, name=f"deepaas-host-{self.name}-{slot}"
        )
        await loop.run_in_executor(None, process.start)
        child_sock.close()
        protocol = _FrameProtocol(self)
        transport, _ = await loop.create_unix_connection(lambda: protocol, sock=parent_sock)
        worker = _Worker(slot, process, transport, loop.create_future())
        protocol.worker = worker
        self._workers[slot] = worker
        return worker

    def _dispatch(self, w: _Worker, message: object) -> None:
        if isinstance(message, Reply):
            self._on_reply(w, message)
        elif isinstance(message, Progress):
            self._on_progress(w, message)
        elif isinstance(message, Ready):
            self._on_ready(w, message)

    def _on_ready(self, w: _Worker, message: Ready) -> None:
        if message.error is not None:
            error = HostError(
                f"A {self.name} worker failed to start: {message.error.type}: "
                f"{message.error.message}",
                details={"traceback": message.error.traceback},
            )
            if not w.ready.done():
                w.ready.set_exception(error)
            return
        if not w.ready.done():
            w.ready.set_result(message)
        log.debug("%s worker %d (pid %d) ready", self.name, w.slot, message.pid)
        self._pump()

    def _on_reply(self, w: _Worker, reply: Reply) -> None:
        for pending in w.inflight:
            if pending.call.id == reply.id:
                w.inflight.remove(pending)
                if reply.loaded is not None:
                    w.loaded[pending.call.model] = frozenset(reply.loaded)
                if not pending.future.done():
                    pending.future.set_result(reply)
                break
        if not self._busy():
            self._idle.set()
        self._pump()

    def _on_progress(self, w: _Worker, message: Progress) -> None:
        for pending in w.inflight:
            if pending.call.id == message.id and pending.on_progress is not None:
                pending.on_progress(message.fraction, message.message)

    async def _on_exit(self, w: _Worker) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, w.process.join, 5.0)
        how = _describe_exit(w.process.exitcode)
        if self._workers.get(w.slot) is w:
            del self._workers[w.slot]
        w.transport.close()
        if not w.ready.done():
            w.ready.set_exception(HostError(f"A {self.name} worker {how} while starting."))
        elif w.ready.exception() is None and not self._closing:
            log.warning("%s worker %d (pid %d) %s", self.name, w.slot, w.pid, how)
        inflight = list(w.inflight)
        w.inflight.clear()
        if inflight:
            first, rest = inflight[0], inflight[1:]
            # Done already when its caller was cancelled (a training job at shutdown).
            if first.future.done():
                pass
            elif w.cancelled is first:
                first.future.set_exception(CallCancelled("Cancelled while running."))
            elif self._closing:
                first.future.set_exception(ShuttingDown("The host is shutting down."))
            else:
                first.future.set_exception(
                    WorkerCrashed(
                        f"The worker process running this call {how}; "
                        "it has been replaced, retry the request.",
                        details={"model": first.call.model, "exit": how},
                    )
                )
            self._queue.extendleft(reversed(rest))
        if not self._busy():
            self._idle.set()
        if not self._closing and w.ready.done() and w.ready.exception() is None:
            self._restarts += 1
            task = asyncio.create_task(self._respawn(w.slot))
            self._respawns.add(task)
            task.add_done_callback(self._respawns.discard)

    async def _respawn(self, slot: int) -> None:
        delay = 0.0
        while not self._closing:
            if delay:
                await asyncio.sleep(delay)
            worker = await self._spawn(slot)
            try:
                await asyncio.wait_for(asyncio.shield(worker.ready), self._ready_timeout)
                return
            except Exception as exc:
                log.error("replacement %s worker %d failed: %s", self.name, slot, exc)
                delay = min(max(delay * 2, 0.5), 30.0)
                kill_process_tree(worker.pid)


class _FrameProtocol(asyncio.Protocol):
    """Splits the worker's byte stream into messages without a task per read."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.worker: _Worker | None = None
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        offset = 0
        while len(buffer) - offset >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer, offset)
            end = offset + HEADER.size + size
            if len(buffer) < end:
                break
            message = decode(bytes(buffer[offset + HEADER.size : end]))
            offset = end
            assert self.worker is not None
            self.pool._dispatch(self.worker, message)
        if offset:
            del buffer[:offset]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker is not None:
            self.worker.exited = asyncio.ensure_future(self.pool._on_exit(self.worker))


def _as_host_error(reply: Reply, model: str) -> HostError:
    error = reply.error
    assert error is not None
    if error.kind == "model":
        log.error(
            "model %r raised %s: %s\n%s",
            model,
            error.type,
            error.message,
            error.traceback,
        )
        return ModelError(error.type, error.message, model=model)
    if error.kind == "input":
        return ArgumentError(error.message, details=error.details)
    if error.kind == "output":
        return ResponseValidationError(error.message, details=error.details)
    if error.kind == "version":
        return VersionLoadError(error.message)
    return HostError(f"{error.type}: {error.message}")
