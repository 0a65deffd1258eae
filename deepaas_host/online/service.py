"""The host's side of online learning: workers, batching, stats and event feeds.

Every operation on a model goes to the one worker that owns it. Operations that
arrive while the worker is busy wait in a per-worker list and go out together
as the next batch, which the worker applies in order, logs as one frame and
syncs once: under load, many acknowledgements share one ``fsync``. An operation
whose client has gone by the time its batch leaves is dropped (``ClientGone``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepaas_host.errors import (
    ArgumentError,
    ClientGone,
    Conflict,
    HostError,
    InsufficientStorage,
    ModelError,
    OnlineModelDamaged,
    OnlineModelNotFound,
    Overloaded,
    PredictionNotFound,
    StorageUnavailable,
)
from deepaas_host.jobs.pool import WorkerPool
from deepaas_host.model.discovery import LoadedPlugin
from deepaas_host.online.feed import EventFeed, Subscription
from deepaas_host.online.names import check_name, friendly_name
from deepaas_host.online.process import ActorConfig, Limits, online_main, shard_of
from deepaas_host.settings import Settings

__all__ = ["EventFeed", "OnlineService", "OpStats", "Subscription"]

log = logging.getLogger(__name__)

Op = tuple[Any, ...]

#: Operations that may wait for one worker before new ones get 503.
MAX_PENDING = 100_000
#: Largest batch sent to a worker at once.
MAX_BATCH = 2048
#: Seconds between two questions to each worker about damage and what to log.
STATUS_EVERY = 2.0
#: Bytes of requests behind a batch from which it is encoded in a thread:
#: pickling runs at about 0.5 GB/s, so this is some 2 ms of the event loop.
LARGE_BATCH = 1 << 20
_KINDS = ("predict", "learn", "label")


@dataclass(eq=False, slots=True)
class _Entry:
    op: Op
    future: asyncio.Future[tuple[Any, ...]]
    gone: Callable[[], bool] | None
    size: int


class _Batcher:
    """Group operations for one worker; at most ``depth`` batches in flight."""

    def __init__(self, pool: WorkerPool, depth: int = 2) -> None:
        self.pool = pool
        self.depth = depth
        self.pending: list[_Entry] = []
        self.inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(
        self, ops: Sequence[Op], *, size: int = 0, gone: Callable[[], bool] | None = None
    ) -> list[asyncio.Future[tuple[Any, ...]]]:
        """Queue ``ops`` (from ``size`` bytes of requests of a client that ``gone`` watches)."""
        loop = asyncio.get_running_loop()
        share = size // max(1, len(ops))
        entries = [_Entry(op, loop.create_future(), gone, share) for op in ops]
        if len(self.pending) + len(entries) > MAX_PENDING:
            raise Overloaded("Too many online operations are waiting; retry shortly.")
        self.pending.extend(entries)
        while self.pending and self.inflight < self.depth:
            self._flush()
        return [entry.future for entry in entries]

    def _flush(self) -> None:
        batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
        live = [entry for entry in batch if entry.gone is None or not entry.gone()]
        if len(live) < len(batch):
            self._drop([entry for entry in batch if entry.gone is not None and entry.gone()])
        if not live:
            return
        self.inflight += 1
        task = asyncio.create_task(self._send(live))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _drop(self, entries: list[_Entry]) -> None:
        self.pool.count_dropped(len(entries))
        log.debug("%d online operations dropped: their clients have gone", len(entries))
        for entry in entries:
            entry.future.set_exception(ClientGone("The client went away before its turn."))

    async def _send(self, batch: list[_Entry]) -> None:
        try:
            reply = await self.pool.call(
                "",
                "batch",
                {"ops": [entry.op for entry in batch]},
                large=sum(entry.size for entry in batch) > LARGE_BATCH,
            )
            results = reply.value[1]
            for entry, result in zip(batch, results, strict=True):
                if not entry.future.done():
                    entry.future.set_result(result)
        except Exception as exc:
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(exc)
        finally:
            self.inflight -= 1
            while self.pending and self.inflight < self.depth:
                self._flush()


@dataclass
class OpStats:
    """Counts and latencies of one kind of operation since the host started."""

    count: int = 0
    errors: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=4096))

    def add(self, seconds: float, ok: bool) -> None:
        self.count += 1
        if not ok:
            self.errors += 1
        self.latencies.append(seconds)

    def report(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 3)

        return {
            "count": self.count,
            "errors": self.errors,
            "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        }


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class OnlineService:
    """Online models of one host: ``settings.online_workers`` owner processes."""

    def __init__(self, settings: Settings, plugins: Sequence[LoadedPlugin]) -> None:
        self.root = settings.data_dir / "online"
        self.plugins = {p.info.name: p for p in plugins}
        shards = settings.online_workers
        limits = Limits(
            keep_predictions=settings.keep_predictions,
            keep_seconds=settings.keep_seconds,
            keep_bytes=settings.keep_bytes,
            max_features=settings.max_features,
            max_feature_names=settings.max_feature_names,
        )
        self.base_path = settings.base_path
        self.pools = [
            WorkerPool(
                [],
                name="online" if shards == 1 else f"online-{i}",
                size=1,
                depth=3,
                max_queue=None,
                ready_timeout=3600.0,
                main=online_main,
                main_args=(
                    ActorConfig(
                        str(self.root),
                        i,
                        shards,
                        fsync=settings.online_fsync,
                        snapshot_every=settings.snapshot_every,
                        limits=limits,
                        window=settings.metrics_window,
                    ),
                    [p.info for p in plugins],
                ),
            )
            for i in range(shards)
        ]
        self._batchers = [_Batcher(pool) for pool in self.pools]
        self.models: dict[str, dict[str, Any]] = {}
        #: Models refused because their files are damaged: name -> the worker's report.
        self.damaged: dict[str, dict[str, Any]] = {}
        self._refreshing: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats: dict[str, dict[str, OpStats]] = {}
        #: Set when the host begins to shut down: streams end, nothing new starts.
        self.stopping = asyncio.Event()
        self.events = EventFeed(self.stopping)
        self._create_lock = asyncio.Lock()

    # life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers (each replays its models' logs) and learn the model list."""
        await asyncio.gather(*(pool.start() for pool in self.pools))
        for index, pool in enumerate(self.pools):
            for info in await self._call(pool, "list", {}):
                self.models[info["name"]] = info
            await self._status(index)
        async with self._create_lock:
            for name in self.plugins:
                if name not in self.models and name not in self.damaged:
                    await self._create(name, plugin=name, flavor=None, file=None, description="")
        self._spawn(self._poll())

    async def _poll(self) -> None:
        """Ask each worker, now and then, what to log and which models it refuses: a
        worker's own log may be on the disk that is full, and a replaced worker may
        find damage its predecessor did not."""
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), STATUS_EVERY)
            for index in range(len(self.pools)):
                if self.stopping.is_set():
                    return
                try:
                    await self._status(index)
                except HostError as exc:
                    log.debug("%s status: %s", self.pools[index].name, exc)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, grace: float = 10.0) -> None:
        self.stopping.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(pool.close(grace=grace) for pool in self.pools))

    @property
    def ready(self) -> bool:
        return all(pool.ready for pool in self.pools)

    # models ---------------------------------------------------------------------

    def _pool(self, name: str) -> WorkerPool:
        return self.pools[shard_of(name, len(self.pools))]

    def meta(self, name: str) -> dict[str, Any]:
        meta = self.models.get(name)
        if meta is None:
            if name in self.damaged:
                raise self.damage_error(name)
            raise OnlineModelNotFound(name)
        return meta

    # damaged models -------------------------------------------------------------

    def damage_error(self, name: str) -> OnlineModelDamaged:
        report = self.damaged[name]
        where = report.get("file") or "its files"
        if report.get("offset") is not None:
            where += f", byte {report['offset']}"
        return OnlineModelDamaged(
            f"Online model {name!r} is damaged and refused: {report['problem']} ({where}). "
            f"Its files are left as they are; POST {self._repair_path(name)} keeps every "
            "readable event and serves it again.",
            details={"model": name, **report, "repair": self._repair_path(name)},
        )

    def _repair_path(self, name: str) -> str:
        return f"{self.base_path}/v2/online/{name}/repair"

    def damaged_models(self) -> list[dict[str, Any]]:
        """The refused models with why, for listings and health."""
        return [
            {"name": name, "reason": report["problem"], "details": report}
            for name, report in sorted(self.damaged.items())
        ]

    async def _status(self, index: int) -> None:
        """Learn from worker ``index`` which of its models are refused, and log news."""
        status = await self._call(self.pools[index], "status", {})
        for notice in status["notices"]:
            log.error("%s", notice)
        reported: dict[str, dict[str, Any]] = status["damaged"]
        for name, report in reported.items():
            self.models.pop(name, None)
            if self.damaged.get(name) != report:
                log.error(
                    "online model %s is damaged and refused: %s (file %s, offset %s; %s "
                    "readable frames, %s events after it); its files are left as they are, "
                    "POST %s keeps every readable event and serves it again",
                    name,
                    report.get("problem"),
                    report.get("file"),
                    report.get("offset"),
                    report.get("frames_after", "no"),
                    report.get("events_after", "no"),
                    self._repair_path(name),
                )
            self.damaged[name] = report
        for name in list(self.damaged):
            if shard_of(name, len(self.pools)) == index and name not in reported:
                del self.damaged[name]

    def _refresh(self, name: str) -> None:
        """Ask the worker of ``name`` again (it refused a model it had served)."""
        index = shard_of(name, len(self.pools))
        if index in self._refreshing or self.stopping.is_set():
            return
        pool = self.pools[index].name

        async def refresh() -> None:
            try:
                await self._status(index)
            except HostError as exc:
                log.warning("could not ask %s about damaged models: %s", pool, exc)
            finally:
                self._refreshing.discard(index)

        self._refreshing.add(index)
        self._spawn(refresh())

    def _watch(self, name: str, future: asyncio.Future[list[dict[str, Any] | HostError]]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        if any(isinstance(r, OnlineModelDamaged) for r in future.result()):
            self._refresh(name)

    async def repair(self, name: str) -> dict[str, Any]:
        """Serve a damaged model again from what is readable (the loss is accepted)."""
        if name in self.models:
            raise Conflict(f"Online model {name!r} is not damaged: nothing to repair.")
        if name not in self.damaged:
            raise OnlineModelNotFound(name)
        report: dict[str, Any] = await self._call(self._pool(name), "repair", {"name": name})
        info = report.pop("info")
        self.damaged.pop(name, None)
        self.models[name] = info
        log.warning(
            "online model %s repaired: %d events kept, %d sequence numbers lost; its old "
            "files are in %s/",
            name,
            report["kept"],
            report["lost"],
            report["moved_to"],
        )
        return report

    async def create(
        self,
        name: str | None,
        *,
        plugin: str | None = None,
        flavor: str | None = None,
        file: Path | None = None,
        filename: str | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        if plugin is not None and plugin not in self.plugins:
            known = ", ".join(sorted(self.plugins)) or "none"
            raise ArgumentError(
                f"No online plugin named {plugin!r}.",
                details={"plugin": [f"Unknown online plugin; installed: {known}."]},
            )
        async with self._create_lock:
            if name is None:
                name = friendly_name(self.models.keys() | self.damaged.keys())
            check_name(name)
            if name in self.models:
                raise Conflict(f"Online model {name!r} already exists.")
            if name in self.damaged:
                raise Conflict(
                    f"Online model {name!r} exists and is damaged: repair or delete it first."
                )
            return await self._create(
                name,
                plugin=plugin,
                flavor=flavor,
                file=file,
                filename=filename,
                description=description,
            )

    async def _create(
        self,
        name: str,
        *,
        plugin: str | None,
        flavor: str | None,
        file: Path | None,
        description: str,
        filename: str | None = None,
    ) -> dict[str, Any]:
        kwargs = {
            "name": name,
            "plugin": plugin,
            "flavor": flavor,
            "file": str(file) if file is not None else None,
            "filename": filename,
            "description": description,
            "created": _utc_now(),
        }
        info: dict[str, Any] = await self._call(self._pool(name), "create", kwargs)
        self.models[name] = info
        return info

    async def delete(self, name: str) -> None:
        """Delete a model, damaged or not."""
        if name not in self.damaged:
            self.meta(name)
        await self._call(self._pool(name), "delete", {"name": name})
        self.models.pop(name, None)
        self.damaged.pop(name, None)
        self.stats.pop(name, None)
        self.events.close(name)

    async def info(self, name: str) -> dict[str, Any]:
        self.meta(name)
        info: dict[str, Any] = await self._call(self._pool(name), "info", {"name": name})
        return info

    async def list_models(self) -> list[dict[str, Any]]:
        infos: list[dict[str, Any]] = []
        for index, pool in enumerate(self.pools):
            infos.extend(await self._call(pool, "list", {}))
            await self._status(index)
        return sorted(infos, key=lambda i: i["name"])

    async def metrics(self, name: str) -> dict[str, Any]:
        self.meta(name)
        metrics: dict[str, Any] = await self._call(self._pool(name), "metrics", {"name": name})
        return metrics

    async def download(self, name: str, path: Path) -> int:
        self.meta(name)
        size: int = await self._call(
            self._pool(name), "download", {"name": name, "path": str(path)}
        )
        return size

    def op_stats(self, name: str) -> dict[str, Any]:
        self.meta(name)
        stats = self.stats.get(name, {})
        return {kind: (stats.get(kind) or OpStats()).report() for kind in _KINDS}

    # events ---------------------------------------------------------------------

    def submit(
        self,
        name: str,
        ops: Sequence[Op],
        *,
        size: int = 0,
        gone: Callable[[], bool] | None = None,
    ) -> asyncio.Future[list[dict[str, Any] | HostError]]:
        """Queue ``ops`` (``("predict", x, id, keep)``, ``("learn", x, y, id)``,
        ``("label", id, y)``) for ``name`` now, in this order; the future gives one
        result or error per op.

        ``size``: bytes of the requests they came in; ``gone``: whether their
        client has left, in which case those not yet sent are dropped."""
        self.meta(name)
        began = time.perf_counter()
        batcher = self._batchers[shard_of(name, len(self.pools))]
        futures = batcher.submit([(name, *op) for op in ops], size=size, gone=gone)
        future = asyncio.ensure_future(self._collect(name, ops, futures, began))
        future.add_done_callback(lambda done: self._watch(name, done))
        return future

    async def apply(
        self,
        name: str,
        ops: Sequence[Op],
        *,
        size: int = 0,
        gone: Callable[[], bool] | None = None,
    ) -> list[dict[str, Any] | HostError]:
        return await self.submit(name, ops, size=size, gone=gone)

    async def _collect(
        self,
        name: str,
        ops: Sequence[Op],
        futures: list[asyncio.Future[tuple[Any, ...]]],
        began: float,
    ) -> list[dict[str, Any] | HostError]:
        # Every outcome is retrieved: one failure (a worker crash, a client
        # gone) fails them all, and none is left unretrieved.
        raw: list[tuple[Any, ...]] = []
        for outcome in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
            raw.append(outcome)
        elapsed = time.perf_counter() - began
        stats = self.stats.setdefault(name, {})
        publish = self.events.active(name)
        out: list[dict[str, Any] | HostError] = []
        per_op = elapsed / max(1, len(ops))
        for op, result in zip(ops, raw, strict=True):
            kind = op[0]
            ok = result[0] == "ok"
            (stats.get(kind) or stats.setdefault(kind, OpStats())).add(per_op, ok)
            if not ok:
                out.append(_as_error(name, result[1], result[2]))
                continue
            value = result[1]
            out.append(value)
            if publish:
                self.events.publish(name, _event_of(kind, op, value))
        return out

    async def apply_one(
        self, name: str, op: Op, *, size: int = 0, gone: Callable[[], bool] | None = None
    ) -> dict[str, Any]:
        (result,) = await self.apply(name, [op], size=size, gone=gone)
        if isinstance(result, HostError):
            raise result
        return result

    async def _call(self, pool: WorkerPool, method: str, kwargs: dict[str, Any]) -> Any:
        reply = await pool.call("", method, kwargs)
        outcome = reply.value
        if outcome[0] == "ok":
            return outcome[1]
        name = kwargs.get("name", "")
        error = _as_error(name, *outcome[1:])
        if isinstance(error, OnlineModelDamaged) and name:
            self._refresh(name)
        raise error


def _as_error(name: str, kind: str, message: str, details: Any = None) -> HostError:
    if kind == "notfound":
        return OnlineModelNotFound(name) if "does not exist" in message else ArgumentError(message)
    if kind == "label":
        return PredictionNotFound(message)
    if kind == "exists":
        return Conflict(message)
    if kind == "input":
        return ArgumentError(message)
    if kind == "features":
        return ArgumentError(message, details={"features": [message]})
    if kind == "sample":
        return ArgumentError(
            f"Online model {name!r} cannot use this sample: {message}",
            details={"exception": message.partition(": ")[0]},
        )
    if kind == "nospace":
        return InsufficientStorage(message, details={"model": name})
    if kind == "storage":
        return StorageUnavailable(message, details={"model": name})
    if kind == "damaged":
        return OnlineModelDamaged(message, details={"model": name, **(details or {})})
    if kind == "unrepairable":
        return Conflict(message, details={"model": name, **(details or {})})
    exc_type, _, exc_message = message.partition(": ")
    return ModelError(exc_type, exc_message, model=name)


def _event_of(kind: str, op: Op, value: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "time": time.time()}
    if kind == "predict":
        event["features"] = op[1]
        event["prediction"] = value.get("prediction")
    elif kind == "learn":
        event["features"] = op[1]
        event["ground_truth"] = op[2]
        event["prediction"] = value.get("prediction")
    else:
        event["ground_truth"] = op[2]
        event["prediction"] = value.get("prediction")
    for key in ("id", "seq"):
        if key in value:
            event[key] = value[key]
    with contextlib.suppress(KeyError):
        event["probabilities"] = value["probabilities"]
    return event
